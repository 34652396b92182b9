package outbox

import (
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/busauth"
	"github.com/prost-platform/prost/pkg/subjects"
)

// ReplayHeadroom is what a replay of a dead letter adds to a message's
// headers (Prost-Msg-Id, Prost-Replay-Of and a longer Nats-Msg-Id), rounded
// up. The gateway keeps every event this far below the stream's maximum
// message size, so that its replay fits too.
const ReplayHeadroom = 256

// Message is what the relay publishes for one outbox row: the envelope as
// the body, and the headers Content-Type, traceparent and tracestate (when
// the row has them). The publish adds Nats-Msg-Id and, with a signer,
// Prost-Signature.
func Message(subject string, envelope []byte, traceparent, tracestate string) *nats.Msg {
	msg := &nats.Msg{
		Subject: subject,
		Data:    envelope,
		Header:  nats.Header{"Content-Type": []string{"application/cloudevents+json"}},
	}
	if traceparent != "" {
		msg.Header["traceparent"] = []string{traceparent}
		if tracestate != "" {
			msg.Header["tracestate"] = []string{tracestate}
		}
	}
	return msg
}

// PublishedSize is the size JetStream holds against a stream's max_msg_size
// (and NATS against max_payload) for the event the relay will publish:
// the body plus the headers as sent, Nats-Msg-Id and the signature
// included.
func PublishedSize(tenant uuid.UUID, source, id, subject string, envelope []byte, traceparent, tracestate string) int {
	msg := Message(subject, envelope, traceparent, tracestate)
	msg.Header.Set(jetstream.MsgIDHeader, subjects.MsgID(tenant, source, id))
	msg.Header.Set(busauth.Header, strings.Repeat("x", busauth.SignatureLen))
	return headerLen(msg.Header) + len(envelope)
}

// headerLen is the length of h as nats.go writes it: "NATS/1.0\r\n", one
// "Key: value\r\n" per value, then "\r\n".
func headerLen(h nats.Header) int {
	n := len("NATS/1.0\r\n") + 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n
}

// refusal says why the bus would refuse msg for good before it is sent, or
// "". NATS closes the connection of a client whose protocol line is over
// 4 KiB (the subject is on it), so an over-long subject is never sent.
func refusal(msg *nats.Msg) string {
	if len(msg.Subject) > subjects.MaxLen {
		return "the subject is " + strconv.Itoa(len(msg.Subject)) + " bytes long; the limit is " + strconv.Itoa(subjects.MaxLen)
	}
	return ""
}
