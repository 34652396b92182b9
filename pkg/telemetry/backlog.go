package telemetry

import (
	"fmt"
	"slices"

	dto "github.com/prometheus/client_model/go"
)

// Backlog is what waits in PROST, read from the metrics at the moment asked:
// the answer of GET /admin/v1/backlog, for people (the console's health
// page) rather than for a scraper.
type Backlog struct {
	Outbox    OutboxBacklog     `json:"outbox"`
	Consumers []ConsumerBacklog `json:"consumers"`
	// Published counts the events this process's relay published since it
	// started (0 where no relay runs).
	Published int64 `json:"published"`
}

// OutboxBacklog is the outbox's state.
type OutboxBacklog struct {
	// Pending is the rows stored and not yet published.
	Pending int64 `json:"pending"`
	// OldestSeconds is the age of the oldest pending row (0 when none).
	OldestSeconds float64 `json:"oldest_seconds"`
}

// ConsumerBacklog is one consumer's state.
type ConsumerBacklog struct {
	Consumer string `json:"consumer"`
	// Lag is the messages not yet delivered plus those delivered and not
	// yet acknowledged (-1 when this process does not run the consumer).
	Lag int64 `json:"lag"`
	// DeadLetters is its dead letters waiting (state dead).
	DeadLetters int64 `json:"dead_letters"`
	// Applied and Failed count what this process's instance did since it
	// started: messages applied, and failed attempts.
	Applied int64 `json:"applied"`
	Failed  int64 `json:"failed"`
}

// Backlog gathers the metrics and reports the backlog.
func (m *Metrics) Backlog() (Backlog, error) {
	fams, err := m.reg.Gather()
	if err != nil {
		return Backlog{}, fmt.Errorf("telemetry: gather: %w", err)
	}
	out := Backlog{Consumers: []ConsumerBacklog{}}
	byName := map[string]*ConsumerBacklog{}
	consumer := func(name string) *ConsumerBacklog {
		c, ok := byName[name]
		if !ok {
			c = &ConsumerBacklog{Consumer: name, Lag: -1}
			byName[name] = c
		}
		return c
	}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			v := int64(value(mt))
			switch f.GetName() {
			case "prost_outbox_pending":
				out.Outbox.Pending = v
			case "prost_outbox_lag_seconds":
				out.Outbox.OldestSeconds = value(mt)
			case "prost_relay_published_total":
				out.Published += v
			case "prost_consumer_lag":
				consumer(label(mt, "consumer")).Lag = v
			case "prost_dlq_messages":
				consumer(label(mt, "consumer")).DeadLetters = v
			case "prost_consumer_processed_total":
				c := consumer(label(mt, "consumer"))
				switch label(mt, "result") {
				case "applied":
					c.Applied = v
				case "failed":
					c.Failed = v
				}
			}
		}
	}
	for _, c := range byName {
		out.Consumers = append(out.Consumers, *c)
	}
	slices.SortFunc(out.Consumers, func(a, b ConsumerBacklog) int {
		if a.Consumer < b.Consumer {
			return -1
		}
		if a.Consumer > b.Consumer {
			return 1
		}
		return 0
	})
	return out, nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
