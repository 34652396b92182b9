package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/prost-platform/prost/pkg/domain/factory"
	"github.com/prost-platform/prost/pkg/prosttest"
	"github.com/prost-platform/prost/pkg/secretbox"
)

// waitWithin is waitFor with a deadline of its own, for what the factory
// takes a while to do (a build, its gates, a deploy).
func (tb *tab) waitWithin(predicate, what string, within time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if eval[bool](tb, predicate) {
			return
		}
		if time.Now().After(deadline) {
			text := eval[string](tb, `document.body ? document.body.innerText : ""`)
			tb.shot("FAILED-" + strings.NewReplacer(" ", "-", "/", "-").Replace(what))
			tb.t.Fatalf("waiting %s for %s; page text:\n%s", within, what, text)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// textIn is the predicate "the element of css shows text".
func textIn(css, text string) string {
	return fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.innerText.includes(%q) })()`, css, text)
}

// shotTop saves what the window shows from the top of the page (not the
// whole page) as artifacts/console/<name>.png.
func (tb *tab) shotTop(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); new Promise((r) => requestAnimationFrame(() => r()))`, chromedp.EvalAwaitPromise))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(tb.t, err)
	require.NoError(tb.t, os.WriteFile(filepath.Join(tb.b.dir, name+".png"), png, 0o644))
}

// choose sets a select's value the way a person picking an option would.
func (tb *tab) choose(css, value string) {
	tb.t.Helper()
	js := fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) return false;
		Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, "value").set.call(el, %q);
		el.dispatchEvent(new Event("change", { bubbles: true }));
		return el.value === %q;
	})()`, css, value, value)
	require.True(tb.t, eval[bool](tb, js), "no option %s in %s", value, css)
}

// focused is the id of the element that has the focus.
func (tb *tab) focused() string {
	tb.t.Helper()
	return eval[string](tb, `document.activeElement ? (document.activeElement.id || document.activeElement.getAttribute("data-testid") || document.activeElement.tagName) : ""`)
}

// next submits the wizard's step and waits for the next one's title.
func (tb *tab) next(title string) {
	tb.t.Helper()
	tb.click(`form button[type="submit"]`)
	tb.waitText(`[data-testid="step-title"]`, title)
}

// A person who writes no code describes a library module in the console's
// factory wizard, answers its questions (a step refuses what is missing and
// says where), reads the summary, fixes the problem the factory's first gate
// finds there, builds it, watches its stages and gates, approves it, and
// gets the deployed module's address, its documentation and the verified
// manifest. A run whose Pack0 fails its first gate shows the gate's
// findings. Every page passes axe-core at 1280 and 390 px.
func TestConsoleFactoryWizard(t *testing.T) {
	if testing.Short() {
		t.Skip("drives chromium and builds, tests, scans and deploys a generated module")
	}
	db := prosttest.NewDatabase(t)
	_, key := secretbox.NewKey()
	s := startStackWith(t, func(e *env) {
		e.DatabaseURL = db.URL
		e.SecretsKey = key
		e.Factory.DatabaseURL = db.URL
		e.Factory.WorkDir = t.TempDir()
		e.Factory.ToolsDir = os.Getenv("PROST_FACTORY_TOOLS_DIR") // else the user's cache: the tools are built once per machine
	}, nil)
	b := newBrowser(t, s.url)
	app := s.createApp("library")
	tenant := b.tab(t, "factory")
	tenant.signInApp(app)

	tenant.open("/factory")
	tenant.waitText("", "No runs yet")
	tenant.checkPage("the empty factory page")
	tenant.shot("20-factory-empty")

	t.Run("a failed gate's findings", func(t *testing.T) {
		tenant.t = t
		// A NORMAL request without budgets or threats, posted through the API:
		// its first gate fails and the run page names each rule.
		code, body := s.do(http.MethodPost, "/v1/factory/runs", auth(app, "Content-Type", "application/json"), []byte(`{"module": "notes", "state": "NORMAL",
			"pack0": {"pack0": "1", "module": "notes", "description": "Notes.", "entities": [{"name": "note", "key": "id", "fields": [{"name": "id", "type": "uuid"}]}]}}`))
		require.Equal(t, http.StatusCreated, code, string(body))
		var run factory.Run
		require.NoError(t, json.Unmarshal(body, &run))
		tenant.open("/factory/runs/" + run.ID.String())
		tenant.waitWithin(textIn(`[data-testid="run-status"]`, "failed"), "the run failed", time.Minute)
		tenant.waitText(`[data-testid="findings-pack0"]`, "normal-budgets")
		tenant.waitText(`[data-testid="findings-pack0"]`, "normal-threats")
		tenant.waitText(`[data-testid="stage-pack0"]`, "failed")
		tenant.checkPage("a failed run")
		tenant.shot("21-factory-failed-gate")
	})

	var runID string
	t.Run("the wizard", func(t *testing.T) {
		tenant.t = t
		tenant.open("/factory")
		tenant.waitText(`table[aria-label="Runs"]`, "notes")
		tenant.clickButton("New module")
		tenant.waitText(`[data-testid="step-title"]`, "What do you need?")
		tenant.checkPage("the wizard's first step")

		// Nothing answered: the step says what is missing, at the control, with the focus there.
		tenant.click(`form button[type="submit"]`)
		tenant.waitText("", "Name the module.")
		require.Equal(t, "wz-module", tenant.focused())
		require.Equal(t, "true", eval[string](tenant, `document.querySelector("#wz-module").getAttribute("aria-invalid")`))
		tenant.checkPage("the first step with its errors")
		tenant.typeInto("#wz-module", "library")
		tenant.fill("#wz-description", "Books of a lending library and their copies, per library.")
		tenant.waitFor(`!document.querySelector("#wz-module-error") && !document.querySelector("#wz-description-error")`, "the fixed answers' errors gone")
		tenant.fill("#wz-owner", "front desk")
		tenant.shot("22-wizard-describe")
		tenant.next("What does it keep?")
		require.Equal(t, "step-title", tenant.focused(), "a new step puts the focus on its title")

		// Records: a book with a personal field, and a copy whose routes clash with the book's.
		tenant.fill("#wz-e0-name", "book")
		tenant.fill("#wz-e0-f0-name", "title")
		tenant.click("#wz-e0-f0-required")
		tenant.fill("#wz-e0-f0-maxlength", "200")
		tenant.click("#wz-e0-add-field")
		tenant.fill("#wz-e0-f1-name", "author_email")
		tenant.choose("#wz-e0-f1-type", "email")
		tenant.choose("#wz-e0-f1-classification", "personal")
		// Personal data without a purpose or a retention is refused at the field.
		tenant.click(`form button[type="submit"]`)
		tenant.waitText("", "Personal data needs a purpose")
		require.Equal(t, "wz-e0-f1-purpose", tenant.focused())
		tenant.fill("#wz-e0-f1-purpose", "Tell the author when one of their books is borrowed.")
		tenant.fill("#wz-e0-f1-retention", "1y")
		tenant.click("#wz-e0-add-field")
		tenant.fill("#wz-e0-f2-name", "pages")
		tenant.choose("#wz-e0-f2-type", "integer")
		tenant.fill("#wz-e0-f2-minimum", "1")
		tenant.clickButton("Add a kind of record")
		tenant.fill("#wz-e1-name", "copy")
		tenant.fill("#wz-e1-plural", "books")
		tenant.fill("#wz-e1-f0-name", "barcode")
		tenant.click("#wz-e1-f0-required")
		tenant.checkPage("the records step")
		tenant.shot("23-wizard-records")
		tenant.next("Who may do what?")

		// Roles: a librarian may do everything, a reader may read.
		tenant.click(`label:has(input[name="roles"][value="yes"])`)
		tenant.fill("#wz-r0-name", "librarian")
		for _, e := range []string{"book", "copy"} {
			for _, op := range []string{"create", "read", "update", "delete"} {
				tenant.click(fmt.Sprintf(`input[aria-label="librarian may %s %s"]`, op, e))
			}
		}
		tenant.clickButton("Add a role")
		tenant.fill("#wz-r1-name", "reader")
		tenant.click(`input[aria-label="reader may read book"]`)
		tenant.click(`input[aria-label="reader may read copy"]`)
		tenant.checkPage("the access step")
		tenant.shot("24-wizard-access")
		tenant.next("Who uses it")

		tenant.clickButton("Add a system")
		tenant.fill("#wz-i0-name", "catalogue")
		tenant.choose("#wz-i0-kind", "http")
		tenant.choose("#wz-i0-direction", "inbound")
		tenant.checkPage("the tenancy step")
		tenant.next("How far should the factory check it?")

		// Production by default, with budgets for creating, listing and reading.
		require.Equal(t, "500", eval[string](tenant, `document.querySelector("#wz-budget-POST-v1-books").value`))
		require.True(t, eval[bool](tenant, `document.querySelector('input[name="state"][value="NORMAL"]').checked`))
		tenant.checkPage("the quality step")
		tenant.shot("25-wizard-quality")
		tenant.next("How long are records kept?")
		require.Equal(t, "1y", eval[string](tenant, `document.querySelector("#wz-ret-book-period").value`), "the personal field's retention is proposed")
		tenant.fill("#wz-ret-book-basis", "Legitimate interest while the book is in the catalogue.")
		tenant.checkPage("the retention step")
		tenant.next("What the factory will build")

		// The factory's first gate finds what the steps could not: two records on one route. Fix goes there.
		tenant.waitText(`[data-testid="check-result"]`, "would refuse")
		tenant.waitText(`[data-testid="check-result"]`, "unique-names")
		tenant.checkPage("the summary with a problem")
		// From the keyboard: focus the problem's Fix button and press Enter.
		require.True(t, eval[bool](tenant, `(() => { const b = [...document.querySelectorAll('[data-testid="check-result"] button')].find((x) => x.innerText.trim() === "Fix"); if (b) b.focus(); return document.activeElement === b })()`))
		tenant.run(chromedp.KeyEvent("\r"))
		tenant.waitText(`[data-testid="step-title"]`, "What does it keep?")
		tenant.waitFor(`document.activeElement && document.activeElement.id === "wz-e1-plural"`, "the focus on the clashing plural")
		tenant.waitText("", "two entities share the route /v1/books")
		tenant.fill("#wz-e1-plural", "copies")
		for _, title := range []string{"Who may do what?", "Who uses it", "How far", "How long", "What the factory will build"} {
			tenant.next(title)
		}
		tenant.waitText(`[data-testid="check-result"]`, "passes the factory's first gate")
		tenant.waitText(`table[aria-label="Permissions"]`, "librarian")
		tenant.waitText(`table[aria-label="Permissions"]`, "everything")
		tenant.waitText(`[data-testid="summary"]`, "library.copy.deleted")
		tenant.waitText(`[data-testid="summary-entity-book"]`, "personal")
		tenant.waitText(`[data-testid="summary"]`, "POST /v1/books")
		tenant.checkPage("the summary")
		tenant.shot("26-wizard-summary")

		tenant.clickButton("Build library")
		tenant.waitFor(`location.pathname.startsWith("/console/factory/runs/")`, "the run page")
		runID = strings.TrimPrefix(eval[string](tenant, `location.pathname`), "/console/factory/runs/")
	})
	require.NotEmpty(t, runID, "the wizard started no run")

	t.Run("the run, approved and deployed", func(t *testing.T) {
		tenant.t = t
		// The stages fill in as they happen.
		tenant.waitWithin(textIn(`[data-testid="stage-codegen"]`, "succeeded"), "the code generated", 2*time.Minute)
		tenant.waitText(`[data-testid="stage-pack0"]`, "passed")
		tenant.checkPage("a run under way")
		tenant.shot("27-factory-run-live")

		// NORMAL without auto-deploy: every gate, then the run waits for a person.
		tenant.waitWithin(textIn(`[data-testid="approval"]`, "Your decision"), "the run to wait for approval", 6*time.Minute)
		for _, g := range []string{"lint", "secrets", "sast", "vulns", "deps", "sbom", "contracts", "perf"} {
			tenant.waitText(fmt.Sprintf(`[data-testid="gate-%s"]`, g), "passed")
		}
		tenant.checkPage("a run waiting for approval")
		tenant.shot("28-factory-approval")
		tenant.fill("#fx-reason", "Gates reviewed in the console.")
		tenant.fill("#fx-actor", "ana@library")
		tenant.clickButton("Approve and deploy")

		tenant.waitWithin(textIn(`[data-testid="deployed"]`, "is deployed"), "the deploy", 3*time.Minute)
		tenant.waitText(`[data-testid="verify"]`, "The manifest verifies")
		tenant.waitText(`[data-testid="stage-approval"]`, "Approved by ana@library")
		tenant.waitText(`[data-testid="module-docs"]`, "GET /healthz")
		tenant.waitText(`[data-testid="module-docs"]`, "library.book.created")
		require.Contains(t, eval[string](tenant, `[...document.querySelectorAll('[data-testid="verify"] a')].map((a) => a.href).join(" ")`),
			"/artifact?name=pec%2Fmanifest.dsse.json", "the signed manifest can be downloaded")
		tenant.checkPage("a deployed run")
		tenant.shot("29-factory-deployed")
		tenant.shotTop("29b-factory-deployed-top")

		// What the page showed is what the API says: deployed, answering, verified, decided by the person named.
		code, body := s.do(http.MethodGet, "/v1/factory/runs/"+runID, auth(app), nil)
		require.Equal(t, http.StatusOK, code, string(body))
		var run factory.Run
		require.NoError(t, json.Unmarshal(body, &run))
		require.Equal(t, factory.StatusSucceeded, run.Status, run.Error)
		require.False(t, run.MVP)
		require.Equal(t, "console wizard (library)", run.RequestedBy)
		require.NotNil(t, run.Deployment)
		require.Equal(t, factory.DeploymentActive, run.Deployment.Status)
		require.Contains(t, eval[string](tenant, `document.querySelector('[data-testid="deployed"] a').href`), run.Deployment.Address)
		hc, err := http.Get("http://" + run.Deployment.Address + "/healthz")
		require.NoError(t, err)
		hc.Body.Close()
		require.Equal(t, http.StatusOK, hc.StatusCode)
		code, body = s.do(http.MethodGet, "/v1/factory/runs/"+runID+"/verify", auth(app), nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, string(body), `"ok":true`)
		code, body = s.do(http.MethodGet, "/v1/factory/runs/"+runID+"/logs", auth(app), nil)
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, string(body), "approve by ana@library: Gates reviewed in the console.")
		var pack0 factory.Pack0
		require.NoError(t, json.Unmarshal(run.Pack0, &pack0))
		require.Equal(t, "copies", pack0.Entities[1].Plural)
		require.Equal(t, []string{"book:*", "copy:*"}, pack0.Roles[0].Permissions)
		require.Equal(t, "personal", pack0.Entities[0].Field("author_email").Classification)
	})

	t.Run("390 px wide", func(t *testing.T) {
		tenant.t = t
		tenant.viewport(390, 844)
		defer tenant.viewport(1280, 900)
		for _, p := range []string{"/factory", "/factory/new", "/factory/runs/" + runID} {
			tenant.open(p)
			tenant.waitFor(`!document.body.innerText.includes("Loading") && !document.body.innerText.includes("Reading") && !document.body.innerText.includes("Verifying")`, "loaded "+p)
			tenant.checkPage(p + " at 390 px")
		}
		tenant.waitText(`[data-testid="deployed"]`, "is deployed")
		tenant.shot("30-factory-run-390")
		tenant.open("/factory/new")
		tenant.clickButton("Fill in the example")
		tenant.waitFor(`document.querySelector("#wz-module").value === "inventory"`, "the example filled in")
		tenant.next("What does it keep?")
		tenant.checkPage("the records step at 390 px")
		tenant.shot("31-wizard-records-390")
	})

	// Every factory page carries the Content-Security-Policy.
	for _, p := range []string{"/factory", "/factory/new", "/factory/runs/" + runID} {
		resp, err := http.Get(s.url + "/console" + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self';", p)
	}
}
