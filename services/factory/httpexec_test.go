package factorysvc_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/webhook"
	factorysvc "github.com/prost-platform/prost/services/factory"
)

// An agent behind the http executor gets the module's files and the
// failure to heal, signed like a webhook; its answer is applied inside the
// module only.
func TestHTTPExecutor(t *testing.T) {
	secret := webhook.NewSecret()
	var got factorysvc.AgentRequest
	answer := factorysvc.AgentAnswer{Files: []factorysvc.AgentFile{{Path: "fix/answer.go", Content: []byte("package fix\n")}},
		Delete: []string{"old.go"}, Notes: "fixed the answer"}
	status := http.StatusOK
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		require.NoError(t, json.Unmarshal(body, &got))
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	}))
	defer agent.Close()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "old.go"), []byte("package main\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o600))
	job := factorysvc.Job{RunID: uuid.New(), Action: factorysvc.ActionHeal, Attempt: 2, Dir: dir, State: factory.Normal,
		Pack0JSON: json.RawMessage(`{"module":"m"}`), LastFailure: "--- FAIL: TestAnswer"}
	ex := factorysvc.HTTPExecutor{URL: agent.URL, Secret: secret, ExecutorName: "model"}
	out, err := ex.Run(context.Background(), job)
	require.NoError(t, err)
	require.Equal(t, "fixed the answer", out.Notes)
	require.Equal(t, factorysvc.AgentProtocol, got.Protocol)
	require.Equal(t, "heal", got.Action)
	require.Equal(t, 2, got.Attempt)
	require.Equal(t, "--- FAIL: TestAnswer", got.LastFailure)
	require.Len(t, got.Files, 2)
	b, err := os.ReadFile(filepath.Join(dir, "fix", "answer.go"))
	require.NoError(t, err)
	require.Equal(t, "package fix\n", string(b))
	_, err = os.Stat(filepath.Join(dir, "old.go"))
	require.True(t, os.IsNotExist(err))

	for name, c := range map[string]struct {
		status int
		answer factorysvc.AgentAnswer
		secret string
	}{
		"outside the module": {http.StatusOK, factorysvc.AgentAnswer{Files: []factorysvc.AgentFile{{Path: "../escape.go"}}}, secret},
		"absolute path":      {http.StatusOK, factorysvc.AgentAnswer{Delete: []string{"/etc/passwd"}}, secret},
		"an error status":    {http.StatusBadGateway, answer, secret},
		"a wrong signature":  {http.StatusOK, answer, webhook.NewSecret()},
	} {
		t.Run(name, func(t *testing.T) {
			status, answer = c.status, c.answer
			_, err := factorysvc.HTTPExecutor{URL: agent.URL, Secret: c.secret}.Run(context.Background(), job)
			require.Error(t, err)
			_, err = os.Stat(filepath.Join(filepath.Dir(dir), "escape.go"))
			require.True(t, os.IsNotExist(err))
		})
	}
	// A slow agent times out.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	defer slow.Close()
	_, err = factorysvc.HTTPExecutor{URL: slow.URL, Secret: secret, Timeout: 200 * time.Millisecond}.Run(context.Background(), job)
	require.ErrorContains(t, err, "deadline exceeded")
}
