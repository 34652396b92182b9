package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	factorysvc "github.com/prost-platform/prost/services/factory"
	gatewaysvc "github.com/prost-platform/prost/services/gateway"

	"github.com/prost-platform/prost/pkg/busstate"
	"github.com/prost-platform/prost/pkg/console"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/dataprotect"
	"github.com/prost-platform/prost/pkg/domain/billing"
	"github.com/prost-platform/prost/pkg/domain/privacy"
	"github.com/prost-platform/prost/pkg/domain/registry"
	"github.com/prost-platform/prost/pkg/domain/rules"
	"github.com/prost-platform/prost/pkg/domain/subscriptions"
	"github.com/prost-platform/prost/pkg/domain/subscriptions/subscriptionshttp"
	"github.com/prost-platform/prost/pkg/eventstore"
	"github.com/prost-platform/prost/pkg/lease"
	"github.com/prost-platform/prost/pkg/lifecycle"
	"github.com/prost-platform/prost/pkg/natsembed"
	"github.com/prost-platform/prost/pkg/outbox"
	"github.com/prost-platform/prost/pkg/postgres"
)

// env is PROST's configuration, read from environment variables. Every
// variable and its default is listed in docs/configuration.md.
type env struct {
	DatabaseURL        string        // DATABASE_URL
	NATSURL            string        // NATS_URL; empty => embedded server in `prost dev`
	NATSCreds          string        // PROST_NATS_CREDS: the services' .creds file
	NATSAuthDir        string        // PROST_NATS_AUTH_DIR: the key set (pkg/natsauth)
	NATSPublicURL      string        // PROST_NATS_PUBLIC_URL: where tenants reach NATS
	HTTPAddr           string        // PROST_HTTP_ADDR
	AdminToken         string        // PROST_ADMIN_TOKEN
	DataDir            string        // PROST_DATA_DIR
	EmbeddedNATSAddr   string        // PROST_EMBEDDED_NATS_ADDR
	NATSDir            string        // PROST_NATS_DIR
	SchemasDir         string        // PROST_SCHEMAS_DIR
	UnregisteredTypes  string        // PROST_UNREGISTERED_TYPES: reject | accept
	URL                string        // PROST_URL (admin CLI)
	LogLevel           string        // PROST_LOG_LEVEL
	LogFormat          string        // PROST_LOG_FORMAT
	MaxBodyBytes       int64         // PROST_MAX_BODY_BYTES
	MaxBatch           int           // PROST_MAX_BATCH
	Partitions         int           // PROST_PARTITIONS
	LeaseTTL           time.Duration // PROST_LEASE_TTL
	RateLimit          float64
	StreamReplicas     int           // PROST_STREAM_REPLICAS
	ShutdownTimeout    time.Duration // PROST_SHUTDOWN_TIMEOUT
	RelayPollInterval  time.Duration // PROST_RELAY_POLL_INTERVAL
	RelayAtomicMinRows int           // PROST_RELAY_ATOMIC_MIN_ROWS: fewest rows published as an atomic batch; negative: never
	OutboxRetention    time.Duration // PROST_OUTBOX_RETENTION
	DBMaxConns         int           // PROST_DB_MAX_CONNS
	IngestWriters      int           // PROST_INGEST_WRITERS
	MaxInFlight        int           // PROST_MAX_IN_FLIGHT
	IngestTimeout      time.Duration // PROST_INGEST_TIMEOUT
	SyncAlwaysEmbedded bool          // PROST_EMBEDDED_NATS_SYNC_ALWAYS
	SecretsKey         string        // PROST_SECRETS_KEY (base64 of 32 bytes)
	PprofAddr          string        // PROST_PPROF_ADDR: serve net/http/pprof here when set
	PprofContention    bool          // PROST_PPROF_CONTENTION: sample the block and mutex profiles while PprofAddr is set (default true)
	MemoryLimitMiB     int           // PROST_MEMORY_LIMIT_MIB: the Go runtime's soft memory limit; 0 leaves it to GOMEMLIMIT
	MetricsAddr        string        // PROST_METRICS_ADDR: serve /metrics there (unauthenticated unless PROST_METRICS_TOKEN) instead of on the API
	MetricsToken       string        // PROST_METRICS_TOKEN: bearer token of /metrics (default: the admin token)
	OutboundAllow      string        // PROST_OUTBOUND_ALLOW: internal addresses webhooks may reach (development)
	MaxRules           int           // PROST_MAX_RULES: rules per App
	RulesEvalBudget    time.Duration // PROST_RULES_EVAL_BUDGET: time all of one event's rules may take
	RulesMaxOverruns   int           // PROST_RULES_MAX_OVERRUNS: overruns in a row that disable a rule
	MaxSubjects        int           // PROST_MAX_SUBJECTS: registry subjects per App
	SchemaValidation   time.Duration // PROST_SCHEMA_VALIDATION_BUDGET: schema validation time per ingest request
	BusKey             string        // PROST_BUS_KEY: signs bus messages (base64 of 32 bytes; "new,old" while rotating)
	ReadyOutboxMaxAge  time.Duration // PROST_READY_OUTBOX_MAX_AGE: /readyz fails when a pending outbox row is older
	BusRebuild         string        // PROST_BUS_REBUILD: auto | manual | off (pkg/busstate)
	BusCheckInterval   time.Duration // PROST_BUS_CHECK_INTERVAL: how often the bus is checked for loss
	BusRebuildWindow   time.Duration // PROST_BUS_REBUILD_WINDOW: how far back an automatic rebuild goes (0: the stream's max_age)
	ConsoleSessionTTL  time.Duration // PROST_CONSOLE_SESSION_TTL
	ConsoleIdleTimeout time.Duration // PROST_CONSOLE_IDLE_TIMEOUT
	Factory            factoryEnv    // PROST_FACTORY_*
	PrivacyKEK         string        // PROST_PRIVACY_KEK: <version>:<base64 of 32 bytes>[,...]
	PrivacyCacheTTL    time.Duration // PROST_PRIVACY_KEY_CACHE_TTL
	RetentionInterval  time.Duration // PROST_PRIVACY_RETENTION_INTERVAL

	SubscriptionsRetrySchedule   []time.Duration // PROST_SUBSCRIPTIONS_RETRY_SCHEDULE
	SubscriptionsDisableAfter    time.Duration   // PROST_SUBSCRIPTIONS_DISABLE_AFTER
	SubscriptionsDeliveryTimeout time.Duration   // PROST_SUBSCRIPTIONS_DELIVERY_TIMEOUT
	StreamHeartbeat              time.Duration   // PROST_STREAM_HEARTBEAT
	StripeAPIURL                 string          // PROST_STRIPE_API_URL (stripe-mock in tests)
	RetryBudget                  time.Duration   // PROST_RETRY_BUDGET: every consumer's retry budget, unless its policy file sets retry_budget
}

func envFromOS() env {
	return env{
		DatabaseURL:        getenv("DATABASE_URL", postgres.DefaultURL),
		NATSURL:            os.Getenv("NATS_URL"),
		NATSCreds:          os.Getenv("PROST_NATS_CREDS"),
		NATSAuthDir:        os.Getenv("PROST_NATS_AUTH_DIR"),
		NATSPublicURL:      os.Getenv("PROST_NATS_PUBLIC_URL"),
		HTTPAddr:           getenv("PROST_HTTP_ADDR", "127.0.0.1:8080"),
		AdminToken:         os.Getenv("PROST_ADMIN_TOKEN"),
		DataDir:            getenv("PROST_DATA_DIR", "./.prost"),
		EmbeddedNATSAddr:   getenv("PROST_EMBEDDED_NATS_ADDR", natsembed.DefaultAddr),
		NATSDir:            getenv("PROST_NATS_DIR", "./nats"),
		SchemasDir:         getenv("PROST_SCHEMAS_DIR", "./schemas"),
		UnregisteredTypes:  getenv("PROST_UNREGISTERED_TYPES", "reject"),
		URL:                strings.TrimRight(getenv("PROST_URL", "http://127.0.0.1:8080"), "/"),
		LogLevel:           getenv("PROST_LOG_LEVEL", "info"),
		LogFormat:          getenv("PROST_LOG_FORMAT", "json"),
		MaxBodyBytes:       int64(getint("PROST_MAX_BODY_BYTES", gatewaysvc.DefaultMaxBodyBytes)),
		MaxBatch:           getint("PROST_MAX_BATCH", gatewaysvc.DefaultMaxBatch),
		Partitions:         getint("PROST_PARTITIONS", gatewaysvc.DefaultPartitions),
		LeaseTTL:           getduration("PROST_LEASE_TTL", lease.DefaultTTL),
		RateLimit:          getfloat("PROST_RATE_LIMIT", gatewaysvc.DefaultRateLimit),
		StreamReplicas:     getint("PROST_STREAM_REPLICAS", 0),
		ShutdownTimeout:    getduration("PROST_SHUTDOWN_TIMEOUT", lifecycle.DefaultShutdownTimeout),
		RelayPollInterval:  getduration("PROST_RELAY_POLL_INTERVAL", outbox.DefaultPollInterval),
		RelayAtomicMinRows: getint("PROST_RELAY_ATOMIC_MIN_ROWS", outbox.DefaultAtomicMinRows),
		OutboxRetention:    getduration("PROST_OUTBOX_RETENTION", outbox.DefaultRetention),
		DBMaxConns:         getint("PROST_DB_MAX_CONNS", postgres.DefaultMaxConns),
		IngestWriters:      getint("PROST_INGEST_WRITERS", eventstore.DefaultWriters),
		MaxInFlight:        getint("PROST_MAX_IN_FLIGHT", gatewaysvc.DefaultMaxInFlight),
		IngestTimeout:      getduration("PROST_INGEST_TIMEOUT", gatewaysvc.DefaultIngestTimeout),
		SyncAlwaysEmbedded: getbool("PROST_EMBEDDED_NATS_SYNC_ALWAYS", true),
		SecretsKey:         os.Getenv("PROST_SECRETS_KEY"),
		PprofAddr:          os.Getenv("PROST_PPROF_ADDR"),
		PprofContention:    getbool("PROST_PPROF_CONTENTION", true),
		MemoryLimitMiB:     getint("PROST_MEMORY_LIMIT_MIB", DefaultMemoryLimitMiB),
		MetricsAddr:        os.Getenv("PROST_METRICS_ADDR"),
		MetricsToken:       os.Getenv("PROST_METRICS_TOKEN"),
		OutboundAllow:      os.Getenv("PROST_OUTBOUND_ALLOW"),
		MaxRules:           getint("PROST_MAX_RULES", rules.DefaultMaxRules),
		RulesEvalBudget:    getduration("PROST_RULES_EVAL_BUDGET", rules.DefaultEvalBudget),
		RulesMaxOverruns:   getint("PROST_RULES_MAX_OVERRUNS", rules.DefaultMaxOverruns),
		MaxSubjects:        getint("PROST_MAX_SUBJECTS", registry.DefaultMaxSubjects),
		SchemaValidation:   getduration("PROST_SCHEMA_VALIDATION_BUDGET", registry.DefaultValidationBudget),
		BusKey:             os.Getenv("PROST_BUS_KEY"),
		ReadyOutboxMaxAge:  getduration("PROST_READY_OUTBOX_MAX_AGE", DefaultReadyOutboxMaxAge),
		BusRebuild:         getenv("PROST_BUS_REBUILD", busstate.ModeAuto),
		BusCheckInterval:   getduration("PROST_BUS_CHECK_INTERVAL", busstate.DefaultCheckInterval),
		BusRebuildWindow:   getduration("PROST_BUS_REBUILD_WINDOW", 0),
		ConsoleSessionTTL:  getduration("PROST_CONSOLE_SESSION_TTL", console.DefaultTTL),
		ConsoleIdleTimeout: getduration("PROST_CONSOLE_IDLE_TIMEOUT", console.DefaultIdleTimeout),
		PrivacyKEK:         os.Getenv("PROST_PRIVACY_KEK"),
		PrivacyCacheTTL:    getduration("PROST_PRIVACY_KEY_CACHE_TTL", dataprotect.DefaultCacheTTL),
		RetentionInterval:  getduration("PROST_PRIVACY_RETENTION_INTERVAL", privacy.DefaultRetentionInterval),
		Factory: factoryEnv{
			WorkDir:         os.Getenv("PROST_FACTORY_WORK_DIR"),
			ToolsDir:        os.Getenv("PROST_FACTORY_TOOLS_DIR"),
			DatabaseURL:     os.Getenv("PROST_FACTORY_DATABASE_URL"),
			WorkerID:        os.Getenv("PROST_FACTORY_WORKER_ID"),
			ApprovalTimeout: getduration("PROST_FACTORY_APPROVAL_TIMEOUT", factorysvc.DefaultApprovalTimeout),
			Timeout:         getduration("PROST_FACTORY_TIMEOUT", factorysvc.DefaultExecutorTimeout),
			AgentURL:        os.Getenv("PROST_FACTORY_AGENT_URL"),
			AgentSecret:     os.Getenv("PROST_FACTORY_AGENT_SECRET"),
			AgentStages:     getenv("PROST_FACTORY_AGENT_STAGES", "codegen,testgen,heal"),
		},

		SubscriptionsRetrySchedule:   getdurations("PROST_SUBSCRIPTIONS_RETRY_SCHEDULE", subscriptions.DefaultRetrySchedule),
		SubscriptionsDisableAfter:    getduration("PROST_SUBSCRIPTIONS_DISABLE_AFTER", subscriptions.DefaultDisableAfter),
		SubscriptionsDeliveryTimeout: getduration("PROST_SUBSCRIPTIONS_DELIVERY_TIMEOUT", subscriptions.DefaultDeliveryTimeout),
		StreamHeartbeat:              getduration("PROST_STREAM_HEARTBEAT", subscriptionshttp.DefaultHeartbeat),
		StripeAPIURL:                 strings.TrimRight(getenv("PROST_STRIPE_API_URL", billing.DefaultStripeAPIURL), "/"),
		RetryBudget:                  getduration("PROST_RETRY_BUDGET", consumer.DefaultRetryBudget),
	}
}

// DefaultReadyOutboxMaxAge is how old the oldest pending outbox row may get
// before /readyz of a gateway or relay process reports the relay stuck.
const DefaultReadyOutboxMaxAge = 2 * time.Minute

// getdurations reads a comma-separated list of durations.
func getdurations(k string, def []time.Duration) []time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	ds, err := parseDurations(v)
	if err != nil || len(ds) == 0 {
		badVars = append(badVars, k)
		return def
	}
	return ds
}

func (e env) logger(w *os.File) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.LogLevel)); err != nil {
		return nil, fmt.Errorf("PROST_LOG_LEVEL: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch e.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("PROST_LOG_FORMAT must be json or text, not %q", e.LogFormat)
	}
}

func getenv(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}

// The typed getters fall back to the default for an unparsable value; validate
// reports it so a typo never silently changes behaviour.
var badVars []string

func getint(k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		badVars = append(badVars, k)
		return def
	}
	return n
}

func getfloat(k string, def float64) float64 {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		badVars = append(badVars, k)
		return def
	}
	return n
}

func getbool(k string, def bool) bool {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		badVars = append(badVars, k)
		return def
	}
	return b
}

func getduration(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		badVars = append(badVars, k)
		return def
	}
	return d
}

func (e env) validate() error {
	if len(badVars) > 0 {
		return fmt.Errorf("cannot parse environment variable(s) %s; see docs/configuration.md", strings.Join(badVars, ", "))
	}
	if _, err := busstate.ParseMode(e.BusRebuild); err != nil {
		return fmt.Errorf("PROST_BUS_REBUILD %s, not %q", err, e.BusRebuild)
	}
	if e.UnregisteredTypes != "reject" && e.UnregisteredTypes != "accept" {
		return fmt.Errorf("PROST_UNREGISTERED_TYPES must be reject or accept, not %q", e.UnregisteredTypes)
	}
	return nil
}
