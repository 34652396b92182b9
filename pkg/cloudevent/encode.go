package cloudevent

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the canonical structured JSON form of the event to dst
// and returns the extended slice. Members come in this order: specversion,
// id, source, type, datacontenttype, dataschema, subject, time (RFC 3339
// with as many fractional digits as needed, in the event's own offset),
// then the extensions sorted by name, then "data" (Data as is) or
// "data_base64" (DataBase64 in standard base64). Absent optional attributes
// are omitted.
//
// For an event that passes [Event.Validate] and whose Data is compact (as
// the parsers produce), the output parses back, with [ParseStructured], to
// an equal event. For other events the output is still well-formed JSON as
// long as Data is valid JSON (invalid UTF-8 becomes U+FFFD, extension
// values of unsupported types become null and extensions named like core
// attributes are left out), but it may not parse back; use
// [Event.MarshalJSON] to get an error instead. AppendJSON allocates only
// when dst must grow or when there are more than 16 extensions.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"specversion":`...)
	dst = appendString(dst, e.SpecVersion)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, e.Source)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	if e.DataContentType != "" {
		dst = append(dst, `,"datacontenttype":`...)
		dst = appendString(dst, e.DataContentType)
	}
	if e.DataSchema != "" {
		dst = append(dst, `,"dataschema":`...)
		dst = appendString(dst, e.DataSchema)
	}
	if e.Subject != "" {
		dst = append(dst, `,"subject":`...)
		dst = appendString(dst, e.Subject)
	}
	if !e.Time.IsZero() {
		dst = append(dst, `,"time":"`...)
		dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if len(e.Extensions) > 0 {
		dst = e.appendExtensions(dst)
	}
	switch {
	case len(e.Data) > 0:
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.Data...)
	case e.DataBase64 != nil:
		dst = append(dst, `,"data_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, e.DataBase64)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

func (e *Event) appendExtensions(dst []byte) []byte {
	var stack [16]string
	names := stack[:0]
	for name := range e.Extensions {
		if coreBit(name) == 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		dst = append(dst, ',')
		dst = appendString(dst, name)
		dst = append(dst, ':')
		switch v := e.Extensions[name].(type) {
		case string:
			dst = appendString(dst, v)
		case bool:
			dst = strconv.AppendBool(dst, v)
		case int32:
			dst = strconv.AppendInt(dst, int64(v), 10)
		default:
			dst = append(dst, "null"...)
		}
	}
	return dst
}

// MarshalJSON returns the canonical structured JSON form of the event (see
// [Event.AppendJSON]). It returns the [*ValidationError] from
// [Event.Validate] instead if the event is invalid, so its output always
// parses back to an equal event (given compact Data). It has a pointer
// receiver: pass a *Event to encoding/json.
func (e *Event) MarshalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.AppendJSON(make([]byte, 0, e.sizeHint())), nil
}

// sizeHint estimates the length of the event's JSON form.
func (e *Event) sizeHint() int {
	n := 96 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.DataContentType) +
		len(e.DataSchema) + len(e.Subject) + len(e.Data) + base64.StdEncoding.EncodedLen(len(e.DataBase64))
	for name, v := range e.Extensions {
		n += len(name) + 16
		if s, ok := v.(string); ok {
			n += len(s)
		}
	}
	return n
}

// UnmarshalJSON parses and validates one structured-mode event, like
// [ParseStructured]. On error the event is left unchanged. The event does
// not share memory with b.
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := ParseStructured(bytes.Clone(b))
	if err != nil {
		return err
	}
	*e = ev
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Control characters, '"' and '\\'
// are escaped, as are U+2028 and U+2029 (so the output is also valid
// JavaScript); invalid UTF-8 bytes become U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
