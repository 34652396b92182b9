// Package cloudevent parses CloudEvents v1.0 from HTTP ingest requests,
// validates their envelopes and encodes them to canonical structured JSON.
//
// # Modes
//
// [ParseRequest] picks the HTTP binding mode from the request's Content-Type,
// compared case-insensitively and with parameters such as "; charset=utf-8"
// allowed:
//
//   - [ModeBatch]: application/cloudevents-batch+json. The body is a JSON
//     array of structured events. An empty array is a valid batch of zero
//     events. A batch is atomic: if any entry is invalid, no event is
//     returned and the error lists the problems of every entry.
//   - [ModeStructured]: application/cloudevents+json. The body is one JSON
//     object holding every attribute as a top-level member; members that are
//     not core attributes are extensions. The payload is in "data" (a JSON
//     value) or "data_base64" (binary data), never both.
//   - [ModeBinary]: any other Content-Type, or none. Attributes and
//     extensions travel in percent-encoded ce-<name> headers, Content-Type is
//     the datacontenttype and the body is the data.
//
// Other formats of the structured media types (for example
// application/cloudevents+avro) are rejected with [ErrUnsupportedMediaType].
//
// # Errors
//
// Every error ParseRequest returns falls in one of three classes, which a
// gateway maps to HTTP statuses in one place: [ErrUnsupportedMediaType]
// (415), [ErrTooLarge] (413) and [*ValidationError] (400), which lists
// every [Problem] found. Any other error comes from reading the body.
//
// # Canonical JSON
//
// [Event.AppendJSON] and [Event.MarshalJSON] write the structured JSON form
// with members in a fixed order (core attributes, then extensions sorted by
// name, then the data). Parsing that output as a structured event yields an
// equal [Event]; that JSON is what PROST stores, publishes and returns.
//
// The parser is a hand-written single-pass JSON scanner: it does not use
// reflection, rejects invalid UTF-8 and duplicate member names, and never
// panics on any input.
package cloudevent
