package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ingest results counted by prost_ingest_events_total{result}.
const (
	ResultAccepted     = "accepted"
	ResultDuplicate    = "duplicate"
	ResultMalformed    = "malformed"    // 400
	ResultInvalid      = "invalid"      // 422
	ResultUnauthorized = "unauthorized" // 401
	ResultForbidden    = "forbidden"    // 403
	ResultTooLarge     = "too_large"    // 413
	ResultUnsupported  = "unsupported"  // 415
	ResultRateLimited  = "rate_limited" // 429
	ResultOverloaded   = "overloaded"   // 503
	ResultError        = "error"        // 500
)

// Metrics holds PROST's Prometheus metrics. Tenant ids are never labels:
// their number is unbounded.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	// IngestEvents counts events by result; a rejected request counts once
	// per event when its events could be read, else once.
	IngestEvents *prometheus.CounterVec
	// IngestDuration observes POST /v1/events latency by status code.
	IngestDuration *prometheus.HistogramVec
}

// NewMetrics returns the metrics on a fresh registry holding the Go runtime
// and process collectors too.
func NewMetrics(log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		reg: reg,
		log: log,
		IngestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prost_ingest_events_total",
			Help: "Events received on POST /v1/events, by result: accepted, duplicate, or the rejection reason.",
		}, []string{"result"}),
		IngestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prost_ingest_request_duration_seconds",
			Help:    "Latency of POST /v1/events, from the first byte read to the answer, by status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"code"}),
	}
	reg.MustRegister(m.IngestEvents, m.IngestDuration)
	for _, r := range []string{ResultAccepted, ResultDuplicate, ResultMalformed, ResultInvalid, ResultUnauthorized,
		ResultForbidden, ResultTooLarge, ResultUnsupported, ResultRateLimited, ResultOverloaded, ResultError} {
		m.IngestEvents.WithLabelValues(r) // present at 0 from the start
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, Timeout: 10 * time.Second})
}

// Registry is the registry behind Handler.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// OutboxSource reports the outbox's backlog: rows not yet published and the
// age of the oldest.
type OutboxSource interface {
	OutboxBacklog(ctx context.Context) (pending int64, oldest time.Duration, err error)
}

// WatchOutbox exports prost_outbox_pending and prost_outbox_lag_seconds,
// read from src at scrape time.
func (m *Metrics) WatchOutbox(src OutboxSource) {
	m.reg.MustRegister(&outboxCollector{src: src, log: m.log,
		pending: prometheus.NewDesc("prost_outbox_pending", "Outbox rows not yet published to JetStream.", nil, nil),
		lag:     prometheus.NewDesc("prost_outbox_lag_seconds", "Age of the oldest unpublished outbox row (0 when none).", nil, nil),
	})
}

// RelayStats is what a relay reports.
type RelayStats interface {
	Published() int64
	Refused() int64
	Reordered() int64
}

// WatchRelay exports prost_relay_published_total, prost_relay_refused_total
// and prost_relay_reordered_total from a relay.
func (m *Metrics) WatchRelay(r RelayStats) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "prost_relay_published_total",
		Help: "Outbox rows this process published to JetStream and marked published.",
	}, func() float64 { return float64(r.Published()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "prost_relay_refused_total",
		Help: "Outbox rows the bus refused for good (too large for the stream, an invalid subject), dead-lettered by this process. Alert on any increase.",
	}, func() float64 { return float64(r.Refused()) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "prost_relay_reordered_total",
		Help: "Rows JetStream stored ahead of an earlier row whose publish failed: per-key order may be broken for their partitions. Alert on any increase.",
	}, func() float64 { return float64(r.Reordered()) }))
}

// ConsumerStats is what a consumer runtime reports.
type ConsumerStats interface {
	Name() string
	Processed() int64
	Skipped() int64
	Failed() int64
	DeadLettered() int64
	Durables() map[string][]string
	Stranded() []string
}

// WatchConsumer exports prost_consumer_processed_total{consumer,result},
// prost_consumer_lag{consumer} (messages not yet delivered or acknowledged,
// summed over the consumer's durables, read from JetStream at scrape time)
// and prost_consumer_stranded_durables{consumer} (durables no lane reads
// that still hold messages, found when the consumer started).
func (m *Metrics) WatchConsumer(c ConsumerStats, js jetstream.JetStream) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "prost_consumer_stranded_durables",
		Help: "Durables of a consumer that no lane reads any more and that still hold messages " +
			"(PROST_PARTITIONS changed without draining first; docs/delivery.md).",
		ConstLabels: prometheus.Labels{"consumer": c.Name()},
	}, func() float64 { return float64(len(c.Stranded())) }))
	for result, f := range map[string]func() int64{
		"applied": c.Processed, "skipped": c.Skipped, "failed": c.Failed, "dead_lettered": c.DeadLettered,
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "prost_consumer_processed_total",
			Help:        "Messages handled by a consumer in this process: applied, skipped (already applied), failed attempts, dead_lettered.",
			ConstLabels: prometheus.Labels{"consumer": c.Name(), "result": result},
		}, func() float64 { return float64(f()) }))
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "prost_consumer_lag",
		Help:        "Messages waiting for a consumer: not yet delivered plus delivered and not yet acknowledged.",
		ConstLabels: prometheus.Labels{"consumer": c.Name()},
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var lag uint64
		for stream, durables := range c.Durables() {
			for _, d := range durables {
				cons, err := js.Consumer(ctx, stream, d)
				if err != nil {
					continue
				}
				if info, err := cons.Info(ctx); err == nil {
					lag += info.NumPending + uint64(info.NumAckPending)
				}
			}
		}
		return float64(lag)
	}))
}

// DeadLetterSource counts the dead letters waiting, by consumer.
type DeadLetterSource interface {
	CountDead(ctx context.Context) (map[string]int64, error)
}

// WatchDLQ exports prost_dlq_messages{consumer}: dead letters not yet
// replayed or purged, read from src at scrape time. Every consumer in known
// has a series, at 0 when it has no dead letter, so an alert can tell "none"
// from "not reporting".
func (m *Metrics) WatchDLQ(src DeadLetterSource, known ...string) {
	m.reg.MustRegister(&dlqCollector{src: src, log: m.log, known: known,
		desc: prometheus.NewDesc("prost_dlq_messages", "Dead letters waiting (state dead), by consumer.", []string{"consumer"}, nil)})
}

// BusState reports the losses of the bus's streams (pkg/busstate), as of
// its last check.
type BusState interface {
	Losses() (open, total map[string]int64)
}

// WatchBus exports, for each of streams, prost_bus_loss_detected{stream}
// (1 while the stream has lost messages it had acknowledged and they are
// not yet rebuilt, else 0) and prost_bus_losses_total{stream} (every loss
// recorded). Alert on prost_bus_loss_detected > 0.
func (m *Metrics) WatchBus(src BusState, streams ...string) {
	m.reg.MustRegister(&busCollector{src: src, streams: streams,
		detected: prometheus.NewDesc("prost_bus_loss_detected",
			"1 while a stream has lost messages JetStream had acknowledged and they are not yet rebuilt from Postgres.", []string{"stream"}, nil),
		total: prometheus.NewDesc("prost_bus_losses_total",
			"Losses of acknowledged messages detected on a stream (each is rebuilt from Postgres).", []string{"stream"}, nil),
	})
}

type busCollector struct {
	src             BusState
	streams         []string
	detected, total *prometheus.Desc
}

func (c *busCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.detected; ch <- c.total }

func (c *busCollector) Collect(ch chan<- prometheus.Metric) {
	open, total := c.src.Losses()
	for _, s := range c.streams {
		v := 0.0
		if open[s] > 0 {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.detected, prometheus.GaugeValue, v, s)
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(total[s]), s)
	}
}

type outboxCollector struct {
	src          OutboxSource
	log          *slog.Logger
	pending, lag *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pending; ch <- c.lag }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pending, oldest, err := c.src.OutboxBacklog(ctx)
	if err != nil {
		c.log.Warn("metrics: outbox stats", "error", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, oldest.Seconds())
}

type dlqCollector struct {
	src   DeadLetterSource
	known []string
	log   *slog.Logger
	desc  *prometheus.Desc
}

func (c *dlqCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *dlqCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.src.CountDead(ctx)
	if err != nil {
		c.log.Warn("metrics: dlq counts", "error", err)
		return
	}
	for _, k := range c.known {
		if _, ok := counts[k]; !ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 0, k)
		}
	}
	for consumer, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), consumer)
	}
}
