package cloudevent

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prost-platform/prost/pkg/storable"
)

// maxDepth bounds the nesting of JSON arrays and objects, as encoding/json
// does, so that a hostile body cannot make the scanner recurse without end.
const maxDepth = 10000

// syntaxError is malformed JSON at a byte offset of the body.
type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string {
	return "invalid JSON at byte offset " + strconv.Itoa(e.offset) + ": " + e.msg
}

// decoder is a single-pass JSON scanner over a body that has already been
// checked to be valid UTF-8.
type decoder struct {
	buf []byte
	// str is string(buf), made once per body so that attribute values
	// without escapes are substrings of it rather than separate allocations.
	str   string
	pos   int
	sawWS bool // whitespace was skipped since last reset
	// lone is set when the string readString last decoded held a \u
	// escape of an unpaired UTF-16 surrogate (decoded as U+FFFD): valid
	// JSON the database cannot store, which the caller refuses naming the
	// member (422) rather than as unreadable JSON.
	lone bool
}

func newDecoder(body []byte) decoder {
	return decoder{buf: body, str: string(body)}
}

func (d *decoder) errorf(format string, args ...any) error {
	return &syntaxError{offset: d.pos, msg: fmt.Sprintf(format, args...)}
}

// unexpected reports the byte at d.pos (or the end of input) in context.
func (d *decoder) unexpected(context string) error {
	if d.pos >= len(d.buf) {
		return &syntaxError{offset: d.pos, msg: "unexpected end of input " + context}
	}
	return d.errorf("unexpected %s %s", describeByte(d.buf[d.pos]), context)
}

func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (d *decoder) skipWS() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
			d.sawWS = true
		default:
			return
		}
	}
}

// peek returns the byte at d.pos, or 0 at the end of input.
func (d *decoder) peek() byte {
	if d.pos < len(d.buf) {
		return d.buf[d.pos]
	}
	return 0
}

// kindAt names the JSON type of the value starting at d.pos.
func (d *decoder) kindAt() string {
	switch d.peek() {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return "invalid value"
}

// literal consumes the literal lit (true, false or null).
func (d *decoder) literal(lit string) error {
	if len(d.buf)-d.pos >= len(lit) && string(d.buf[d.pos:d.pos+len(lit)]) == lit {
		d.pos += len(lit)
		return nil
	}
	for i := 0; i < len(lit); i++ {
		if d.pos >= len(d.buf) || d.buf[d.pos] != lit[i] {
			return d.unexpected("in literal " + lit)
		}
		d.pos++
	}
	return nil // unreachable: the fast path matched
}

// number consumes a JSON number.
func (d *decoder) number() error {
	if d.peek() == '-' {
		d.pos++
	}
	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case c >= '1' && c <= '9':
		d.digits()
	default:
		return d.unexpected("in number")
	}
	if d.peek() == '.' {
		d.pos++
		if c := d.peek(); c < '0' || c > '9' {
			return d.unexpected("after decimal point in number")
		}
		d.digits()
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if c := d.peek(); c < '0' || c > '9' {
			return d.unexpected("in exponent of number")
		}
		d.digits()
	}
	return nil
}

func (d *decoder) digits() {
	for d.pos < len(d.buf) && d.buf[d.pos] >= '0' && d.buf[d.pos] <= '9' {
		d.pos++
	}
}

// skipString consumes a string without decoding it (d.buf[d.pos] == '"').
func (d *decoder) skipString() error {
	d.pos++
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		switch {
		case c == '"':
			d.pos++
			return nil
		case c == '\\':
			if _, err := d.escape(); err != nil {
				return err
			}
		case c < 0x20:
			return d.unexpected("in string (control characters must be escaped)")
		default:
			d.pos++
		}
	}
	return d.unexpected("in string")
}

// readString decodes a string (d.buf[d.pos] == '"'). Strings without escapes are
// substrings of d.str. An escaped unpaired UTF-16 surrogate, which valid
// UTF-8 cannot represent, is decoded as U+FFFD and sets d.lone, for the
// caller to refuse the member.
func (d *decoder) readString() (string, error) {
	d.lone = false
	d.pos++
	start := d.pos
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		switch {
		case c == '"':
			d.pos++
			return d.str[start : d.pos-1], nil
		case c == '\\':
			return d.stringSlow(start)
		case c < 0x20:
			return "", d.unexpected("in string (control characters must be escaped)")
		}
		d.pos++
	}
	return "", d.unexpected("in string")
}

// stringSlow decodes the rest of a string with escapes; the string's content
// starts at start and d.pos is at the first backslash.
func (d *decoder) stringSlow(start int) (string, error) {
	out := make([]byte, 0, len(d.buf)-start)
	out = append(out, d.buf[start:d.pos]...)
	for d.pos < len(d.buf) {
		c := d.buf[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(out), nil
		case c == '\\':
			r, err := d.escape()
			if err != nil {
				return "", err
			}
			out = utf8.AppendRune(out, r)
		case c < 0x20:
			return "", d.unexpected("in string (control characters must be escaped)")
		default:
			out = append(out, c)
			d.pos++
		}
	}
	return "", d.unexpected("in string")
}

// escape consumes an escape sequence at d.pos (a backslash) and returns the
// rune it stands for. A \u escape of an unpaired surrogate is returned as
// utf8.RuneError and sets d.lone.
func (d *decoder) escape() (rune, error) {
	d.pos++ // backslash
	if d.pos >= len(d.buf) {
		return 0, d.unexpected("in string escape")
	}
	c := d.buf[d.pos]
	d.pos++
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
	default:
		d.pos--
		return 0, d.unexpected("in string escape")
	}
	r, err := d.hex4()
	if err != nil {
		return 0, err
	}
	switch {
	case r < 0xD800 || r > 0xDFFF:
		return r, nil
	case r <= 0xDBFF: // high surrogate: a low one must follow
		if len(d.buf)-d.pos >= 6 && d.buf[d.pos] == '\\' && d.buf[d.pos+1] == 'u' {
			save := d.pos
			d.pos += 2
			lo, err := d.hex4()
			if err != nil {
				return 0, err
			}
			if lo >= 0xDC00 && lo <= 0xDFFF {
				return (r-0xD800)<<10 | (lo - 0xDC00) + 0x10000, nil
			}
			d.pos = save
		}
	}
	d.lone = true
	return utf8.RuneError, nil
}

func (d *decoder) hex4() (rune, error) {
	var r rune
	for range 4 {
		if d.pos >= len(d.buf) {
			return 0, d.unexpected("in \\u escape")
		}
		c := d.buf[d.pos]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, d.unexpected("in \\u escape (want 4 hex digits)")
		}
		r = r<<4 | rune(c)
		d.pos++
	}
	return r, nil
}

// skipValue consumes any JSON value, checking its syntax.
func (d *decoder) skipValue(depth int) error {
	if d.pos >= len(d.buf) {
		return d.unexpected("where a value was expected")
	}
	switch c := d.buf[d.pos]; c {
	case '"':
		return d.skipString()
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '{', '[':
		if depth >= maxDepth {
			return d.errorf("JSON nested deeper than %d levels", maxDepth)
		}
		d.pos++
		d.skipWS()
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		if d.peek() == closer {
			d.pos++
			return nil
		}
		for {
			if c == '{' {
				if d.peek() != '"' {
					return d.unexpected("in object (expecting a member name)")
				}
				if err := d.skipString(); err != nil {
					return err
				}
				if err := d.colon(); err != nil {
					return err
				}
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			d.skipWS()
			switch d.peek() {
			case ',':
				d.pos++
				d.skipWS()
			case closer:
				d.pos++
				return nil
			default:
				if c == '{' {
					return d.unexpected("in object (expecting ',' or '}')")
				}
				return d.unexpected("in array (expecting ',' or ']')")
			}
		}
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return d.number()
		}
		return d.unexpected("where a value was expected")
	}
}

// colon consumes the ':' after a member name and the whitespace around it.
func (d *decoder) colon() error {
	d.skipWS()
	if d.peek() != ':' {
		return d.unexpected("after member name (expecting ':')")
	}
	d.pos++
	d.skipWS()
	if d.pos >= len(d.buf) {
		return d.unexpected("where a value was expected")
	}
	return nil
}

// rawValue consumes a value and returns it compacted. The result never
// shares capacity with the body, so appending to it cannot clobber other
// values, but it may share memory with it.
func (d *decoder) rawValue() ([]byte, error) {
	start := d.pos
	d.sawWS = false
	if err := d.skipValue(0); err != nil {
		return nil, err
	}
	raw := d.buf[start:d.pos:d.pos]
	if d.sawWS {
		raw = appendCompact(make([]byte, 0, len(raw)), raw)
	}
	return raw, nil
}

// appendCompact appends src, a valid JSON value, without insignificant
// whitespace.
func appendCompact(dst, src []byte) []byte {
	inString, escaped := false, false
	start := 0
	for i, c := range src {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// decodeEvent decodes the object at d.pos (d.buf[d.pos] == '{') into ev,
// then validates it. Problems with values are appended to v; malformed JSON
// aborts with a *syntaxError.
func (d *decoder) decodeEvent(ev *Event, v *validator) error {
	var seen, reported fieldSet
	var extSeen []string // extensions seen without a stored value (null or invalid)
	d.pos++
	d.skipWS()
	if d.peek() == '}' {
		d.pos++
		ev.validate(v, 0, false)
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.unexpected("in object (expecting a member name)")
		}
		name, err := d.readString()
		if err != nil {
			return err
		}
		if err := d.colon(); err != nil {
			return err
		}
		bit := coreBit(name)
		duplicate := false
		if bit != 0 {
			duplicate = seen&bit != 0
			seen |= bit
		} else {
			_, stored := ev.Extensions[name]
			duplicate = stored || slices.Contains(extSeen, name)
		}
		switch {
		case duplicate:
			v.addMalformed(name, "duplicate member")
			reported |= bit
			err = d.skipValue(0)
		case bit == 0:
			err = d.extension(ev, v, name, &extSeen)
		case bit == bitData:
			if d.peek() == 'n' {
				err = d.literal("null")
			} else {
				ev.Data, err = d.rawValue()
			}
		default:
			var ok bool
			ok, err = d.attribute(ev, v, name, bit)
			if !ok {
				reported |= bit
			}
		}
		if err != nil {
			return err
		}
		d.skipWS()
		switch d.peek() {
		case ',':
			d.pos++
			d.skipWS()
		case '}':
			d.pos++
			ev.validate(v, reported, false)
			return nil
		default:
			return d.unexpected("in object (expecting ',' or '}')")
		}
	}
}

// attribute decodes the string value of a core attribute other than data.
// It returns false if it reported a problem. JSON null leaves the attribute
// absent.
func (d *decoder) attribute(ev *Event, v *validator, name string, bit fieldSet) (bool, error) {
	switch d.peek() {
	case 'n':
		return true, d.literal("null")
	case '"':
	default:
		want := "a string"
		if bit == bitDataBase64 {
			want = "a base64 string"
		}
		v.add(name, "must be "+want+", got "+d.kindAt())
		return false, d.skipValue(0)
	}
	s, err := d.readString()
	if err != nil {
		return false, err
	}
	if d.lone {
		v.add(name, storable.Surrogate)
		return false, nil
	}
	switch bit {
	case bitSpecVersion:
		ev.SpecVersion = s
	case bitID:
		ev.ID = s
	case bitSource:
		ev.Source = s
	case bitType:
		ev.Type = s
	case bitDataContentType, bitDataSchema, bitSubject:
		if s == "" {
			v.add(name, "must not be empty when present")
			return false, nil
		}
		switch bit {
		case bitDataContentType:
			ev.DataContentType = s
		case bitDataSchema:
			ev.DataSchema = s
		default:
			ev.Subject = s
		}
	case bitTime:
		t, detail := parseTime(s)
		if detail != "" {
			v.add(name, detail+", got "+strconv.Quote(truncate(s)))
			return false, nil
		}
		ev.Time = t
	case bitDataBase64:
		b, err := base64.StdEncoding.AppendDecode(nil, []byte(s))
		if err != nil {
			v.add(name, "must be standard base64 with padding: "+err.Error())
			return false, nil
		}
		if b == nil {
			b = []byte{}
		}
		ev.DataBase64 = b
	}
	return true, nil
}

// parseTime parses an RFC 3339 timestamp, returning a problem detail if it
// is not one. Go's parser also takes a comma before the fraction, which RFC
// 3339 does not; and the zero instant (0001-01-01T00:00:00Z) is refused
// because the zero Time means "absent".
func parseTime(s string) (time.Time, string) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || strings.IndexByte(s, ',') >= 0 {
		return time.Time{}, "must be an RFC 3339 timestamp such as 2006-01-02T15:04:05Z"
	}
	if t.IsZero() {
		return time.Time{}, "0001-01-01T00:00:00Z is reserved to mean an absent time"
	}
	return t, ""
}

// extension decodes the value of an extension member. Values that are not
// stored (null, or rejected) are recorded in extSeen for duplicate
// detection.
func (d *decoder) extension(ev *Event, v *validator, name string, extSeen *[]string) error {
	var val any
	switch c := d.peek(); c {
	case '"':
		s, err := d.readString()
		if err != nil {
			return err
		}
		if d.lone {
			*extSeen = append(*extSeen, name)
			v.add(name, storable.Surrogate)
			return nil
		}
		val = s
	case 't':
		if err := d.literal("true"); err != nil {
			return err
		}
		val = true
	case 'f':
		if err := d.literal("false"); err != nil {
			return err
		}
		val = false
	case 'n':
		*extSeen = append(*extSeen, name)
		return d.literal("null")
	case '{', '[':
		*extSeen = append(*extSeen, name)
		v.add(name, "extension value must be a string, boolean or integer, got "+d.kindAt())
		return d.skipValue(0)
	default:
		if c != '-' && (c < '0' || c > '9') {
			return d.unexpected("where a value was expected")
		}
		start := d.pos
		if err := d.number(); err != nil {
			return err
		}
		lit := d.str[start:d.pos]
		n, ok := int32Of(lit)
		if !ok {
			*extSeen = append(*extSeen, name)
			v.add(name, "extension number must be an integer in int32 range, got "+truncate(lit))
			return nil
		}
		val = n
	}
	if ev.Extensions == nil {
		ev.Extensions = make(map[string]any, 4)
	}
	ev.Extensions[name] = val
	return nil
}

// int32Of converts a JSON number literal to int32 if its value is exactly an
// integer in range (so 1.0 and 1e2 count, 1.5 and 1e10 do not).
func int32Of(lit string) (int32, bool) {
	if !strings.ContainsAny(lit, ".eE") {
		n, err := strconv.ParseInt(lit, 10, 32)
		if err != nil {
			return 0, false
		}
		return int32(n), true
	}
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	mant, exp := lit, int64(0)
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		mant = lit[:i]
		e := lit[i+1:]
		eneg := e[0] == '-'
		if e[0] == '-' || e[0] == '+' {
			e = e[1:]
		}
		for j := 0; j < len(e); j++ {
			if exp < 1<<40 { // saturate; far beyond any body length
				exp = exp*10 + int64(e[j]-'0')
			}
		}
		if eneg {
			exp = -exp
		}
	}
	digits := mant
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = mant[:i] + mant[i+1:]
		exp -= int64(len(mant) - i - 1)
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, true
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	digits = trimmed
	if exp < 0 || int64(len(digits))+exp > 10 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	for ; exp > 0; exp-- {
		n *= 10
	}
	if neg {
		n = -n
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, false
	}
	return int32(n), true
}

// checkUTF8 returns a body problem if body is not valid UTF-8.
func checkUTF8(body []byte, what string) *ValidationError {
	if utf8.Valid(body) {
		return nil
	}
	off := 0
	for off < len(body) {
		r, size := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		off += size
	}
	return bodyProblem(fmt.Sprintf("%s is not valid UTF-8 (first invalid byte at offset %d)", what, off))
}
