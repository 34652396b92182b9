package cloudevent

import (
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// Mode is the HTTP binding mode of an ingest request. The zero value is not
// a mode; [ModeOf] and [ParseRequest] always return one of the constants.
type Mode int

const (
	// ModeBinary carries one event in ce-* headers and the body.
	ModeBinary Mode = iota + 1
	// ModeStructured carries one event as a JSON object.
	ModeStructured
	// ModeBatch carries zero or more events as a JSON array.
	ModeBatch
)

// String returns "binary", "structured" or "batch", or "Mode(n)" for a value
// that is not a mode.
func (m Mode) String() string {
	switch m {
	case ModeBinary:
		return "binary"
	case ModeStructured:
		return "structured"
	case ModeBatch:
		return "batch"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

const (
	mediaStructured     = "application/cloudevents"
	mediaBatch          = "application/cloudevents-batch"
	mediaStructuredJSON = mediaStructured + "+json"
	mediaBatchJSON      = mediaBatch + "+json"
)

// ModeOf returns the binding mode for a Content-Type header value, compared
// case-insensitively: application/cloudevents-batch... is [ModeBatch],
// application/cloudevents... is [ModeStructured] and anything else,
// including "", is [ModeBinary]. Parameters are allowed.
//
// For the structured and batched modes only the +json format is supported;
// another format, or a charset parameter other than UTF-8, returns the mode
// with an error wrapping [ErrUnsupportedMediaType]. Malformed parameters
// return the mode with a [*ValidationError] naming "content-type".
func ModeOf(contentType string) (Mode, error) {
	essence, hasParams := mediaEssence(contentType)
	var mode Mode
	var want string
	switch {
	case hasPrefixFold(essence, mediaBatch):
		mode, want = ModeBatch, mediaBatchJSON
	case hasPrefixFold(essence, mediaStructured):
		mode, want = ModeStructured, mediaStructuredJSON
	default:
		return ModeBinary, nil
	}
	if !strings.EqualFold(essence, want) {
		return mode, fmt.Errorf("%w: %q (%s mode accepts only %s)",
			ErrUnsupportedMediaType, truncate(essence), mode, want)
	}
	if hasParams {
		_, params, err := mime.ParseMediaType(contentType)
		if err != nil {
			return mode, &ValidationError{Problems: []Problem{{
				Index: -1, Field: "content-type", Detail: "malformed media type parameters: " + err.Error(),
			}}}
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return mode, fmt.Errorf("%w: charset %q (JSON must be UTF-8)", ErrUnsupportedMediaType, truncate(cs))
		}
	}
	return mode, nil
}

// IsJSONContentType reports whether a datacontenttype denotes JSON data: ""
// (absent, which CloudEvents treats as JSON), application/json, text/json or
// any type with a +json suffix. The comparison is case-insensitive and
// parameters are ignored.
func IsJSONContentType(ct string) bool {
	essence, _ := mediaEssence(ct)
	return essence == "" ||
		strings.EqualFold(essence, "application/json") ||
		strings.EqualFold(essence, "text/json") ||
		hasSuffixFold(essence, "+json")
}

// mediaEssence returns the type/subtype part of a media type, trimmed, and
// whether parameters follow it.
func mediaEssence(ct string) (string, bool) {
	hasParams := false
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct, hasParams = ct[:i], true
	}
	return strings.TrimSpace(ct), hasParams
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// maxQuoted bounds how much of an offending value an error detail repeats.
const maxQuoted = 64

// truncate shortens s for use in an error detail.
func truncate(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	cut := maxQuoted
	for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return s[:cut] + "..."
}
