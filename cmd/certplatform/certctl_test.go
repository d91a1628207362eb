package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/testenv"
)

// buildCertctl builds the ops CLI (cmd/certctl, its own module in the
// workspace) as the operator would install it.
func buildCertctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "certctl")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "certctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/certctl: %v\n%s", err, out)
	}
	return bin
}

// certctl runs the CLI binary against a platform.
type certctl struct {
	t      *testing.T
	bin    string
	server string
	home   string // HOME and XDG_CONFIG_HOME: no operator's config leaks in
}

type ctlResult struct {
	code           int
	stdout, stderr string
}

func (c *certctl) run(token string, args ...string) ctlResult {
	c.t.Helper()
	return c.runEnv([]string{"CERTCTL_TOKEN=" + token}, args...)
}

func (c *certctl) runEnv(env []string, args ...string) ctlResult {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home, "XDG_CONFIG_HOME=" + filepath.Join(c.home, ".config"),
		"CERTCTL_SERVER=" + c.server}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("certctl %v: %v", args, err)
	}
	return ctlResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs a command that must succeed and returns its stdout.
func (c *certctl) ok(token string, args ...string) string {
	c.t.Helper()
	r := c.run(token, args...)
	if r.code != 0 {
		c.t.Fatalf("certctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// exits runs a command that must end with code and stderr containing want.
func (c *certctl) exits(code int, want, token string, args ...string) ctlResult {
	c.t.Helper()
	r := c.run(token, args...)
	if r.code != code || !strings.Contains(r.stderr, want) {
		c.t.Fatalf("certctl %s: exit %d, want %d with %q\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), r.code, code, want, r.stdout, r.stderr)
	}
	return r
}

// OP-2, OP-4, OP-5, SE-5: certctl against the all-in-one — coupons
// imported from a file, reviews listed, approved and rejected, a mass
// revocation followed to its end, the audit log queried and verified,
// maintenance windows, the config file's mode, and the exit codes: 0 ok,
// 1 API error with the problem printed, 2 usage, 3 auth, 4 not found.
func TestCertctlAgainstAllInOne_OP2_OP5_SE5(t *testing.T) {
	const reviewer, billing = "ctl-reviewer-token-0123456789", "ctl-billing-token-0123456789"
	e := startE2E(t, func(c *app.Config) {
		c.OpsTokens = opsToken + ":admin," + reviewer + ":reviewer," + billing + ":billing"
		c.ReviewAutoApprove = false
	}, nil)
	ctl := &certctl{t: t, bin: buildCertctl(t), server: e.p.URL, home: t.TempDir()}
	dir := t.TempDir()

	// Exit codes: usage, auth, not found, API error.
	if r := ctl.runEnv(nil); r.code != 2 || !strings.Contains(r.stderr, "Usage") {
		t.Fatalf("no command: %+v", r)
	}
	ctl.exits(2, "unknown command", opsToken, "frobnicate")
	ctl.exits(2, "revoke needs SERIAL", opsToken, "revoke")
	ctl.exits(2, "--output must be table or json", opsToken, "--output", "xml", "whoami")
	ctl.exits(2, "needs --reason", opsToken, "reviews", "reject", "00000000-0000-0000-0000-000000000000")
	ctl.exits(2, "exactly one of", opsToken, "mass-revoke", "--reason", "superseded")
	ctl.exits(3, "no ops token", "", "whoami")
	ctl.exits(3, "401", "not-a-valid-token-0123456789", "whoami")
	ctl.exits(3, "403", billing, "reviews", "list")
	ctl.exits(3, "403", reviewer, "revoke", "0abc", "--reason", "superseded")
	ctl.exits(4, "no certificate has this serial", opsToken, "revoke", "0abc", "--reason", "superseded")
	ctl.exits(4, "404", opsToken, "mass-revoke", "status", "00000000-0000-0000-0000-000000000000")
	// AC-2: a key is only for a known customer with its verified
	// organization; the problem's field errors reach the operator.
	r := ctl.exits(1, "422", opsToken, "eab-keys", "create", "--customer", "c-1")
	if !strings.Contains(r.stderr, "customer: must be a customer ID") || !strings.Contains(r.stderr, "organization:") {
		t.Fatalf("EAB problem detail not printed: %s", r.stderr)
	}
	r = ctl.exits(1, "422", opsToken, "revoke", "0abc", "--reason", "unspecified")
	if !strings.Contains(r.stderr, "reason: must be one of") {
		t.Fatalf("problem detail not printed: %s", r.stderr)
	}
	r = ctl.exits(1, `"status": 422`, opsToken, "--output", "json", "revoke", "0abc", "--reason", "unspecified")

	// The config file holds the token only when no one else can read it.
	cfg := filepath.Join(ctl.home, ".config", "certctl", "config.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(`{"token": "`+reviewer+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := ctl.runEnv(nil, "whoami"); r.code != 3 || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("0644 config: %+v", r)
	}
	if err := os.Chmod(cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := ctl.runEnv(nil, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "reviewer") {
		t.Fatalf("0600 config: %+v", r)
	}

	// Coupons from a file (billing); a bad line is listed and exits 1.
	var csv strings.Builder
	csv.WriteString("number,product,expires_at\n")
	var coupons []string
	for i := 0; i < 3; i++ {
		c := fmt.Sprintf("%08d-%08d", 50000000+couponN.Add(1), 60000000+time.Now().UnixNano()%10000000)
		coupons = append(coupons, c)
		fmt.Fprintf(&csv, "%s,client,2030-12-31\n", c)
	}
	couponFile := filepath.Join(dir, "coupons.csv")
	if err := os.WriteFile(couponFile, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := ctl.ok(billing, "coupons", "import", couponFile); !regexpMatch(`imported\s+3`, out) {
		t.Fatalf("coupons import: %s", out)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("number,product,expires_at\nnot-a-coupon,client,2030-12-31\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := ctl.run(billing, "coupons", "import", bad); r.code != 1 || !strings.Contains(r.stdout, "rejected lines") {
		t.Fatalf("bad coupons: %+v", r)
	}

	// Reviews: list, approve, reject (reviewer).
	approveEmail, rejectEmail := "ctl-approve@example.co.jp", "ctl-reject@example.co.jp"
	approve, reject := e.submit(coupons[0], approveEmail), e.submit(coupons[1], rejectEmail)
	e.advance("2h")
	var reviews []struct {
		ID            string `json:"id"`
		ApplicationID string `json:"application_id"`
	}
	testenv.Eventually(t, 60*time.Second, "both reviews pending", func() bool {
		var list struct {
			Reviews []struct {
				ID            string `json:"id"`
				ApplicationID string `json:"application_id"`
			} `json:"reviews"`
		}
		if err := json.Unmarshal([]byte(ctl.ok(reviewer, "reviews", "list", "--output", "json")), &list); err != nil {
			t.Fatal(err)
		}
		reviews = list.Reviews
		return len(reviews) == 2
	})
	table := ctl.ok(reviewer, "reviews", "list")
	if !strings.Contains(table, "APPLICATION_ID") || !strings.Contains(table, approve.ID) || !strings.Contains(table, reject.ID) {
		t.Fatalf("reviews table:\n%s", table)
	}
	reviewOf := map[string]string{}
	for _, rv := range reviews {
		reviewOf[rv.ApplicationID] = rv.ID
	}
	ctl.ok(reviewer, "reviews", "approve", reviewOf[approve.ID])
	ctl.ok(reviewer, "reviews", "reject", reviewOf[reject.ID], "--reason", "The organization could not be verified")
	ctl.exits(1, "409", reviewer, "reviews", "approve", reviewOf[reject.ID])
	testenv.Eventually(t, 60*time.Second, "applicants see the decisions", func() bool {
		return e.view(approve.ID, approveEmail).Status == "approved" && e.view(reject.ID, rejectEmail).Status == "rejected"
	})

	// The approved certificate is retrieved, then revoked by a mass
	// revocation of its organization, followed to its end (admin).
	token := e.login(approveEmail, e.waitCode(approveEmail, 1))
	ready := e.eligible(token, "retrieval")
	if len(ready) != 1 {
		t.Fatalf("ready: %+v", ready)
	}
	e.retrievePKCS12(token, ready[0].ID, "a strong p12 password")
	ctl.exits(3, "403", reviewer, "mass-revoke", "--organization", "VeriSign Japan K.K.", "--reason", "keyCompromise")
	var mass struct {
		ID            string `json:"id"`
		Total         int    `json:"total"`
		Revoked       int    `json:"revoked"`
		NoticesQueued int    `json:"notices_queued"`
		Done          bool   `json:"done"`
	}
	out := ctl.ok(opsToken, "mass-revoke", "--organization", "VeriSign Japan K.K.", "--reason", "keyCompromise", "--wait", "--output", "json")
	if err := json.Unmarshal([]byte(out), &mass); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !mass.Done || mass.Total != 1 || mass.Revoked != 1 || mass.NoticesQueued != 1 {
		t.Fatalf("mass revocation: %s", out)
	}
	if status := ctl.ok(opsToken, "mass-revoke", "status", mass.ID); !regexpMatch(`done\s+true`, status) ||
		!regexpMatch(`revoked\s+1`, status) {
		t.Fatalf("mass-revoke status:\n%s", status)
	}
	serials := filepath.Join(dir, "serials.txt")
	if err := os.WriteFile(serials, []byte("# none of these exist\n0abc\n0abd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if status := ctl.ok(opsToken, "mass-revoke", "--serials-file", serials, "--reason", "superseded", "--wait"); !regexpMatch(`unmatched\s+2`, status) {
		t.Fatalf("mass-revoke by serials:\n%s", status)
	}

	// The audit log: queried with filters, and verified (admin).
	audit := ctl.ok(opsToken, "audit", "query", "--service", "issuer", "--action", "certificate.mass_revoked")
	if !strings.Contains(audit, "certificate.mass_revoked") || !strings.Contains(audit, mass.ID) {
		t.Fatalf("audit query:\n%s", audit)
	}
	if out := ctl.ok(opsToken, "audit", "query", "--action", "review.", "--output", "json"); !strings.Contains(out, "review.rejected") ||
		!strings.Contains(out, reject.ID) || !strings.Contains(out, "review.approved") || !strings.Contains(out, approve.ID) {
		t.Fatalf("audit of review decisions: %s", out)
	}
	verify := ctl.ok(opsToken, "audit", "verify")
	for _, s := range runnerServices {
		if !regexpMatch(s+`\s+true`, verify) {
			t.Fatalf("audit verify, %s:\n%s", s, verify)
		}
	}
	ctl.exits(3, "403", reviewer, "audit", "verify")

	// Maintenance windows (admin), dead letters.
	added := ctl.ok(opsToken, "maintenance", "add", "--starts", "2031-01-01T00:00:00Z", "--ends", "2031-01-01T02:00:00Z", "--output", "json")
	var w struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(added), &w); err != nil || w.ID == "" {
		t.Fatalf("maintenance add: %v %s", err, added)
	}
	if list := ctl.ok(opsToken, "maintenance", "list"); !strings.Contains(list, w.ID) {
		t.Fatalf("maintenance list:\n%s", list)
	}
	ctl.ok(opsToken, "maintenance", "delete", w.ID)
	ctl.exits(4, "404", opsToken, "maintenance", "delete", w.ID)
	ctl.exits(2, "RFC 3339", opsToken, "maintenance", "add", "--starts", "tomorrow", "--ends", "2031-01-01T02:00:00Z")
	if list := ctl.ok(opsToken, "dead-letters", "list"); !strings.Contains(list, "(none)") {
		t.Fatalf("dead letters:\n%s", list)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
