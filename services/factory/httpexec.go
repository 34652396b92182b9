package factorysvc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/webhook"
)

// AgentProtocol names the request and answer shapes of HTTPExecutor.
const AgentProtocol = "prost-factory-agent/1"

// DefaultAgentTimeout bounds one agent request when HTTPExecutor sets none.
const DefaultAgentTimeout = 5 * time.Minute

// MaxAgentAnswer bounds an agent's answer.
const MaxAgentAnswer = 64 << 20

// HTTPExecutor hands a stage to an external agent - a model-backed generator
// or healer - over HTTP (docs/factory.md, "The agent protocol"). It POSTs an
// AgentRequest (the module's files, the Pack0, the failure to heal) signed
// like PROST's webhooks (Standard Webhooks, with Secret), and applies the
// AgentAnswer: files to write and files to delete, inside the module only.
// Any answer but 200 with a valid body fails the stage.
type HTTPExecutor struct {
	// URL receives the requests.
	URL string
	// Secret signs them (whsec_...).
	Secret string
	// ExecutorName names the executor in the run report; defaults to "http".
	ExecutorName string
	// Timeout bounds one request; defaults to DefaultAgentTimeout (the
	// service's ExecutorTimeout applies too).
	Timeout time.Duration
	// Client sends the requests; defaults to a client that follows no
	// redirects.
	Client *http.Client
}

// AgentFile is a file of the module, its content base64 in JSON.
type AgentFile struct {
	Path    string `json:"path"`
	Content []byte `json:"content"`
}

// AgentRequest is what the agent receives.
type AgentRequest struct {
	Protocol    string          `json:"protocol"`
	RunID       string          `json:"run_id"`
	Action      string          `json:"action"`
	Attempt     int             `json:"attempt,omitempty"`
	State       factory.State   `json:"state"`
	Module      string          `json:"module"`
	Pack0       json.RawMessage `json:"pack0"`
	Files       []AgentFile     `json:"files"`
	LastFailure string          `json:"last_failure,omitempty"`
}

// AgentAnswer is what the agent answers.
type AgentAnswer struct {
	Files  []AgentFile `json:"files"`
	Delete []string    `json:"delete,omitempty"`
	Notes  string      `json:"notes,omitempty"`
}

// Name is ExecutorName or "http".
func (h HTTPExecutor) Name() string {
	if h.ExecutorName != "" {
		return h.ExecutorName
	}
	return "http"
}

// Run sends the job to the agent and applies its answer.
func (h HTTPExecutor) Run(ctx context.Context, job Job) (Output, error) {
	files, err := readTree(job.Dir)
	if err != nil {
		return Output{}, err
	}
	req := AgentRequest{Protocol: AgentProtocol, RunID: job.RunID.String(), Action: job.Action, Attempt: job.Attempt, State: job.State,
		Pack0: job.Pack0JSON, LastFailure: job.LastFailure, Files: []AgentFile{}}
	if job.Pack0 != nil {
		req.Module = job.Pack0.Module
	}
	for _, p := range sortedKeys(files) {
		req.Files = append(req.Files, AgentFile{Path: p, Content: files[p]})
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Output{}, err
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultAgentTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return Output{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "PROST-Factory/1")
	msgID := fmt.Sprintf("factory_%s_%s_%d", job.RunID, job.Action, job.Attempt)
	if err := webhook.SetHeaders(hr.Header, h.Secret, msgID, time.Now(), body); err != nil {
		return Output{}, err
	}
	client := h.Client
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(hr)
	if err != nil {
		return Output{}, fmt.Errorf("agent %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAgentAnswer+1))
	if err != nil {
		return Output{}, fmt.Errorf("agent %s: read the answer: %w", h.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Output{}, fmt.Errorf("agent %s answered %d: %s", h.URL, resp.StatusCode, tail(string(b), 500))
	}
	if len(b) > MaxAgentAnswer {
		return Output{}, fmt.Errorf("agent %s: the answer is over 64 MiB", h.URL)
	}
	var ans AgentAnswer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ans); err != nil {
		return Output{}, fmt.Errorf("agent %s: the answer is not an agent answer: %w", h.URL, err)
	}
	for _, p := range ans.Delete {
		if err := factory.CheckTreePath(p); err != nil {
			return Output{}, fmt.Errorf("agent %s: delete: %w", h.URL, err)
		}
	}
	for _, f := range ans.Files {
		if err := factory.CheckTreePath(f.Path); err != nil || f.Path == treeMarker {
			return Output{}, fmt.Errorf("agent %s: file %q is not a path inside the module", h.URL, f.Path)
		}
	}
	for _, p := range ans.Delete {
		if err := os.Remove(filepath.Join(job.Dir, filepath.FromSlash(p))); err != nil && !os.IsNotExist(err) {
			return Output{}, err
		}
	}
	for _, f := range ans.Files {
		p := filepath.Join(job.Dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			return Output{}, err
		}
		if err := os.WriteFile(p, f.Content, 0o600); err != nil {
			return Output{}, err
		}
	}
	notes := ans.Notes
	if notes == "" {
		notes = fmt.Sprintf("the agent wrote %d file(s) and deleted %d", len(ans.Files), len(ans.Delete))
	}
	return Output{Notes: notes}, nil
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
