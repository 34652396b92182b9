package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/privacy"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
)

// lockedBuffer collects the platform's logs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// leakSearch looks for plain values where PROST keeps data: a pg_dump of
// the database, every file of the JetStream store, and the logs.
type leakSearch struct {
	t    *testing.T
	s    *stack
	logs *lockedBuffer
}

// places returns the text of each place.
func (l leakSearch) places() map[string]string {
	l.t.Helper()
	out, err := exec.Command("pg_dump", "--data-only", "--no-owner", l.s.p.env.DatabaseURL).Output()
	require.NoError(l.t, err, "pg_dump")
	var store strings.Builder
	err = filepath.WalkDir(l.s.storeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		store.Write(b)
		return nil
	})
	require.NoError(l.t, err)
	return map[string]string{"the database dump": string(out), "the JetStream store": store.String(), "the logs": l.logs.String()}
}

// check fails when any plain value is anywhere, and requires each marker
// (something stored in clear, such as an event id) to be in every place,
// so the search is known to look at the right data.
func (l leakSearch) check(plain []string, markers []string) {
	l.t.Helper()
	for where, text := range l.places() {
		for _, m := range markers {
			require.Contains(l.t, text, m, "the search must see %s in %s", m, where)
		}
		for _, p := range plain {
			require.NotContains(l.t, text, p, "%q is in %s in clear", p, where)
		}
	}
}

// TestPersonalData is issue 17's end-to-end check: a person's email and
// phone under a classified contract are nowhere in clear (database,
// JetStream, logs) while the tenant reads them; after the erasure reads show
// them erased, the audit chain verifies and records the erasure, and export
// returns nothing; a one-second retention shreds values through the job.
func TestPersonalData(t *testing.T) {
	logs := &lockedBuffer{}
	// A database of its own: the retention job (one per database) runs at
	// this test's interval, and the dump holds this test's data only.
	db := prosttest.NewDatabase(t)
	_, secretsKey := secretbox.NewKey()
	s := startStackWith(t, func(e *env) {
		e.RetentionInterval, e.DatabaseURL, e.SecretsKey = 200*time.Millisecond, db.URL, secretsKey
	}, func(p *platform) {
		p.log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	a := s.createApp("privacy-a")
	js := auth(a, "Content-Type", "application/json")
	var r [6]byte
	_, _ = rand.Read(r[:])
	tag := hex.EncodeToString(r[:])
	email := "jane." + tag + "@example.com"
	phone := "+351 91" + tag[:7]
	post := func(ev string) (int, []byte) { return s.post(a, "application/cloudevents+json", ev) }

	putContract := func(typ, body string) {
		t.Helper()
		code, b := s.do(http.MethodPut, "/v1/contracts/"+typ, js, []byte(body))
		require.Equal(t, http.StatusCreated, code, string(b))
	}
	putContract("user.signup", `{"owner":"accounts","description":"A person signed up.","level":"standard",
		"schema":"urn:prost:schema:user.signup:1","compatibility":"BACKWARD","idempotency":{"key":["source","id"]},
		"retry":{"max_attempts":5,"backoff":["1s"]},"data_subject":"/user_id","partition_key":"/email",
		"classification":{"/email":"personal","/phone":{"class":"personal","purpose":"support calls","retention":"2y"}},
		"purpose":"run the account","retention":"400d"}`)
	// A rule reads the values in clear and copies them into a new event.
	code, body := s.do(http.MethodPost, "/v1/rules", js, []byte(`{"name":"welcome","filters":[{"exact":{"type":"user.signup"}}],
		"condition":"data.email.endsWith('@example.com')",
		"actions":[{"emit":{"type":"user.welcomed","source":"/rules/welcome","data":{"to":"${data.email}","line":"Call ${data.phone}"}}}]}`))
	require.Equal(t, http.StatusCreated, code, string(body))

	// An HTTP subscription delivers the tenant its values in clear.
	delivered := make(chan []byte, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case delivered <- b:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	code, body = s.do(http.MethodPost, "/v1/subscriptions", js, []byte(`{"protocol":"HTTP","types":["user.signup"],"sink":"`+recv.URL+`"}`))
	require.Equal(t, http.StatusCreated, code, string(body))

	// Ingest: structured and batch; one refused for lack of its data subject.
	code, body = post(fmt.Sprintf(`{"specversion":"1.0","id":"pd-1-%s","source":"/accounts","type":"user.signup","data":{"user_id":"user-42","email":%q,"phone":%q,"plan":"pro"}}`, tag, email, phone))
	require.Equal(t, http.StatusAccepted, code, string(body))
	code, body = s.post(a, "application/cloudevents-batch+json", fmt.Sprintf(`[
		{"specversion":"1.0","id":"pd-2-%s","source":"/accounts","type":"user.signup","data":{"user_id":"user-42","email":%q}},
		{"specversion":"1.0","id":"pd-3-%s","source":"/accounts","type":"user.signup","data":{"user_id":"user-7","email":"bob.%s@example.com"}}]`, tag, email, tag, tag))
	require.Equal(t, http.StatusAccepted, code, string(body))
	code, body = post(fmt.Sprintf(`{"specversion":"1.0","id":"pd-x-%s","source":"/accounts","type":"user.signup","data":{"email":%q}}`, tag, email))
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	p := decodeProblem(t, body)
	require.Equal(t, "/user_id", p.Errors[0].Pointer)
	require.Equal(t, "contract", p.Errors[0].Keyword)

	// Everything is stored, published, audited and the rule has fired.
	require.Eventually(t, func() bool {
		return len(s.events(a, "?type=user.welcomed").Items) == 3
	}, 20*time.Second, 50*time.Millisecond)
	s.waitQuiet(t)

	// The tenant reads the values in clear, the rule's copies too.
	byID := func() map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, it := range s.events(a, "").Items {
			out[it["id"].(string)] = it
		}
		return out
	}
	evs := byID()
	require.Equal(t, map[string]any{"user_id": "user-42", "email": email, "phone": phone, "plan": "pro"}, evs["pd-1-"+tag]["data"])
	var welcomes []any
	for _, w := range s.events(a, "?type=user.welcomed").Items {
		d := w["data"].(map[string]any)
		welcomes = append(welcomes, d["to"].(string)+" / "+d["line"].(string))
	}
	require.ElementsMatch(t, []any{email + " / Call " + phone, email + " / Call ", "bob." + tag + "@example.com / Call "}, welcomes)

	// Deliveries and the SSE tail show the tenant its values in clear.
	var bodies []string
	for len(bodies) < 3 {
		select {
		case b := <-delivered:
			require.NotContains(t, string(b), "prost:enc:", "a delivery carries no ciphertext")
			bodies = append(bodies, string(b))
		case <-time.After(20 * time.Second):
			t.Fatalf("%d deliveries of 3", len(bodies))
		}
	}
	require.Contains(t, strings.Join(bodies, "\n"), email, "the webhook deliveries reveal the tenant's values")
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, s.url+"/v1/events/stream?types=user.signup&last_event_id=0", nil)
	require.NoError(t, err)
	for k, v := range auth(a) {
		req.Header.Set(k, v)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sse := bufio.NewScanner(resp.Body)
	sse.Buffer(nil, 1<<20)
	sawPlain := false
	for !sawPlain && sse.Scan() {
		sawPlain = strings.HasPrefix(sse.Text(), "data: ") && strings.Contains(sse.Text(), email)
	}
	scancel()
	_ = resp.Body.Close()
	require.True(t, sawPlain, "the SSE tail reveals the tenant's values")

	search := leakSearch{t: t, s: s, logs: logs}
	markers := []string{"pd-1-" + tag}
	search.check([]string{email, phone, tag[:7] + "@", strings.TrimPrefix(phone, "+")}, markers)

	// Export before the erasure: the subject's events, decrypted.
	export := func() []privacy.ExportLine {
		code, body := s.do(http.MethodGet, "/v1/data-subjects/user-42/export", auth(a), nil)
		require.Equal(t, http.StatusOK, code, string(body))
		var out []privacy.ExportLine
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l privacy.ExportLine
			require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
			out = append(out, l)
		}
		return out
	}
	lines := export()
	var ids []string
	for _, l := range lines {
		var ev struct{ ID, Type string }
		require.NoError(t, json.Unmarshal(l.Event, &ev))
		ids = append(ids, ev.Type)
		if ev.Type == "user.signup" {
			require.Contains(t, string(l.Event), email)
			require.NotNil(t, l.Contract)
			require.Equal(t, "/user_id", l.Contract.DataSubject)
		}
	}
	require.Subset(t, ids, []string{"user.signup", "user.signup", "user.welcomed"}, "the signups, and the rule's copies")

	// Erase user-42.
	code, body = s.do(http.MethodDelete, "/v1/data-subjects/user-42", auth(a, "X-Prost-Actor", "dpo@example.org"), nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var erasure privacy.Erasure
	require.NoError(t, json.Unmarshal(body, &erasure))
	require.Equal(t, 2, erasure.KeysDestroyed, "run the account, support calls")

	evs = byID()
	require.Equal(t, map[string]any{"user_id": "user-42", "email": map[string]any{"erased": true}, "phone": map[string]any{"erased": true}, "plan": "pro"},
		evs["pd-1-"+tag]["data"])
	require.Equal(t, "bob."+tag+"@example.com", evs["pd-3-"+tag]["data"].(map[string]any)["email"], "another person's values stay")
	for _, w := range s.events(a, "?type=user.welcomed").Items {
		require.NotContains(t, fmt.Sprint(w["data"]), email)
	}
	require.Empty(t, export(), "after the erasure, nothing")

	// The erasure is in the audit chain; the chain still verifies.
	require.Eventually(t, func() bool {
		for _, e := range s.audit(a) {
			if e.EventType == privacy.ErasedType && e.EventID == erasure.ErasureID.String() {
				return e.ActorID == "dpo@example.org" && e.Action == privacy.ActionErase
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
	s.waitQuiet(t)
	out, err := s.cli("audit", "verify", "--app", a.AppID.String())
	require.NoError(t, err, out)
	require.Contains(t, out, "ok      app "+a.AppID.String())
	search.check([]string{email, phone}, append(markers, erasure.ErasureID.String()))

	// Retention: a one-second retention is shredded by the job and reported.
	putContract("newsletter.optin", `{"owner":"marketing","description":"A person opted in.","level":"standard",
		"schema":"urn:prost:schema:newsletter.optin:1","compatibility":"BACKWARD","idempotency":{"key":["source","id"]},
		"retry":{"max_attempts":5},"data_subject":"/user_id","classification":{"/email":"personal"},
		"purpose":"send the newsletter","retention":"1s"}`)
	code, body = post(fmt.Sprintf(`{"specversion":"1.0","id":"nl-%s","source":"/marketing","type":"newsletter.optin","data":{"user_id":"user-9","email":"ann.%s@example.com"}}`, tag, tag))
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.Eventually(t, func() bool {
		for _, it := range s.events(a, "?type=newsletter.optin").Items {
			if fmt.Sprint(it["data"]) == fmt.Sprint(map[string]any{"user_id": "user-9", "email": map[string]any{"erased": true}}) {
				return true
			}
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "the retention job shreds the value")
	code, body = s.do(http.MethodGet, "/v1/privacy/shredded?reason=retention", auth(a), nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"purpose":"send the newsletter","retention":"1s","reason":"retention"`)
	require.Contains(t, logs.String(), `"msg":"privacy: retention shredded data keys"`)
	require.Contains(t, logs.String(), `"purpose":"send the newsletter","retention":"1s","keys":1`)
}

// TestPrivacyCLI: prost privacy export, erase and shredded, as an App.
func TestPrivacyCLI(t *testing.T) {
	s := startStack(t, nil)
	a := s.createApp("privacy-cli")
	code, body := s.do(http.MethodPut, "/v1/contracts/user.signup", auth(a, "Content-Type", "application/json"), []byte(`{"owner":"accounts",
		"description":"A person signed up.","level":"light","schema":"urn:prost:schema:user.signup:1","compatibility":"BACKWARD",
		"idempotency":{"key":["source","id"]},"data_subject":"/user_id","classification":{"/email":"personal"},
		"purpose":"run the account","retention":"400d"}`))
	require.Equal(t, http.StatusCreated, code, string(body))
	code, body = s.post(a, "application/cloudevents+json", `{"specversion":"1.0","id":"c-1","source":"/accounts","type":"user.signup","data":{"user_id":"user/1","email":"cli@example.com"}}`)
	require.Equal(t, http.StatusAccepted, code, string(body))

	// Without the App's credentials: a usage error.
	t.Setenv("PROST_APP_KEY", "")
	_, err := s.cli("privacy", "export", "user/1")
	var ee exitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.code)

	t.Setenv("PROST_APP_KEY", a.APIKey)
	t.Setenv("PROST_APP_SECRET", a.APISecret)
	t.Setenv("PROST_ACTOR", "dpo@example.org")
	out, err := s.cli("privacy", "export", "user/1")
	require.NoError(t, err, out)
	require.Contains(t, out, `"email":"cli@example.com"`)
	file := filepath.Join(t.TempDir(), "export.ndjson")
	out, err = s.cli("privacy", "export", "user/1", "--output", file)
	require.NoError(t, err, out)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, 1, bytes.Count(b, []byte("\n")))

	out, err = s.cli("privacy", "erase", "user/1")
	require.NoError(t, err, out)
	require.Contains(t, out, "erased user/1: 1 key(s) destroyed")
	require.Contains(t, out, "run the account  (retention 400d)")
	out, err = s.cli("privacy", "export", "user/1")
	require.NoError(t, err, out)
	require.Empty(t, out)
	out, err = s.cli("privacy", "erase", "--json", "user/1")
	require.NoError(t, err, out)
	require.Contains(t, out, `"keys_destroyed":0`)

	out, err = s.cli("privacy", "shredded", "--reason", "erasure")
	require.NoError(t, err, out)
	require.Contains(t, out, "erasure  run the account")
	require.Contains(t, out, "1 key(s)")
	out, err = s.cli("privacy", "shredded", "--json")
	require.NoError(t, err, out)
	var ts []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &ts))
	require.Len(t, ts, 1)

	for _, args := range [][]string{
		{"privacy", "shredded", "--reason", "whim"},
		{"privacy", "shredded", "--since", "monday"},
		{"privacy", "shredded", "--limit", "0"},
		{"privacy", "erase"},
		{"privacy", "export", "a", "b"},
	} {
		_, err := s.cli(args...)
		require.ErrorAs(t, err, &ee, args)
		require.Equal(t, 2, ee.code, args)
	}
	// The erasure was audited with the actor.
	require.Eventually(t, func() bool {
		for _, e := range s.audit(a) {
			if e.EventType == privacy.ErasedType && e.ActorID == "dpo@example.org" {
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
}
