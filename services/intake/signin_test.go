package intake_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/intake"
	intakeapp "github.com/certlife/platform/services/intake/internal/app"
	"github.com/certlife/platform/services/intake/internal/domain"
)

// reply is a response read in a goroutine (t.Fatal is for the test's own).
type reply struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func post(url string, body any, headers ...string) reply {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(raw))
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// SE-3, SE-7: 200 parallel wrong passwords for one e-mail reach at most
// 10 password checks (the attempt is reserved before its argon2id), and
// another e-mail's right credentials from the same address get in during
// the burst; afterwards the attacked e-mail is locked.
func TestParallelGuessesReachAtMostTenPasswordChecks_SE3(t *testing.T) {
	// The queue waits long enough for a loaded machine: this test counts
	// checks; TestArgon2BoundAnswers503_SE7 proves the bound.
	r := newRigWith(t, testenv.Options{}, intake.Options{Argon2Wait: time.Minute})
	_, _, victimCode := r.readyCode(t, "victim@example.co.jp", "new")
	_, _, otherCode := r.readyCode(t, "colleague@example.co.jp", "new")
	before := r.metric(t, "argon2_evaluations_total")

	const n = 200
	start := make(chan struct{})
	replies := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i] = post(r.Server.URL+"/v1/sessions", login("victim@example.co.jp", "guess "+uuid.NewString(), victimCode))
		}()
	}
	var colleague reply
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		colleague = post(r.Server.URL+"/v1/sessions", login("colleague@example.co.jp", "an application password", otherCode))
	}()
	close(start)
	wg.Wait()

	counts := map[int]int{}
	for _, rep := range replies {
		if rep.err != nil {
			t.Fatal(rep.err)
		}
		counts[rep.status]++
		if rep.status == 429 && rep.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if counts[401]+counts[429] != n || counts[401] < 1 || counts[401] > 10 {
		t.Fatalf("answers %v: want at most 10 × 401 and the rest 429", counts)
	}
	if colleague.err != nil || colleague.status != 201 {
		t.Fatalf("the colleague's right credentials from the same address: %d %s %v", colleague.status, colleague.body, colleague.err)
	}
	checks := r.metric(t, "argon2_evaluations_total") - before - 1 // the colleague's one
	if checks > 10 || int(checks) != counts[401] {
		t.Fatalf("%v password checks for %d wrong answers (want ≤ 10, one per 401)", checks, counts[401])
	}
	if resp := r.Do("POST", "/v1/sessions", login("victim@example.co.jp", "an application password", victimCode)); resp.Status != 429 {
		t.Fatalf("the attacked e-mail is not locked: %d", resp.Status)
	}
}

// SE-3: X-Forwarded-For is believed only from TRUSTED_PROXIES, and then
// its right-most untrusted entry is the client.
func TestClientAddressFromTrustedProxiesOnly_SE3(t *testing.T) {
	addrs := func(r *rig) []string {
		rows, err := r.Unit("intake").Deps.Pool.Query(context.Background(), `SELECT addr FROM login_failures ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var a string
			_ = rows.Scan(&a)
			out = append(out, a)
		}
		return out
	}
	fail := func(r *rig, xff string) {
		if resp := r.Do("POST", "/v1/sessions", login(uuid.NewString()+"@example.co.jp", "x", "y"), "X-Forwarded-For", xff); resp.Status != 401 {
			t.Fatalf("%s: %d", xff, resp.Status)
		}
	}

	direct := newRig(t, testenv.Options{})
	fail(direct, "203.0.113.9")
	if got := addrs(direct); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Fatalf("untrusted peer: throttled as %v, want the peer 127.0.0.1", got)
	}

	proxied := newRig(t, testenv.Options{Config: func(c *app.Config) { c.TrustedProxies = "127.0.0.1/32, 10.0.0.0/8" }})
	for _, xff := range []string{
		"203.0.113.9",                         // one hop
		"198.51.100.1, 203.0.113.9",           // the client wrote the left entry
		"198.51.100.1, 203.0.113.9, 10.1.2.3", // a second trusted proxy
		"2001:db8:1:2:aaaa:bbbb:cccc:dddd",    // IPv6: its /64
		"not-an-address",                      // unreadable: the proxy that passed it on
		"10.0.0.7, 10.0.0.8",                  // only proxies: the left-most
	} {
		fail(proxied, xff)
	}
	want := []string{"203.0.113.9", "203.0.113.9", "203.0.113.9", "2001:db8:1:2::/64", "127.0.0.1", "10.0.0.7"}
	if got := addrs(proxied); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("trusted proxy: throttled as %v, want %v", got, want)
	}
}

// SE-7: argon2id runs in ARGON2_CONCURRENCY slots with a bounded queue;
// beyond it a sign-in (or a submission) is 503 with Retry-After, and the
// refused attempt does not count as a failure.
func TestArgon2BoundAnswers503_SE7(t *testing.T) {
	r := newRigWith(t, testenv.Options{Config: func(c *app.Config) { c.Argon2Concurrency = 1 }},
		intake.Options{Argon2Queue: -1})
	h := r.Unit("intake").Service.(interface{ Hasher() *intakeapp.Hasher }).Hasher()
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- h.Do(context.Background(), func() { close(held); <-release }) }()
	<-held

	resp := r.Do("POST", "/v1/sessions", login("busy@example.co.jp", "a password", "AAAA-AAAA-AAAA-AAAA-AAAA"))
	if p := asProblem(t, resp); resp.Status != 503 || resp.Header.Get("Retry-After") == "" ||
		p.Type != "https://certlife.dev/problems/sign-in-busy" {
		t.Fatalf("login with every slot busy: %d %q %s", resp.Status, resp.Header.Get("Retry-After"), resp.Body)
	}
	if n := r.count(t, "login_failures"); n != 0 {
		t.Fatalf("a refused attempt was counted: %d rows", n)
	}
	if resp := r.Do("POST", "/v1/applications", body("busy@example.co.jp")); resp.Status != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("submission with every slot busy: %d", resp.Status)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if resp := r.Do("POST", "/v1/sessions", login("busy@example.co.jp", "a password", "AAAA-AAAA-AAAA-AAAA-AAAA")); resp.Status != 401 {
		t.Fatalf("after the slot frees: %d", resp.Status)
	}
}

// SE-7, SE-1: a certificate code is stored as HMAC-SHA256 under the key
// file's key — no plaintext, no argon2id — and a code stored before, as
// an argon2id hash, still opens a session and is then stored as a MAC.
func TestCertificateCodesStoredAsHMAC_SE7(t *testing.T) {
	r := newRig(t, testenv.Options{})
	_, _, code := r.readyCode(t, "mac@example.co.jp", "new")
	pool := r.Unit("intake").Deps.Pool
	ctx := context.Background()
	stored := func() (mac []byte, legacy *string) {
		if err := pool.QueryRow(ctx, `SELECT code_mac, code_hash FROM applicants WHERE email = 'mac@example.co.jp'`).Scan(&mac, &legacy); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := domain.CodeKey(r.codeKey).MAC(code)
	if mac, legacy := stored(); !bytes.Equal(mac, want) || legacy != nil {
		t.Fatalf("stored code_mac %x code_hash %v, want the HMAC under the key file's key", mac, legacy)
	}
	r.assertNotInSchema(t, code)
	r.assertNotInSchema(t, string(r.codeKey))

	// A code from before: only its argon2id hash.
	hash, err := domain.HashPassword(domain.NormalizeCode(code))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE applicants SET code_mac = NULL, code_hash = $1 WHERE email = 'mac@example.co.jp'`, hash); err != nil {
		t.Fatal(err)
	}
	if resp := r.Do("POST", "/v1/sessions", login("mac@example.co.jp", "an application password", "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ")); resp.Status != 401 {
		t.Fatalf("wrong code against a legacy hash: %d", resp.Status)
	}
	if resp := r.Do("POST", "/v1/sessions", login("mac@example.co.jp", "an application password", code)); resp.Status != 201 {
		t.Fatalf("legacy code: %d %s", resp.Status, resp.Body)
	}
	if mac, legacy := stored(); !bytes.Equal(mac, want) || legacy != nil {
		t.Fatalf("after sign-in the legacy hash was not replaced by the MAC: %x %v", mac, legacy)
	}
	if resp := r.Do("POST", "/v1/sessions", login("mac@example.co.jp", "an application password", code)); resp.Status != 201 {
		t.Fatalf("code after the upgrade: %d", resp.Status)
	}
}

// PC-7, SPEC §5: a session opened with e-mail and password alone sees
// the applications, but no certificate step (403); the token says so.
func TestPasswordOnlySession_PC7(t *testing.T) {
	r := newRig(t, testenv.Options{})
	appID, certID, _ := r.readyCode(t, "nocode@example.co.jp", "new")
	resp := r.Do("POST", "/v1/sessions", map[string]any{"email": "nocode@example.co.jp", "password": "an application password"})
	if resp.Status != 201 {
		t.Fatalf("password-only session: %d %s", resp.Status, resp.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	resp.JSON(t, &s)
	if c, err := r.verifier.Verify(s.Token, r.Clock.Now()); err != nil || c.CodeVerified {
		t.Fatalf("claims %+v %v", c, err)
	}
	if resp := r.Do("GET", "/v1/applications/"+appID, nil, bearer(s.Token)...); resp.Status != 200 {
		t.Fatalf("application with a password-only session: %d", resp.Status)
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1/certificates/" + certID + "/prefill"},
		{"POST", "/v1/certificates/" + certID + "/reissues"},
	} {
		resp := r.Do(req.method, req.path, map[string]any{"reason": "superseded"}, bearer(s.Token)...)
		if p := asProblem(t, resp); resp.Status != 403 || p.Type != "https://certlife.dev/problems/certificate-code-required" {
			t.Fatalf("%s %s: %d %s", req.method, req.path, resp.Status, resp.Body)
		}
	}
	if resp := r.Do("POST", "/v1/sessions", map[string]any{"email": "nocode@example.co.jp", "password": "wrong password"}); resp.Status != 401 {
		t.Fatalf("wrong password without code: %d", resp.Status)
	}
}

// PC-7: forged, tampered and revoked tokens are 401 at intake too.
func TestForgedTamperedRevokedTokens_PC7(t *testing.T) {
	r := newRig(t, testenv.Options{})
	appID, _, code := r.readyCode(t, "tokens@example.co.jp", "new")
	resp := r.Do("POST", "/v1/sessions", login("tokens@example.co.jp", "an application password", code))
	var s struct {
		Token string `json:"token"`
	}
	resp.JSON(t, &s)
	c, err := r.verifier.Verify(s.Token, r.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := session.NewSigner(other).Sign(c)
	parts := strings.Split(s.Token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(raw, []byte(`"cv":true`), []byte(`"cv":false`), 1)) + "." + parts[2]
	for name, tok := range map[string]string{"forged": forged, "tampered": tampered, "garbage": "v1.x.y"} {
		if resp := r.Do("GET", "/v1/applications/"+appID, nil, bearer(tok)...); resp.Status != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d", name, resp.Status)
		}
	}
	if resp := r.Do("GET", "/v1/applications/"+appID, nil, bearer(s.Token)...); resp.Status != 200 {
		t.Fatalf("the real token: %d", resp.Status)
	}
	// Deleting the session revokes the token at intake at once.
	if _, err := r.Unit("intake").Deps.Pool.Exec(context.Background(), `DELETE FROM sessions`); err != nil {
		t.Fatal(err)
	}
	if resp := r.Do("GET", "/v1/applications/"+appID, nil, bearer(s.Token)...); resp.Status != 401 {
		t.Fatalf("revoked session: %d", resp.Status)
	}
}

// SE-4: NUL and control characters in credentials are a 4xx, never a 500.
func TestCredentialsWithNULAre4xx_SE4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, body("nul@example.co.jp"))
	for _, l := range []map[string]any{
		{"email": "nul\u0000@example.co.jp", "password": "an application password"},
		{"email": "nul@example.co.jp", "password": "pass\u0000word"},
		{"email": "nul@example.co.jp", "password": "an application password", "certificate_code": "AAAA\u0000"},
	} {
		if resp := r.Do("POST", "/v1/sessions", l); resp.Status != 422 {
			t.Errorf("%q: %d %s", l, resp.Status, resp.Body)
		}
	}
	if resp := r.Do("GET", "/v1/applications/"+a.ID, nil, basic("nul\u0000@example.co.jp", "an application password")...); resp.Status != 400 {
		t.Errorf("Basic with NUL: %d %s", resp.Status, resp.Body)
	}
	if n := r.count(t, "login_failures"); n != 0 {
		t.Fatalf("bad input reserved %d attempts", n)
	}
}

// PC-7 (issue 6 item 8): the session public key is all another service
// needs; intake signs with SESSION_PRIVATE_KEY_FILE, and a standalone
// intake without it, or without CODE_HMAC_KEY_FILE, refuses to start.
func TestIntakeNeedsItsSecrets_SE10(t *testing.T) {
	for _, missing := range []string{"SESSION_PRIVATE_KEY_FILE", "CODE_HMAC_KEY_FILE"} {
		cfg, err := app.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL = testenv.Database(t)
		cfg.NotifierPublicKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
		cfg.SessionPrivateKeyFile = t.TempDir() + "/session.key"
		if _, err := session.LoadOrCreateKey(cfg.SessionPrivateKeyFile, true); err != nil {
			t.Fatal(err)
		}
		cfg.CodeHMACKeyFile = t.TempDir() + "/code.key"
		_ = writeFile(cfg.CodeHMACKeyFile, strings.Repeat("x", 40))
		if missing == "SESSION_PRIVATE_KEY_FILE" {
			cfg.SessionPrivateKeyFile = ""
		} else {
			cfg.CodeHMACKeyFile = ""
		}
		_, err = buildIntake(t, cfg)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v", missing, err)
		}
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }

// buildIntake builds (does not start) intake from cfg.
func buildIntake(t *testing.T, cfg app.Config) (*app.Unit, error) {
	t.Helper()
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	cfg.NatsURL = n.URL()
	ops, _ := opsauth.Parse("")
	u, err := app.Build(context.Background(), intake.Definition, app.Shared{Config: cfg, NC: nc, JS: js,
		Clock: clock.NewOffset(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(), Ops: ops})
	if err == nil {
		u.Deps.Pool.Close()
	}
	return u, err
}
