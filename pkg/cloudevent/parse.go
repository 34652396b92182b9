package cloudevent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

const (
	// DefaultMaxBodyBytes is the body limit used when Limits.MaxBodyBytes
	// is not positive: 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxBatch is the batch size limit used when Limits.MaxBatch is
	// not positive.
	DefaultMaxBatch = 1000
)

// Limits bounds what [ParseRequest] accepts. The zero value uses the
// defaults.
type Limits struct {
	// MaxBodyBytes is the longest body accepted. At most MaxBodyBytes+1
	// bytes are ever read. Defaults to 1 MiB (1<<20) when <= 0.
	MaxBodyBytes int64
	// MaxBatch is the largest number of events in a batch. Defaults to 1000
	// when <= 0.
	MaxBatch int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	return l
}

// ParseRequest reads the body of an ingest request (POST /v1/events) and
// returns its binding mode (see [ModeOf]) and its events, which have passed
// [Event.Validate]. It returns one event in binary and structured mode and
// zero or more in batch mode. The mode is returned even with an error; the
// events never are.
//
// The error is, for errors.Is/As: [ErrUnsupportedMediaType]; [ErrTooLarge]
// when the body exceeds lim.MaxBodyBytes (checked against Content-Length
// first, then by reading at most MaxBodyBytes+1 bytes) or a batch exceeds
// lim.MaxBatch; a [*ValidationError] listing every problem of every event;
// or the error from reading the body (an [*http.MaxBytesError] from a
// surrounding http.MaxBytesReader is reported as ErrTooLarge).
//
// ParseRequest does not close the body and is safe for concurrent use.
func ParseRequest(r *http.Request, lim Limits) (mode Mode, events []Event, err error) {
	lim = lim.withDefaults()
	mode, err = ModeOf(r.Header.Get("Content-Type"))
	if err != nil {
		return mode, nil, err
	}
	body, err := readBody(r, lim.MaxBodyBytes)
	if err != nil {
		return mode, nil, err
	}
	switch mode {
	case ModeStructured:
		events = make([]Event, 1)
		err = parseStructured(body, &events[0])
	case ModeBatch:
		events, err = ParseBatch(body, lim.MaxBatch)
	default:
		events = make([]Event, 1)
		err = parseBinary(r.Header, body, &events[0])
	}
	if err != nil {
		return mode, nil, err
	}
	return mode, events, nil
}

// readBody reads at most max+1 bytes of the body and fails with ErrTooLarge
// if there are more than max.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > max {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds the limit of %d bytes", ErrTooLarge, r.ContentLength, max)
	}
	size := int64(512)
	if r.ContentLength > 0 {
		size = r.ContentLength + 1 // +1 so that a correct length ends with io.EOF without growing
	}
	buf := make([]byte, 0, size)
	lr := io.LimitedReader{R: r.Body, N: max + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
			}
			return nil, fmt.Errorf("cloudevent: reading request body: %w", err)
		}
	}
	if int64(len(buf)) > max {
		return nil, fmt.Errorf("%w: body exceeds the limit of %d bytes", ErrTooLarge, max)
	}
	return buf, nil
}

// ParseStructured parses and validates one structured-mode event (a JSON
// object) from body. The error is a [*ValidationError]. The event's strings
// and Data may share memory with body, which must not be modified
// afterwards.
func ParseStructured(body []byte) (Event, error) {
	var ev Event
	if err := parseStructured(body, &ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

func parseStructured(body []byte, ev *Event) error {
	if verr := checkUTF8(body, "body"); verr != nil {
		return verr
	}
	d := newDecoder(body)
	d.skipWS()
	if d.pos >= len(body) {
		return bodyProblem("empty body; structured mode expects a JSON object")
	}
	if d.peek() != '{' {
		if kind := d.kindAt(); kind != "invalid value" {
			return bodyProblem("body must be a JSON object, got " + kind)
		}
		return bodyProblem(d.unexpected("at start of body").Error())
	}
	v := validator{index: -1, utf8Checked: true}
	if err := d.decodeEvent(ev, &v); err != nil {
		return bodyProblem(err.Error())
	}
	if err := d.end(); err != nil {
		return bodyProblem(err.Error())
	}
	return v.err()
}

// end checks that only whitespace follows the top-level value.
func (d *decoder) end() error {
	d.skipWS()
	if d.pos < len(d.buf) {
		return d.unexpected("after top-level value")
	}
	return nil
}

// ParseBatch parses and validates a batch (a JSON array of structured
// events) from body. It returns an error wrapping [ErrTooLarge] as soon as
// it finds more than maxBatch entries (DefaultMaxBatch if maxBatch <= 0),
// or a [*ValidationError] listing the problems of every entry, or the
// events; an empty array gives zero events and no error. The events'
// strings and Data may share memory with body, which must not be modified
// afterwards.
func ParseBatch(body []byte, maxBatch int) ([]Event, error) {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	if verr := checkUTF8(body, "body"); verr != nil {
		return nil, verr
	}
	d := newDecoder(body)
	d.skipWS()
	if d.pos >= len(body) {
		return nil, bodyProblem("empty body; batch mode expects a JSON array")
	}
	if d.peek() != '[' {
		if kind := d.kindAt(); kind != "invalid value" {
			return nil, bodyProblem("body must be a JSON array, got " + kind)
		}
		return nil, bodyProblem(d.unexpected("at start of body").Error())
	}
	d.pos++
	d.skipWS()
	events := []Event{}
	var probs []Problem
	if d.peek() == ']' {
		d.pos++
	} else {
		for index := 0; ; index++ {
			if index == maxBatch {
				return nil, fmt.Errorf("%w: batch has more than %d events", ErrTooLarge, maxBatch)
			}
			if d.peek() == '{' {
				events = append(events, Event{})
				v := validator{index: index, utf8Checked: true, probs: probs}
				if err := d.decodeEvent(&events[len(events)-1], &v); err != nil {
					return nil, bodyProblem(err.Error())
				}
				probs = v.probs
			} else {
				kind := d.kindAt()
				if err := d.skipValue(1); err != nil {
					return nil, bodyProblem(err.Error())
				}
				probs = append(probs, Problem{Index: index, Detail: "batch entry must be a JSON object, got " + kind, Malformed: true})
			}
			d.skipWS()
			if d.peek() == ',' {
				d.pos++
				d.skipWS()
				continue
			}
			if d.peek() == ']' {
				d.pos++
				break
			}
			return nil, bodyProblem(d.unexpected("in array (expecting ',' or ']')").Error())
		}
	}
	if err := d.end(); err != nil {
		return nil, bodyProblem(err.Error())
	}
	if len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	return events, nil
}

// parseBinary builds a binary-mode event from the ce-* headers, the
// Content-Type and the body.
func parseBinary(h http.Header, body []byte, ev *Event) error {
	v := validator{index: -1, binary: true, utf8Checked: true}
	var seen, reported fieldSet
	start := len(v.probs)
	for key, vals := range h {
		if len(key) < 3 || !strings.EqualFold(key[:3], "ce-") {
			continue
		}
		name := strings.ToLower(key[3:])
		field := "ce-" + name
		if len(vals) != 1 {
			v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: "header must appear exactly once", Malformed: true})
			reported |= coreBit(name)
			continue
		}
		bit := coreBit(name)
		if bit != 0 && seen&bit != 0 {
			v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: "header must appear exactly once", Malformed: true})
			reported |= bit
			continue
		}
		seen |= bit
		switch bit {
		case bitDataContentType:
			v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: "binary mode carries datacontenttype in the Content-Type header, not ce-datacontenttype"})
			continue
		case bitData, bitDataBase64:
			v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: "binary mode carries the data in the body, not in a header"})
			continue
		}
		if name == "" {
			v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: "header names no attribute", Malformed: true})
			continue
		}
		val, err := percentDecode(vals[0])
		if err == nil && !utf8.ValidString(val) {
			err = errors.New("value is not valid UTF-8 after percent-decoding")
		}
		if err != nil {
			v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: err.Error(), Malformed: true})
			reported |= bit
			continue
		}
		switch bit {
		case 0:
			if _, dup := ev.Extensions[name]; dup {
				v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: "header must appear exactly once", Malformed: true})
				continue
			}
			ev.SetExtension(name, val)
		case bitSpecVersion:
			ev.SpecVersion = val
		case bitID:
			ev.ID = val
		case bitSource:
			ev.Source = val
		case bitType:
			ev.Type = val
		case bitTime:
			t, detail := parseTime(val)
			if detail != "" {
				v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: detail})
				reported |= bit
				continue
			}
			ev.Time = t
		case bitDataSchema, bitSubject:
			if val == "" {
				v.probs = append(v.probs, Problem{Index: -1, Field: field, Detail: "must not be empty when present"})
				reported |= bit
				continue
			}
			if bit == bitDataSchema {
				ev.DataSchema = val
			} else {
				ev.Subject = val
			}
		}
	}
	// Header order is random; keep the problem list deterministic.
	slices.SortStableFunc(v.probs[start:], func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })

	cts := h.Values("Content-Type")
	if len(cts) > 1 {
		v.probs = append(v.probs, Problem{Index: -1, Field: "content-type", Detail: "header must appear at most once", Malformed: true})
		reported |= bitDataContentType
	}
	var ct string
	if len(cts) > 0 {
		ct = strings.TrimSpace(cts[0])
	}
	if !utf8.ValidString(ct) {
		v.probs = append(v.probs, Problem{Index: -1, Field: "content-type", Detail: "value is not valid UTF-8", Malformed: true})
		reported |= bitDataContentType
	}
	ev.DataContentType = ct

	switch {
	case len(body) == 0:
	case IsJSONContentType(ct):
		if verr := checkUTF8(body, "JSON body"); verr != nil {
			v.addMalformed("data", verr.Problems[0].Detail)
			break
		}
		d := decoder{buf: body}
		d.skipWS()
		data, err := d.rawValue()
		if err == nil {
			err = d.end()
		}
		if err != nil {
			v.addMalformed("data", "body is not valid JSON (Content-Type "+describeCT(ct)+"): "+err.Error())
			break
		}
		if !bytes.Equal(data, []byte("null")) {
			ev.Data = data
		}
	default:
		ev.DataBase64 = body[:len(body):len(body)]
	}
	ev.validate(&v, reported, false)
	return v.err()
}

func describeCT(ct string) string {
	if ct == "" {
		return "absent, so JSON is assumed"
	}
	return fmt.Sprintf("%q", truncate(ct))
}

// percentDecode decodes %XX escapes, as the HTTP binding requires for ce-*
// header values. A '%' not followed by two hex digits is an error.
func percentDecode(s string) (string, error) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, nil
	}
	out := make([]byte, 0, len(s))
	out = append(out, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("malformed percent-encoding at byte %d (want %%XX)", i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("malformed percent-encoding at byte %d (want %%XX)", i)
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	return string(out), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
