package subscriptionshttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/httpapi"
	"github.com/prost-platform/prost/pkg/problem"
)

// Defaults of StreamConfig.
const (
	DefaultHeartbeat         = 15 * time.Second
	DefaultMaxStreamsPerApp  = 16
	DefaultStreamName        = "PROST_EVENTS"
	defaultRetryMilliseconds = 1000
)

// StreamConfig tunes GET /v1/events/stream. The zero value is usable.
type StreamConfig struct {
	// Heartbeat is how often a stream with nothing to send sends a comment,
	// so proxies and clients see it alive. Defaults to DefaultHeartbeat.
	Heartbeat time.Duration
	// MaxPerApp caps the streams one App has open at once (more: 429).
	// Defaults to DefaultMaxStreamsPerApp.
	MaxPerApp int
	// Stream is the JetStream stream read. Defaults to DefaultStreamName.
	Stream string
	// Reveal, when set, shows the tenant its classified values in clear
	// (see subscriptions.Config.Reveal).
	Reveal subscriptions.Revealer
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// stream serves the Server-Sent Events tail of a tenant's events, read
// from JetStream with an ordered consumer: every event is sent with the
// stream sequence as its id, so a client reconnecting with Last-Event-ID
// continues right after the last event it saw, with no gap and no
// duplicate. A resume point older than what the stream keeps is answered
// 410 Gone (read the event store, GET /v1/events, instead).
type stream struct {
	js  jetstream.JetStream
	cfg StreamConfig

	mu   sync.Mutex
	open map[uuid.UUID]int
}

func newStream(js jetstream.JetStream, cfg StreamConfig) *stream {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.MaxPerApp <= 0 {
		cfg.MaxPerApp = DefaultMaxStreamsPerApp
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStreamName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &stream{js: js, cfg: cfg, open: map[uuid.UUID]int{}}
}

// acceptsEventStream reports whether the request's Accept allows
// text/event-stream.
func acceptsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

func (s *stream) acquire(tenant uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[tenant] >= s.cfg.MaxPerApp {
		return false
	}
	s.open[tenant]++
	return true
}

func (s *stream) release(tenant uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[tenant]--; s.open[tenant] <= 0 {
		delete(s.open, tenant)
	}
}

func (s *stream) serve(w http.ResponseWriter, r *http.Request) error {
	if !acceptsEventStream(r) {
		return problem.Errorf(problem.NotAcceptable, "this route answers Server-Sent Events: send Accept: text/event-stream")
	}
	if s.js == nil {
		return problem.Errorf(problem.Unavailable, "the event stream is unavailable: the gateway has no NATS connection")
	}
	tenant := httpapi.TenantID(r.Context())
	q := r.URL.Query()
	sel, err := subscriptions.ParseSelection(splitList(q["types"]), q.Get("filter"))
	if err != nil {
		return err
	}
	resume, hasResume, err := lastEventID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	if err != nil {
		return problem.Errorf(problem.Unavailable, "the event stream is unavailable: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return problem.Errorf(problem.Unavailable, "the event stream is unavailable: %v", err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: sel.Subjects(tenant), DeliverPolicy: jetstream.DeliverNewPolicy,
		InactiveThreshold: streamConsumerInactive}
	if hasResume {
		first, last := info.State.FirstSeq, info.State.LastSeq
		switch {
		case resume > last:
			return problem.BadParam("Last-Event-ID", fmt.Sprintf("%d is not an id this stream handed out (the latest is %d)", resume, last))
		case last > 0 && resume+1 < first:
			return problem.Errorf(problem.Gone, "the resume point %d is older than what the stream keeps (the oldest kept is %d, max age %s): "+
				"read what you missed from GET /v1/events, then open the stream without Last-Event-ID", resume, first, info.Config.MaxAge)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, resume+1
	}
	if !s.acquire(tenant) {
		return problem.Errorf(problem.RateLimited, "at most %d event streams per App are open at once", s.cfg.MaxPerApp)
	}
	defer s.release(tenant)
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.Stream, cfg)
	if err != nil {
		return problem.Errorf(problem.Unavailable, "the event stream is unavailable: %v", err)
	}
	done := make(chan struct{})
	defer close(done)
	msgs := make(chan jetstream.Msg, 256)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-done:
		}
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return problem.Errorf(problem.Unavailable, "the event stream is unavailable: %v", err)
	}
	defer s.remove(ctx, cons, cc)

	// From here on the answer is a stream: failures end it, the client
	// reconnects with Last-Event-ID.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "retry: %d\n: events of App %s\n\n", defaultRetryMilliseconds, tenant)
	flush := func() bool {
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		buf.Reset()
		return rc.Flush() == nil
	}
	if !flush() {
		return nil
	}
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	stopping := httpapi.Stopping(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-stopping:
			return nil
		case <-beat.C:
			buf.WriteString(": heartbeat\n\n")
			if !flush() {
				return nil
			}
		case m := <-msgs:
			// Write what is queued in one go.
			for more := true; more; {
				s.writeEvent(ctx, &buf, tenant, m, sel)
				select {
				case m = <-msgs:
				default:
					more = false
				}
			}
			if buf.Len() > 0 && !flush() {
				return nil
			}
			beat.Reset(s.cfg.Heartbeat)
		}
	}
}

// streamConsumerInactive is how long the server keeps the consumer of a
// stream whose gateway went away without removing it (a crash).
const streamConsumerInactive = time.Minute

// remove stops reading and deletes the stream's consumer from the server
// at once. The server caps the consumers of a JetStream stream (1,000 by
// default) and every App's streams, NATS subscriptions and PROST's own
// consumers share that cap: left to expire, the consumers of streams opened
// and closed in a loop filled it within minutes, and every new consumer of
// every tenant was refused.
func (s *stream) remove(ctx context.Context, cons jetstream.Consumer, cc jetstream.ConsumeContext) {
	cc.Stop()
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.js.DeleteConsumer(ctx, s.cfg.Stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.cfg.Logger.Warn("event stream: cannot delete its consumer; the server removes it when inactive",
			"consumer", info.Name, "inactive_threshold", streamConsumerInactive, "error", err)
	}
}

// writeEvent adds m to buf as one SSE event, unless the filters drop it,
// with the tenant's classified values revealed.
func (s *stream) writeEvent(ctx context.Context, buf *bytes.Buffer, tenant uuid.UUID, m jetstream.Msg, sel subscriptions.Selection) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	data := m.Data()
	if s.cfg.Reveal != nil {
		if data, err = s.cfg.Reveal.Reveal(ctx, tenant, data); err != nil {
			s.cfg.Logger.Warn("event stream: cannot reveal an event; sent as stored", "error", err)
			data = m.Data()
		}
	}
	if sel.Filtered() && !sel.Match(data) {
		return
	}
	buf.WriteString("id: ")
	buf.WriteString(strconv.FormatUint(md.Sequence.Stream, 10))
	buf.WriteByte('\n')
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		buf.WriteString("data: ")
		buf.Write(line)
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}

// lastEventID reads the resume point: the Last-Event-ID header a reconnecting
// EventSource sends, or the last_event_id query parameter.
func lastEventID(r *http.Request) (uint64, bool, error) {
	name, v := "Last-Event-ID", strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		name, v = "last_event_id", r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, problem.BadParam(name, "must be the id of an event this stream sent (a decimal number)")
	}
	return n, true, nil
}
