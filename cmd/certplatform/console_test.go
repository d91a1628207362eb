package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/testenv"
)

// Tokens of the console test, one per role.
const (
	consoleReviewer = "console-reviewer-token-0123456789"
	consoleBilling  = "console-billing-token-0123456789a"
)

// browser is a headless Chromium driven with chromedp.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// chromiumPath finds Debian's chromium; without one the test is skipped,
// and under CI=true it fails (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium): the ops console test needs it under CI=true")
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the ops console browser test")
	return ""
}

func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	// The flags this machine needs: no sandbox as root, no GPU, and no
	// background connections (the network is closed), in a fresh profile.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, base: base}
}

// stepTimeout bounds each step: generous, for a loaded 2-core machine.
const stepTimeout = 60 * time.Second

// do runs steps; on failure it reports what the page showed.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	defer func(start time.Time) { b.t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond)) }(time.Now())
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage %s:\n%s", what, err, b.location(), b.pageText())
	}
}

func (b *browser) eval(what, js string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
	if err == nil {
		err = json.Unmarshal(v, out)
	}
	if err != nil {
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, b.pageText())
	}
}

// until waits for a JavaScript condition to hold (re-checked on every DOM
// change and every 100 ms).
func (b *browser) until(what, js string) {
	b.t.Helper()
	b.do(what, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))(ctx, t)
		return err
	}))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("text of %s: %v\npage:\n%s", sel, err, b.pageText())
	}
	return strings.TrimSpace(s)
}

func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return s
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Location())
	return s
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

func (b *browser) signIn(tok, roles string) {
	b.t.Helper()
	b.do("sign in", chromedp.WaitVisible(chromedp.CSS(`#signin input[name="token"]`)),
		chromedp.SendKeys(chromedp.CSS(`#signin input[name="token"]`), tok),
		chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)))
	b.until("signed in as "+roles, `document.getElementById('who').dataset.roles === '`+roles+`'`)
}

func (b *browser) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin")))
	var tok any
	b.eval("token after sign-out", `sessionStorage.getItem('certlife.ops.token')`, &tok)
	if tok != nil {
		b.t.Fatalf("the token stays in sessionStorage after sign-out")
	}
}

func (b *browser) nav() []string {
	b.t.Helper()
	var pages []string
	b.eval("nav", `[...document.querySelectorAll('#nav a')].map(a => a.dataset.page)`, &pages)
	return pages
}

// setLang switches the console's language with its switch when needed.
func (b *browser) setLang(l string) {
	b.t.Helper()
	var cur string
	b.eval("lang", `document.documentElement.lang`, &cur)
	if cur != l {
		b.do("switch language", chromedp.Click(chromedp.ID("lang")))
	}
	b.until("lang="+l, `document.documentElement.lang === '`+l+`'`)
}

// OP-1, SE-5 (ops console, issue 11 item 4): in headless Chromium a
// reviewer signs in with a token, sees the pending applications with their
// evidence, approves one (its applicant's status becomes approved through
// the public API) and rejects another with a reason (the applicant is
// e-mailed it, read from the mail sink's .eml files); the console works
// in English and Japanese and remembers the choice; the token stays in
// sessionStorage only; a billing token does not see the reviewer pages and
// is refused on them; an admin verifies the audit chains, manages
// maintenance windows, sees the dead-letter page, and gets field errors
// from revocation.
func TestOpsConsoleInBrowser_OP1_OP2_SE5(t *testing.T) {
	e := startE2E(t, func(c *app.Config) {
		c.OpsTokens = opsToken + ":admin," + consoleReviewer + ":reviewer," + consoleBilling + ":billing"
		c.ReviewAutoApprove = false
		c.SMTPAddr = "" // the all-in-one's mail sink: .eml files under DATA_DIR/mail
	}, nil)
	b := startBrowser(t, e.p.URL)

	coupons := e.importCoupons(2)
	approveEmail, rejectEmail := "console-approve@example.co.jp", "console-reject@example.co.jp"
	approve, reject := e.submit(coupons[0], approveEmail), e.submit(coupons[1], rejectEmail)
	e.advance("2h") // past the cancel window: final acceptance, coupon consumed, review queued
	testenv.Eventually(t, 60*time.Second, "both reviews pending", func() bool {
		r := e.ops("GET", "/ops/v1/reviews?status=pending", nil)
		return r.Status == 200 && strings.Contains(string(r.Body), approve.ID) && strings.Contains(string(r.Body), reject.ID)
	})

	// Sign-in page in both languages; the choice is remembered.
	b.open("/ops/reviews")
	b.setLang("en")
	if got := b.text(`#signin label`); got != "Ops token" {
		t.Fatalf("English label %q", got)
	}
	b.setLang("ja")
	if got := b.text(`#signin label`); got != "運用トークン" {
		t.Fatalf("Japanese label %q", got)
	}
	b.do("reload", chromedp.Reload())
	b.until("Japanese remembered", `document.documentElement.lang === 'ja' && document.querySelector('#signin label')?.textContent === '運用トークン'`)
	b.setLang("en")

	// The reviewer signs in: the token is in sessionStorage only.
	b.signIn(consoleReviewer, "reviewer")
	var stored struct {
		Token  string `json:"token"`
		Cookie string `json:"cookie"`
		URL    string `json:"url"`
	}
	b.eval("storage", `({token: sessionStorage.getItem('certlife.ops.token'), cookie: document.cookie, url: location.href})`, &stored)
	if stored.Token != consoleReviewer || stored.Cookie != "" || strings.Contains(stored.URL, consoleReviewer) {
		t.Fatalf("token kept as %+v", stored)
	}
	if got := b.nav(); !slices.Equal(got, []string{"reviews", "applications"}) {
		t.Fatalf("reviewer's pages %v", got)
	}

	// The review queue shows each pending application with its evidence.
	card := func(app string) string { return `article[data-application="` + app + `"]` }
	b.do("approve button", chromedp.WaitVisible(chromedp.CSS(card(approve.ID)+` button[data-action="approve"]`)))
	evidence := b.text(card(approve.ID))
	for _, want := range []string{"984940947", "VeriSign Japan K.K.", "日本ベリサイン株式会社", approveEmail, "辺利 太郎", "0350001111", "Earlier approvals", "Validation results"} {
		if !strings.Contains(evidence, want) {
			t.Errorf("review card lacks %q:\n%s", want, evidence)
		}
	}

	// Approve: the applicant's status changes (public API).
	b.do("approve", chromedp.Click(chromedp.CSS(card(approve.ID)+` button[data-action="approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(card(approve.ID)+`[data-status="approved"]`)))
	testenv.Eventually(t, 60*time.Second, "applicant sees approved", func() bool {
		return e.view(approve.ID, approveEmail).Status == "approved"
	})

	// Reject without a reason: the API's field error shows by the box.
	b.do("reject without reason", chromedp.Click(chromedp.CSS(card(reject.ID)+` button[data-action="reject"]`)),
		chromedp.WaitVisible(chromedp.CSS(card(reject.ID)+` .field-error[data-field="reason"]`)))
	if got := b.text(card(reject.ID) + ` .field-error[data-field="reason"]`); !strings.Contains(got, "required") {
		t.Errorf("reason error %q", got)
	}
	const reason = "The organization could not be verified / 組織を確認できませんでした"
	b.do("reject with reason", chromedp.SendKeys(chromedp.CSS(card(reject.ID)+` textarea[name="reason"]`), reason),
		chromedp.Click(chromedp.CSS(card(reject.ID)+` button[data-action="reject"]`)),
		chromedp.WaitVisible(chromedp.CSS(card(reject.ID)+`[data-status="rejected"]`)))
	testenv.Eventually(t, 60*time.Second, "applicant sees rejected", func() bool {
		return e.view(reject.ID, rejectEmail).Status == "rejected"
	})
	testenv.Eventually(t, 60*time.Second, "rejection mail with the reason in the sink", func() bool {
		mails, err := testenv.ReadMailDir(e.p.MailDir)
		if err != nil {
			return false
		}
		for _, m := range mails {
			if slices.Contains(m.To, rejectEmail) && strings.Contains(m.Body, reason) && strings.Contains(m.Body, reject.ID) {
				return true
			}
		}
		return false
	})

	// Both languages on a signed-in page, remembered across a reload.
	b.setLang("ja")
	if got := b.text(`#nav a[data-page="reviews"]`); got != "審査キュー" {
		t.Fatalf("Japanese nav %q", got)
	}
	b.do("reload", chromedp.Reload())
	b.until("still Japanese and signed in", `document.documentElement.lang === 'ja' && document.querySelector('#nav a[data-page="applications"]')?.textContent === '申請検索'`)
	b.setLang("en")
	if got := b.text(`#nav a[data-page="reviews"]`); got != "Review queue" {
		t.Fatalf("English nav %q", got)
	}

	// Application search and timeline.
	b.do("search", chromedp.Click(chromedp.CSS(`#nav a[data-page="applications"]`)),
		chromedp.SendKeys(chromedp.CSS(`#app-search input[name="email"]`), "console-approve@"),
		chromedp.Click(chromedp.CSS(`#app-search button[type="submit"]`)))
	b.until("searched", `location.search.includes('email=')`)
	b.do("open the application", chromedp.Click(chromedp.CSS(`#app-results tr[data-application="`+approve.ID+`"][data-status="approved"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`article.application[data-application="`+approve.ID+`"] tr[data-event="ReviewApproved"]`)))

	// A billing token: no reviewer page in the menu, a clear refusal on it,
	// and the coupon import with its per-line errors.
	b.signOut()
	b.signIn(consoleBilling, "billing")
	if got := b.nav(); !slices.Equal(got, []string{"coupons"}) {
		t.Fatalf("billing's pages %v", got)
	}
	b.open("/ops/reviews")
	b.do("refusal", chromedp.WaitVisible(chromedp.ID("refusal")))
	if got := b.text("#refusal"); !strings.Contains(got, "reviewer") || !strings.Contains(got, "billing") {
		t.Fatalf("refusal %q", got)
	}
	csv := filepath.Join(t.TempDir(), "coupons.csv")
	if err := os.WriteFile(csv, []byte("number,product,expires_at\n55550001-66660001,client,2030-12-31\nnot-a-coupon,client,2030-12-31\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.open("/ops/coupons")
	b.do("coupon import", chromedp.WaitVisible(chromedp.CSS(`#coupon-import input[type="file"]`)),
		chromedp.SetUploadFiles(chromedp.CSS(`#coupon-import input[type="file"]`), []string{csv}),
		chromedp.Click(chromedp.CSS(`#coupon-import button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#coupon-result tr[data-line="3"]`)))
	if got := b.text("#coupon-result .notice"); !strings.HasPrefix(got, "Imported: 1 ") {
		t.Errorf("import result %q", got)
	}

	// An admin: every page; audit verification; maintenance windows with
	// field errors; revocation's field errors; the dead-letter page.
	b.signOut()
	b.signIn(opsToken, "admin")
	if got := b.nav(); len(got) != 8 {
		t.Fatalf("admin's pages %v", got)
	}
	b.open("/ops/audit")
	b.do("verify", chromedp.Click(chromedp.ID("verify-button")), chromedp.WaitVisible(chromedp.CSS(`#verify-result[data-ok="true"]`)))
	var intact int
	b.eval("verified services", `document.querySelectorAll('#verify tr[data-ok="true"]').length`, &intact)
	if intact != len(runnerServices) {
		t.Errorf("%d services verified intact, want %d", intact, len(runnerServices))
	}
	// Filters: the validation service's record of ops requests.
	b.do("audit filter", chromedp.SetValue(chromedp.CSS(`#audit-filter select[name="service"]`), "validation"),
		chromedp.SendKeys(chromedp.CSS(`#audit-filter input[name="action"]`), "ops.request"),
		chromedp.Click(chromedp.CSS(`#audit-filter button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#audit-results section[data-service="validation"] tr[data-action="ops.request"]`)))
	var others int
	b.eval("other services", `document.querySelectorAll('#audit-results section:not([data-service="validation"]), #audit-results tr[data-action]:not([data-action="ops.request"])').length`, &others)
	if others != 0 {
		t.Errorf("the filtered audit list shows %d other services or actions", others)
	}

	b.open("/ops/maintenance")
	b.do("window without dates", chromedp.Click(chromedp.CSS(`#add-window button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#add-window .field-error[data-field="starts_at"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#add-window .field-error[data-field="ends_at"]`)))
	b.do("add window", chromedp.SetValue(chromedp.CSS(`#add-window input[name="starts_at"]`), "2031-01-01T10:00"),
		chromedp.SetValue(chromedp.CSS(`#add-window input[name="ends_at"]`), "2031-01-01T12:00"),
		chromedp.Click(chromedp.CSS(`#add-window button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#windows tr[data-window] button[data-action="delete"]`)))
	if r := e.ops("GET", "/ops/v1/maintenance-windows", nil); !strings.Contains(string(r.Body), "2031-01-01") {
		t.Fatalf("window not stored: %s", r.Body)
	}
	b.do("delete window", chromedp.Click(chromedp.CSS(`#windows tr[data-window] button[data-action="delete"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#windows tr[data-window]`)))

	b.open("/ops/revocation")
	b.do("bad serial", chromedp.SendKeys(chromedp.CSS(`#revoke input[name="serial"]`), "not-hex"),
		chromedp.Click(chromedp.CSS(`#revoke button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#revoke .field-error[data-field="serial"]`)))

	b.open("/ops/dead-letters")
	b.until("dead letters, quarantine, parked timers listed",
		`['dead-letters', 'quarantine', 'parked'].every(id => document.querySelector('#' + id + ' table, #' + id + ' p.muted')) && !document.querySelector('#view .problem')`)

	// Mass revocation (OP-5): its route is built in parallel. Until it is
	// mounted, the page says so; once it is, a job's progress shows.
	b.open("/ops/mass-revocation")
	b.do("mass revocation form", chromedp.WaitVisible(chromedp.CSS(`#mass-revoke select[name="by"]`)))
	var picked bool
	b.eval("pick organization", `(() => { const s = document.querySelector('#mass-revoke select[name="by"]');
		s.value = 'organization'; return s.dispatchEvent(new Event('change')); })()`, &picked)
	b.do("mass revocation by organization", chromedp.SendKeys(chromedp.CSS(`#mass-revoke input[name="organization"]`), "984940947"),
		chromedp.Click(chromedp.CSS(`#mass-revoke button[type="submit"]`)))
	if routeExists(e, http.MethodPost, "/ops/v1/mass-revocations") {
		b.do("mass revocation progress", chromedp.WaitVisible(chromedp.ID("mass-job")))
	} else {
		t.Log("POST /ops/v1/mass-revocations is not mounted on this branch: checking the console's notice instead")
		b.do("mass revocation unavailable", chromedp.WaitVisible(chromedp.ID("mass-unavailable")))
	}
}

var runnerServices = []string{"intake", "validation", "billing", "issuer", "notifier"}

func routeExists(e *e2e, method, path string) bool {
	found := false
	_ = chi.Walk(e.p.Router(), func(m, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		found = found || (m == method && route == path)
		return nil
	})
	return found
}
