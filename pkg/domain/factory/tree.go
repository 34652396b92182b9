package factory

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// A source tree is stored as one artifact: a gzipped tar whose entries are
// sorted, with fixed modes and no timestamps, so the same files always give
// the same bytes. Signed statements name each file as "<tree>!<path>".

// MaxTreeBytes bounds the unpacked size of a stored tree.
const MaxTreeBytes = 64 << 20

// PackTree returns the stored form of files (slash-separated relative paths).
func PackTree(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		if err := checkTreePath(n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UnpackTree reads a tree made by PackTree.
func UnpackTree(b []byte) (map[string][]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not a stored source tree: %w", err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a stored source tree: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := checkTreePath(hdr.Name); err != nil {
			return nil, err
		}
		total += hdr.Size
		if total > MaxTreeBytes {
			return nil, errors.New("the source tree is larger than 64 MiB")
		}
		body, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return nil, err
		}
		out[hdr.Name] = body
	}
}

// checkTreePath refuses a path that could leave the tree.
func checkTreePath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q is not a relative path inside the module", p)
	}
	return nil
}

// CheckTreePath reports whether p may name a file of a module.
func CheckTreePath(p string) error { return checkTreePath(p) }

// TreeSubjects names each file of a tree artifact as a statement subject.
func TreeSubjects(artifact string, files map[string][]byte) []Subject {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Subject, len(names))
	for i, n := range names {
		out[i] = Subject{Name: artifact + "!" + n, Digest: Digest(files[n])}
	}
	return out
}
