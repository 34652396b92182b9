package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/console"
	"github.com/prost-platform/prost/pkg/consumer"
	"github.com/prost-platform/prost/pkg/prosttest"
)

// The console's browser tests drive Debian's chromium, headless, against the
// whole platform running in this process on a fresh database (decision
// 0013). Each scenario saves a screenshot under artifacts/console/ (or
// $PROST_ARTIFACTS) and every page it shows is checked with axe-core for
// serious and critical accessibility violations, and for Content-Security-
// Policy violations and uncaught script errors.

// chromiumPath finds the browser: $CHROMIUM, else chromium on PATH.
func chromiumPath(t *testing.T) string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the console's browser tests need Debian's chromium: apt-get install -y chromium (make test installs it)")
	}
	return p
}

// browser is one headless Chromium for a test.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string // the platform's URL
	dir   string // where screenshots go
	axeJS string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	if _, ok := console.Assets(); !ok {
		t.Fatal("the console is not built into this test binary: run make console (make test does)")
	}
	axe, err := os.ReadFile("../../web/node_modules/axe-core/axe.min.js")
	require.NoError(t, err, "axe-core comes from web/node_modules: run make console (make test does)")
	dir := os.Getenv("PROST_ARTIFACTS")
	if dir == "" {
		dir = "../../artifacts"
	}
	dir = filepath.Join(dir, "console")
	require.NoError(t, os.MkdirAll(dir, 0o755))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// Start the browser now, so that each page below is a new context of it.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("about:blank")))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return &browser{t: t, ctx: bctx, base: base, dir: dir, axeJS: string(axe)}
}

// tab is one page in a browser context of its own: its own cookies, so one
// tab is one person's session.
type tab struct {
	t    *testing.T
	b    *browser
	ctx  context.Context
	name string

	mu     sync.Mutex
	errors []string
}

// cspRecorder keeps every Content-Security-Policy violation the page reports.
const cspRecorder = `window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`

func (b *browser) tab(t *testing.T, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, b: b, ctx: ctx, name: name}
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			tb.mu.Lock()
			tb.errors = append(tb.errors, e.ExceptionDetails.Text+" "+exceptionText(e.ExceptionDetails))
			tb.mu.Unlock()
		}
	}))
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspRecorder})
	require.NoError(t, err)
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		require.Empty(t, tb.errors, "uncaught script errors in the console")
	})
	return tb
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil || d.Exception == nil {
		return ""
	}
	return d.Exception.Description
}

// run runs actions with a deadline.
func (tb *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	require.NoError(tb.t, chromedp.Do(ctx, actions...))
}

// eval evaluates a JavaScript expression (awaiting a promise) into T.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	require.NoError(tb.t, err, js)
	return v
}

// open loads a console page and waits for the app to draw it.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.run(chromedp.Navigate(tb.b.base + "/console" + path))
	tb.waitFor(`document.querySelector("#root") && document.querySelector("#root").childElementCount > 0`, "the app drew "+path)
}

// waitFor polls a JavaScript predicate until it is true. A poll the page's
// navigation cut short (its JavaScript context replaced by the next page's:
// "Cannot find context with specified id") is started again on the new page.
func (tb *tab) waitFor(predicate, what string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 40*time.Second)
	defer cancel()
	var err error
	for {
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(35*time.Second)))
		if err == nil || ctx.Err() != nil || !contextReplaced(err) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		text, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		tb.shot("FAILED-" + strings.NewReplacer(" ", "-", "/", "-").Replace(what))
		tb.t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, text)
	}
}

// contextReplaced says whether err is Chrome's answer to a script run in a
// JavaScript context a navigation has just destroyed.
func contextReplaced(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") || strings.Contains(msg, "Execution context was destroyed")
}

// waitText waits until the page shows text (inside the element of css, "" for the body).
func (tb *tab) waitText(css, text string) {
	tb.t.Helper()
	scope := "document.body"
	if css != "" {
		scope = fmt.Sprintf("document.querySelector(%q)", css)
	}
	tb.waitFor(fmt.Sprintf(`(() => { const e = %s; return !!e && e.innerText.includes(%q) })()`, scope, text), fmt.Sprintf("%q in %s", text, scope))
}

// click clicks the element css selects, as a person would (mouse events).
func (tb *tab) click(css string) {
	tb.t.Helper()
	tb.run(chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

// clickButton clicks the button or link whose text is label.
func (tb *tab) clickButton(label string) {
	tb.t.Helper()
	tb.run(chromedp.Click(chromedp.Search(fmt.Sprintf(`//*[self::button or self::a][normalize-space()=%q]`, label)), chromedp.NodeVisible))
}

// fill replaces the value of an input or textarea the way typing would,
// so that React sees it.
func (tb *tab) fill(css, value string) {
	tb.t.Helper()
	js := fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) return false;
		const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
		Object.getOwnPropertyDescriptor(proto, "value").set.call(el, %q);
		el.dispatchEvent(new Event("input", { bubbles: true }));
		return true;
	})()`, css, value)
	require.True(tb.t, eval[bool](tb, js), "no element %s", css)
}

// typeInto types into an input with key events.
func (tb *tab) typeInto(css, text string) {
	tb.t.Helper()
	tb.run(chromedp.SendKeys(chromedp.CSS(css), text, chromedp.NodeVisible))
}

// viewport sets the window's size in CSS pixels.
func (tb *tab) viewport(w, h int64) {
	tb.t.Helper()
	tb.run(chromedp.EmulateViewport(w, h))
}

// shot saves a full-page screenshot as artifacts/console/<name>.png.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	// From the top, so that the sticky header is where a person sees it.
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); new Promise((r) => requestAnimationFrame(() => r()))`, chromedp.EvalAwaitPromise))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	require.NoError(tb.t, os.WriteFile(filepath.Join(tb.b.dir, name+".png"), png, 0o644))
}

// violation is one axe-core finding.
type violation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// checkPage runs the checks every console page must pass: axe-core finds no
// serious or critical violation, the page reported no CSP violation, and it
// fits the window's width without scrolling sideways.
func (tb *tab) checkPage(what string) {
	tb.t.Helper()
	if !eval[bool](tb, `typeof window.axe !== "undefined"`) {
		ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](tb.b.axeJS))
		cancel()
		require.NoError(tb.t, err, "inject axe-core")
	}
	raw := eval[string](tb, `axe.run(document, { resultTypes: ["violations"] }).then((r) => JSON.stringify(
		r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => String(n.target)) }))))`)
	var vs []violation
	require.NoError(tb.t, json.Unmarshal([]byte(raw), &vs))
	var bad []string
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", ")))
		}
	}
	require.Empty(tb.t, bad, "axe-core on %s", what)
	csp := eval[[]string](tb, `window.__csp || []`)
	require.Empty(tb.t, csp, "Content-Security-Policy violations on %s", what)
	wide := eval[[]string](tb, `document.documentElement.scrollWidth <= window.innerWidth + 1 ? [] :
		[...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
			.slice(0, 5).map((e) => e.tagName + "." + String(e.className).slice(0, 60))`)
	require.Empty(tb.t, wide, "%s scrolls sideways at %d px", what, eval[int](tb, `window.innerWidth`))
}

// fetchStatus makes a request from inside the page, with its session
// cookie, and answers the status.
func (tb *tab) fetchStatus(method, path, body string, headers map[string]string) int {
	tb.t.Helper()
	if headers == nil {
		headers = map[string]string{}
	}
	h, _ := json.Marshal(headers)
	init := fmt.Sprintf(`{ method: %q, headers: %s, credentials: "same-origin" }`, method, h)
	if body != "" {
		init = fmt.Sprintf(`{ method: %q, headers: %s, credentials: "same-origin", body: %q }`, method, h, body)
	}
	return eval[int](tb, fmt.Sprintf(`fetch(%q, %s).then((r) => r.status)`, path, init))
}

// signIn signs in through the sign-in page, typing as a person would.
func (tb *tab) signInApp(c creds) {
	tb.t.Helper()
	tb.open("/sign-in")
	tb.waitText("", "Sign in as")
	tb.typeInto("#api-key", c.APIKey)
	tb.typeInto("#api-secret", c.APISecret)
	tb.click(`form button[type="submit"]`)
	tb.waitText(`[data-testid="whoami"]`, "App:")
}

func TestConsoleBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives chromium")
	}
	db := prosttest.NewDatabase(t)
	s := startStackWith(t, func(e *env) {
		e.DatabaseURL = db.URL
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		e.SecretsKey = base64.StdEncoding.EncodeToString(key) // signing secrets of subscriptions and webhooks
	}, nil)
	b := newBrowser(t, s.url)
	a, other := s.createApp("shop"), s.createApp("warehouse")

	// A consumer beside the platform's that fails reservations permanently
	// until it is fixed: the dead letter the console replays.
	var fixed atomic.Bool
	var reserved atomic.Int64
	s.testConsumer(t, "inventory", consumer.RetryPolicy{MaxDeliver: 2, Backoff: []time.Duration{20 * time.Millisecond}},
		func(_ context.Context, _ pgx.Tx, msgs []*consumer.Message) error {
			for _, m := range msgs {
				if e := decodeEvent(t, m); e.Type == "inventory.reserve" {
					if !fixed.Load() {
						return consumer.Permanent(errors.New("no stock table for warehouse 7"))
					}
					reserved.Add(1)
				}
			}
			return nil
		})

	// A rule of A's that fires on big failed payments, so the journey has a decision.
	code, body := s.do("POST", "/v1/rules", auth(a, "Content-Type", "application/json"), []byte(`{"name": "big failed payments",
		"filters": [{"exact": {"type": "payment.failed"}}], "condition": "data.amount > 1000",
		"actions": [{"emit": {"type": "alert.raised", "source": "/rules/big-payments", "data": {"amount": "${data.amount}"}}}]}`))
	require.Equal(t, http.StatusCreated, code, string(body))

	tenant := b.tab(t, "tenant")
	tenant.open("/")
	tenant.waitText("", "Sign in as")
	tenant.checkPage("the sign-in page")
	tenant.shot("01-sign-in")
	tenant.signInApp(a)

	t.Run("events and a journey", func(t *testing.T) {
		tenant.t = t
		tenant.open("/events")
		tenant.waitText("", "No events yet")
		tenant.checkPage("the empty events page")
		// The keyboard reaches the content first: Tab focuses "Skip to content", Enter jumps to it.
		tenant.run(chromedp.KeyEvent("\t"))
		require.Equal(t, "Skip to content", eval[string](tenant, `document.activeElement.innerText`))
		tenant.run(chromedp.KeyEvent("\r"))
		tenant.waitFor(`document.activeElement && document.activeElement.id === "main"`, "the focus on the main content")

		// An event posted through the API shows in the explorer.
		code, body := s.post(a, "application/cloudevents+json",
			`{"specversion":"1.0","id":"pay-1","source":"/billing","type":"payment.failed","actorid":"user-42","action":"charge","data":{"amount":1200,"currency":"EUR"}}`)
		require.Equal(t, http.StatusAccepted, code, string(body))
		tenant.clickButton("Refresh")
		tenant.waitText(`table[aria-label="Events"]`, "pay-1")
		tenant.checkPage("the events page")
		tenant.shot("02-events")

		// Its journey: stored, published, audited, and the rule's decision with its facts.
		tenant.clickButton("pay-1")
		tenant.waitText(`[data-testid="journey"]`, "Entry #1 of the audit chain")
		tenant.waitText(`[data-testid="journey"]`, "data.amount")
		tenant.waitText(`[data-testid="journey"]`, "big failed payments")
		tenant.waitText(`[data-testid="journey"]`, "Published to the event stream")
		tenant.waitText(`[data-testid="journey"]`, "emitted")
		tenant.checkPage("the journey page")
		tenant.shot("03-journey")
	})

	t.Run("the live tail", func(t *testing.T) {
		tenant.t = t
		tenant.open("/events")
		tenant.clickButton("Follow live")
		tenant.waitText(`[data-testid="live-state"]`, "live")
		code, body := s.post(a, "application/cloudevents+json",
			`{"specversion":"1.0","id":"live-1","source":"/shop","type":"order.shipped","data":{"order":"o-1"}}`)
		require.Equal(t, http.StatusAccepted, code, string(body))
		tenant.waitText(`[data-testid="live-events"]`, "live-1")
		tenant.checkPage("the events page following live")
		tenant.shot("02b-live-tail")
		tenant.clickButton("Stop")
	})

	t.Run("a subscription and its signed test ping", func(t *testing.T) {
		tenant.t = t
		var pings atomic.Int64
		var signed atomic.Bool
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			signed.Store(r.Header.Get("webhook-id") != "" && strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,"))
			pings.Add(1)
			w.WriteHeader(http.StatusNoContent)
		}))
		defer sink.Close()
		tenant.open("/subscriptions")
		tenant.waitText("", "No subscriptions yet")
		tenant.checkPage("the empty subscriptions page")
		tenant.clickButton("New subscription")
		tenant.fill("#sub-sink", sink.URL+"/hook")
		tenant.fill("#sub-types", "order.placed")
		tenant.clickButton("Create subscription")
		tenant.waitText(`[data-testid="subscription-secret"]`, "whsec_")
		tenant.shot("14-subscription-created")
		tenant.clickButton("Open the subscription")
		tenant.waitText("", "No attempt yet")
		tenant.clickButton("Send a test ping")
		tenant.waitText(`[data-testid="ping-result"]`, "The sink took the signed ping")
		tenant.waitText(`table[aria-label="Attempts"]`, "succeeded")
		require.EqualValues(t, 1, pings.Load())
		require.True(t, signed.Load(), "the ping carries the Standard Webhooks headers")
		tenant.checkPage("the subscription page")
		tenant.shot("15-subscription")
	})

	t.Run("usage per window", func(t *testing.T) {
		tenant.t = t
		tenant.open("/usage")
		tenant.waitText("", "No meters yet")
		tenant.checkPage("the empty usage page")
		tenant.clickButton("New meter")
		tenant.fill("#m-slug", "ticks")
		tenant.fill("#m-type", "usage.tick")
		tenant.clickButton("Create meter")
		tenant.waitText(`[data-testid="meter-ticks"]`, "Nothing counted")
		for i := range 3 {
			code, body := s.post(a, "application/cloudevents+json",
				fmt.Sprintf(`{"specversion":"1.0","id":"tick-%d","source":"/meter","type":"usage.tick","data":{}}`, i))
			require.Equal(t, http.StatusAccepted, code, string(body))
		}
		tenant.clickButton("minute")
		// The consumer counts them in a moment: ask again, as a person would, until it has.
		counted := false
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !counted; {
			eval[chromedp.Void](tenant, `[...document.querySelectorAll('[data-testid="meter-ticks"] button')].find((x) => x.getAttribute("aria-label") === "Refresh ticks").click()`)
			time.Sleep(time.Second)
			counted = eval[bool](tenant, `document.querySelector('[data-testid="meter-ticks"]').innerText.includes("Total in range: 3")`)
		}
		require.True(t, counted, "3 ticks counted in the console")
		tenant.checkPage("the usage page")
		tenant.shot("16-usage")
	})

	t.Run("a schema's second version and its diff", func(t *testing.T) {
		tenant.t = t
		code, body := s.do("POST", "/v1/registry/subjects/order.placed/versions", auth(a, "Content-Type", "application/json"),
			[]byte(`{"schema": {"type":"object","properties":{"order_id":{"type":"string"},"total":{"type":"number","minimum":0,"maximum":10000}},"required":["order_id","total"]}}`))
		require.Equal(t, http.StatusOK, code, string(body))
		tenant.open("/schemas")
		tenant.waitText(`table[aria-label="Subjects"]`, "order.placed")
		tenant.checkPage("the schemas page")
		tenant.clickButton("order.placed")
		tenant.waitText("", "Register a new version")

		// A narrower maximum is refused by the check before registering.
		tenant.fill("#nv-schema", `{"type":"object","properties":{"order_id":{"type":"string"},"total":{"type":"number","minimum":0,"maximum":500}},"required":["order_id","total"]}`)
		tenant.clickButton("Check and register")
		tenant.waitText("", "Not compatible: not registered")
		tenant.waitText("", "MAXIMUM_DECREASED")
		tenant.shot("04-schema-incompatible")
		code, body = s.do("GET", "/v1/registry/subjects/order.placed/versions", auth(a), nil)
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `[1]`, string(body), "nothing was registered")

		// A wider maximum and a description are compatible: version 2, and the diff names each change.
		tenant.fill("#nv-schema", `{"type":"object","description":"An order was placed.","properties":{"order_id":{"type":"string"},"total":{"type":"number","minimum":0,"maximum":50000}},"required":["order_id","total"]}`)
		tenant.clickButton("Check and register")
		tenant.waitText("", "Registered as version 2")
		tenant.waitText(`[data-testid="schema-diff"]`, "Version 2")
		tenant.waitText(`[data-testid="schema-diff"]`, "50000")
		tenant.waitText(`table[aria-label="Changes"]`, "MAXIMUM_INCREASED")
		tenant.waitText(`table[aria-label="Changes"]`, "DESCRIPTION_CHANGED")
		tenant.checkPage("the schema page")
		tenant.shot("05-schema-diff")
	})

	t.Run("a rule with an error, then fixed", func(t *testing.T) {
		tenant.t = t
		tenant.open("/rules")
		tenant.waitText(`table[aria-label="Rules"]`, "big failed payments")
		tenant.checkPage("the rules page")
		tenant.clickButton("New rule")
		tenant.waitText("", "Condition (CEL)")
		tenant.fill("#rule-name", "reservation alarm")
		tenant.fill("#rule-filters", `[{"exact": {"type": "inventory.reserve"}}]`)
		tenant.fill("#rule-condition", "data.qty >")
		tenant.fill("#rule-actions", `[{"emit": {"type": "inventory.alarm", "source": "/rules/alarm"}}]`)
		tenant.clickButton("Create rule")
		tenant.waitText(`[data-testid="errors-condition"]`, "/condition, line 1, column")
		require.True(t, eval[bool](tenant, `document.activeElement && document.activeElement.id === "rule-condition"`), "the condition has the focus")
		require.Equal(t, "true", eval[string](tenant, `document.querySelector("#rule-condition").getAttribute("aria-invalid")`))
		tenant.checkPage("the rule form with an error")
		tenant.shot("06-rule-error")

		tenant.fill("#rule-condition", "data.qty > 100")
		tenant.clickButton("Create rule")
		tenant.waitText("h1", "reservation alarm")
		tenant.waitText("", "No decision yet")
		tenant.checkPage("the rule page")
		tenant.shot("07-rule")
	})

	t.Run("a dead letter replayed", func(t *testing.T) {
		tenant.t = t
		code, body := s.post(a, "application/cloudevents+json",
			`{"specversion":"1.0","id":"res-1","source":"/orders","type":"inventory.reserve","data":{"sku":"X","qty":3}}`)
		require.Equal(t, http.StatusAccepted, code, string(body))
		require.Eventually(t, func() bool {
			code, body := s.do("GET", "/v1/dlq", auth(a), nil)
			return code == http.StatusOK && strings.Contains(string(body), "res-1")
		}, 20*time.Second, 50*time.Millisecond, "res-1 is dead-lettered")
		tenant.open("/dead-letters")
		tenant.waitText(`table[aria-label="Dead letters"]`, "res-1")
		tenant.checkPage("the dead letters page")
		tenant.click(`table[aria-label="Dead letters"] a`)
		tenant.waitText("", "no stock table for warehouse 7")
		tenant.clickButton("Dry run")
		tenant.waitText("", "Dry run: nothing was changed")
		tenant.waitText("", "1 entry would be replayed")
		fixed.Store(true)
		tenant.clickButton("Replay")
		tenant.waitText("", "1 entry replayed")
		tenant.waitText("", "by app:"+a.AppID.String())
		tenant.checkPage("the dead letter page")
		tenant.shot("08-dead-letter")
		require.Eventually(t, func() bool { return reserved.Load() == 1 }, 20*time.Second, 50*time.Millisecond, "the replay reached the consumer")
	})

	t.Run("the audit chain verifies", func(t *testing.T) {
		tenant.t = t
		tenant.open("/audit")
		tenant.waitText(`table[aria-label="Audit entries"]`, "pay-1")
		tenant.clickButton("Verify the chain")
		tenant.waitText(`[data-testid="verify-result"]`, "The chain verifies")
		tenant.checkPage("the audit page")
		tenant.shot("09-audit")
	})

	t.Run("390 px wide", func(t *testing.T) {
		tenant.t = t
		tenant.viewport(390, 844)
		defer tenant.viewport(1280, 900)
		for _, p := range []string{"/events", "/events/view?source=%2Fbilling&id=pay-1", "/schemas/order.placed", "/rules/new", "/subscriptions", "/dead-letters", "/audit"} {
			tenant.open(p)
			tenant.waitFor(`!document.body.innerText.includes("Loading")`, "loaded "+p)
			tenant.checkPage(p + " at 390 px")
		}
		tenant.open("/events/view?source=%2Fbilling&id=pay-1")
		tenant.waitText(`[data-testid="journey"]`, "Entry #1")
		tenant.shot("10-journey-390")
		// The menu opens from its button, and navigates.
		tenant.click(`button[aria-controls="nav-mobile"]`)
		tenant.waitText("#nav-mobile", "Schemas")
		tenant.checkPage("the open menu at 390 px")
		tenant.shot("11-menu-390")
		tenant.click(`#nav-mobile a[href="/console/audit"]`)
		tenant.waitText("h1", "Audit")
	})

	t.Run("isolation, CSRF and CSP", func(t *testing.T) {
		tenant.t = t
		code, body := s.post(other, "application/cloudevents+json", `{"specversion":"1.0","id":"secret-1","source":"/warehouse","type":"stock.counted","data":{"n":1}}`)
		require.Equal(t, http.StatusAccepted, code, string(body))
		tenant.open("/events")
		// A's session cannot read B's event by id, through the page or the API.
		lookup := "/v1/events/lookup?source=" + url.QueryEscape("/warehouse") + "&id=secret-1"
		require.Equal(t, http.StatusNotFound, tenant.fetchStatus("GET", lookup, "", nil))
		require.Equal(t, http.StatusOK, tenant.fetchStatus("GET", "/v1/events/lookup?source=%2Fbilling&id=pay-1", "", nil))
		tenant.open("/events/view?source=%2Fwarehouse&id=secret-1")
		tenant.waitText("", "No such event")
		tenant.checkPage("another App's event")
		// A state-changing call without the CSRF token is refused, and stores nothing.
		ev := `{"specversion":"1.0","id":"forged-1","source":"/csrf","type":"order.placed","data":{}}`
		require.Equal(t, http.StatusForbidden, tenant.fetchStatus("POST", "/v1/events", ev, map[string]string{"Content-Type": "application/cloudevents+json"}))
		require.Equal(t, http.StatusForbidden, tenant.fetchStatus("POST", "/v1/dlq/replay", `{"all":true}`, map[string]string{"Content-Type": "application/json"}))
		require.Equal(t, http.StatusForbidden, tenant.fetchStatus("DELETE", "/console/api/session", "", nil))
		require.Empty(t, s.events(a, "?source=/csrf").Items)
		// The policy is in force: an inline script is blocked and reported.
		eval[chromedp.Void](tenant, `(() => { const s = document.createElement("script"); s.textContent = "window.__inline = 1"; document.body.appendChild(s); })()`)
		tenant.waitFor(`window.__csp.length > 0`, "a CSP violation report")
		require.False(t, eval[bool](tenant, `window.__inline === 1`), "the inline script did not run")
		// Every page carries the policy header.
		for _, p := range []string{"/", "/sign-in", "/events", "/events/view", "/schemas", "/schemas/x", "/rules", "/rules/new", "/dead-letters", "/dead-letters/1", "/audit",
			"/operator/apps", "/operator/health", "/operator/jobs", "/operator/dead-letters"} {
			resp, err := http.Get(s.url + "/console" + p)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, p)
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self';", p)
			require.NotContains(t, resp.Header.Get("Content-Security-Policy"), "unsafe-inline", p)
		}
	})

	t.Run("operator disables an App", func(t *testing.T) {
		op := b.tab(t, "operator")
		op.open("/sign-in")
		op.waitText("", "Sign in as")
		op.click(`label:has(input[value="operator"])`)
		op.typeInto("#admin-token", s.token)
		op.click(`form button[type="submit"]`)
		op.waitText(`[data-testid="whoami"]`, "Operator")
		op.waitText(`table[aria-label="Apps"]`, "warehouse")
		op.checkPage("the Apps page")
		op.click(`[data-testid="app-warehouse"] button.bg-destructive`)
		op.waitText(`[data-testid="app-warehouse"]`, "will be refused everywhere")
		op.clickButton("Yes, disable")
		op.waitText(`[data-testid="app-warehouse"]`, "disabled")
		code, body := s.do("GET", "/admin/v1/apps/"+other.AppID.String(), map[string]string{"Authorization": "Bearer " + s.token}, nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, string(body), `"status":"disabled"`)
		code, _ = s.post(other, "application/cloudevents+json", `{"specversion":"1.0","id":"after","source":"/w","type":"t"}`)
		require.Equal(t, http.StatusForbidden, code, "the disabled App is refused")
		op.checkPage("the Apps page after a disable")
		op.shot("12-operator-apps")

		// Create an App (its secret shown once, and it works), then rotate its secret.
		op.fill("#app-name", "crm")
		op.clickButton("Create App")
		op.waitText(`[data-testid="credentials"]`, "X-Prost-App-Secret: prost_sk_")
		shown := eval[string](op, `document.querySelector('[data-testid="credentials"] pre').innerText`)
		var crm creds
		for _, line := range strings.Split(shown, "\n") {
			if v, ok := strings.CutPrefix(line, "X-Prost-App-Key: "); ok {
				crm.APIKey = v
			}
			if v, ok := strings.CutPrefix(line, "X-Prost-App-Secret: "); ok {
				crm.APISecret = v
			}
		}
		require.Len(t, s.events(crm, "").Items, 0, "the new App's credentials work")
		op.clickButton("I have kept it")
		op.waitText(`table[aria-label="Apps"]`, "crm")
		op.click(`[data-testid="app-crm"] button`)
		op.clickButton("Yes, rotate secret")
		op.waitText(`[data-testid="credentials"]`, "New secret for crm")
		code, _ = s.do("GET", "/v1/events", auth(crm), nil)
		require.Equal(t, http.StatusUnauthorized, code, "the old secret stopped working")

		op.open("/operator/health")
		op.waitText(`[data-testid="readiness"]`, "Ready")
		op.waitText(`table[aria-label="Consumers"]`, "governance-audit")
		op.clickButton("Verify every chain")
		op.waitText("", "chains verify")
		op.checkPage("the health page")
		op.shot("13-operator-health")
		op.open("/operator/jobs")
		op.waitFor(`!!document.querySelector('table[aria-label="Jobs"]') || document.body.innerText.includes("No jobs")`, "the jobs")
		op.checkPage("the jobs page")
		op.open("/operator/dead-letters")
		op.waitFor(`(() => { const s = document.querySelector("#dl-state"); return !!s })()`, "the dead letters filter")
		op.checkPage("the operator's dead letters page")
		// An operator's session is no tenant's.
		require.Equal(t, http.StatusUnauthorized, op.fetchStatus("GET", "/v1/events", "", nil))

		// The operator's pages at 390 px.
		op.viewport(390, 844)
		for _, p := range []string{"/operator/apps", "/operator/health", "/operator/jobs", "/operator/dead-letters", "/operator/sessions"} {
			op.open(p)
			op.waitFor(`!document.body.innerText.includes("Loading") && !document.body.innerText.includes("Reading")`, "loaded "+p)
			op.checkPage(p + " at 390 px")
		}
		op.open("/operator/apps")
		op.waitText(`table[aria-label="Apps"]`, "warehouse")
		op.shot("16-operator-apps-390")
		op.viewport(1280, 900)

		// The operator ends the shop's console sessions: the tenant's browser is signed out.
		op.open("/operator/sessions")
		op.waitText(`[data-testid="session-shop"]`, "tenant")
		op.checkPage("the sessions page")
		op.shot("17-operator-sessions")
		op.clickButton("End all of shop")
		op.waitText("", "1 session ended")
		tenant.t = t
		tenant.open("/events")
		tenant.waitText("", "Sign in as")
	})
}
