package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/intake"
	"github.com/certlife/platform/services/intake/internal/domain"
)

// readyCode takes an application to CertificateReady (as the issuer would
// announce it) and returns the certificate ID and the code the notifier
// would receive.
func (r *rig) readyCode(t testing.TB, email string, kind string) (appID, certID, code string) {
	t.Helper()
	a := r.submit(t, body(email))
	env := r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second)
	ev, _ := events.Decode[events.ApplicationProvisional](env)
	certID = uuid.NewString()
	r.Publish(events.CertificateReady{CertificateID: certID, ApplicationID: a.ID, ApplicantID: ev.Application.ApplicantID,
		Product: "client", Kind: kind, Recipient: ev.Application.Recipient()}, a.ID)
	codeEnv := r.WaitEvent(events.TypeCertificateCodeIssued, a.ID, 10*time.Second)
	return a.ID, certID, r.openCode(t, codeEnv)
}

func login(email, password, code string) map[string]any {
	return map[string]any{"email": email, "password": password, "certificate_code": code}
}

// PC-7, SE-1: the code is ≥ 100 bits, reaches the notifier only sealed,
// and opens a session with the e-mail and the application password; the
// session is a signed token any service verifies with the public key
// alone (issue 6 item 8), and it expires with its session.
func TestCertificateCodeOpensSession_PC7_SE1(t *testing.T) {
	r := newRig(t, testenv.Options{})
	appID, _, code := r.readyCode(t, "code@example.co.jp", "new")
	if len(strings.ReplaceAll(code, "-", "")) < 20 { // 20 base32 characters = 100 bits
		t.Fatalf("code %q too short", code)
	}
	env := r.WaitEvent(events.TypeCertificateCodeIssued, appID, time.Second)
	if bytes.Contains(env.Data, []byte(code)) || bytes.Contains(env.Data, []byte(strings.ReplaceAll(code, "-", ""))) {
		t.Fatal("the code is in the event in plaintext")
	}
	r.assertNotInSchema(t, code)
	resp := r.Do("POST", "/v1/sessions", login("CODE@example.co.jp", "an application password", strings.ToLower(code)))
	if resp.Status != 201 {
		t.Fatalf("login: %d %s", resp.Status, resp.Body)
	}
	var s struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	resp.JSON(t, &s)
	if s.Token == "" || !s.ExpiresAt.After(r.Clock.Now()) || s.ExpiresAt.After(r.Clock.Now().Add(30*time.Minute)) {
		t.Fatalf("session %+v", s)
	}
	r.assertNotInSchema(t, s.Token)
	// The session authenticates the application endpoints…
	if resp := r.Do("GET", "/v1/applications/"+appID, nil, "Authorization", "Bearer "+s.Token); resp.Status != 200 {
		t.Fatalf("bearer: %d", resp.Status)
	}
	// …and any service verifies it locally: who, with the code, until when.
	c, err := r.verifier.Verify(s.Token, r.Clock.Now())
	ev, _ := events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, appID, time.Second))
	if err != nil || c.Subject != ev.Application.ApplicantID || !c.CodeVerified || !c.Expires().Equal(s.ExpiresAt) {
		t.Fatalf("claims %+v %v", c, err)
	}
	// Sessions are short-lived.
	r.Advance(31 * time.Minute)
	if _, err := r.verifier.Verify(s.Token, r.Clock.Now()); err == nil {
		t.Fatal("token still valid after 31 minutes")
	}
	if resp := r.Do("GET", "/v1/applications/"+appID, nil, "Authorization", "Bearer "+s.Token); resp.Status != 401 {
		t.Fatalf("expired session: %d", resp.Status)
	}
}

// PC-7: every mismatch gets the same generic 401; no hint which field.
func TestLoginMismatchIsOneGenericAnswer_PC7(t *testing.T) {
	r := newRig(t, testenv.Options{})
	_, _, code := r.readyCode(t, "generic@example.co.jp", "new")
	var bodies []string
	for _, l := range []map[string]any{
		login("nobody@example.co.jp", "an application password", code),
		login("generic@example.co.jp", "wrong password", code),
		login("generic@example.co.jp", "an application password", "AAAA-AAAA-AAAA-AAAA-AAAA"),
	} {
		resp := r.Do("POST", "/v1/sessions", l)
		if resp.Status != 401 {
			t.Fatalf("status %d", resp.Status)
		}
		bodies = append(bodies, string(resp.Body))
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Fatalf("answers differ:\n%s", strings.Join(bodies, "\n"))
	}
}

// PC-7, PC-11: a new code (here after a reissue) replaces the old one.
func TestNewCodeInvalidatesOld_PC7(t *testing.T) {
	r := newRig(t, testenv.Options{})
	appID, _, first := r.readyCode(t, "reissue@example.co.jp", "new")
	env := r.WaitEvent(events.TypeApplicationProvisional, appID, time.Second)
	ev, _ := events.Decode[events.ApplicationProvisional](env)
	r.Publish(events.RenewalDue{CertificateID: uuid.NewString(), ApplicantID: ev.Application.ApplicantID, Product: "client",
		Recipient: ev.Application.Recipient(), NotAfter: r.Clock.Now().Add(30 * 24 * time.Hour), DaysBefore: 30}, "")
	var second string
	testenv.Eventually(t, 10*time.Second, "a second code", func() bool {
		for _, e := range r.Events(events.TypeCertificateCodeIssued) {
			if c := r.openCode(t, e); c != first {
				second = c
				return true
			}
		}
		return false
	})
	if resp := r.Do("POST", "/v1/sessions", login("reissue@example.co.jp", "an application password", first)); resp.Status != 401 {
		t.Fatalf("old code: %d", resp.Status)
	}
	if resp := r.Do("POST", "/v1/sessions", login("reissue@example.co.jp", "an application password", second)); resp.Status != 201 {
		t.Fatalf("new code: %d", resp.Status)
	}
}

// SE-3: ten failures within 15 minutes lock the e-mail for 15 minutes —
// even the right credentials get 429 with Retry-After — and then it opens.
func TestLoginLockoutAfterTenFailures_SE3(t *testing.T) {
	r := newRig(t, testenv.Options{})
	_, _, code := r.readyCode(t, "lock@example.co.jp", "new")
	for i := 0; i < 10; i++ {
		if resp := r.Do("POST", "/v1/sessions", login("lock@example.co.jp", "wrong", code)); resp.Status != 401 {
			t.Fatalf("failure %d: %d", i, resp.Status)
		}
		r.Advance(time.Minute)
	}
	resp := r.Do("POST", "/v1/sessions", login("lock@example.co.jp", "an application password", code))
	if resp.Status != 429 {
		t.Fatalf("after 10 failures: %d", resp.Status)
	}
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if retry < 13*60 || retry > 15*60 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	r.Advance(13 * time.Minute) // 14 minutes after the tenth failure
	if resp := r.Do("POST", "/v1/sessions", login("lock@example.co.jp", "an application password", code)); resp.Status != 429 {
		t.Fatalf("still locked expected: %d", resp.Status)
	}
	r.Advance(2 * time.Minute)
	if resp := r.Do("POST", "/v1/sessions", login("lock@example.co.jp", "an application password", code)); resp.Status != 201 {
		t.Fatalf("after the lock: %d %s", resp.Status, resp.Body)
	}
}

// SE-3: failures from one client address across e-mails slow that
// address down — they never lock it out: another e-mail's right
// credentials from the same address still open a session.
func TestLoginFromFailingAddressIsSlowedNotLocked_SE3(t *testing.T) {
	th := domain.DefaultThrottle()
	th.AddressFree, th.AddressStep, th.AddressMax = 5, time.Millisecond, 5*time.Millisecond
	r := newRigWith(t, testenv.Options{}, intake.Options{Throttle: &th})
	_, _, code := r.readyCode(t, "office@example.co.jp", "new")
	for i := 0; i < 40; i++ {
		resp := r.Do("POST", "/v1/sessions", login("spray"+strconv.Itoa(i)+"@example.co.jp", "x", "y"))
		if resp.Status != 401 {
			t.Fatalf("failure %d from the address: %d %s", i, resp.Status, resp.Body)
		}
	}
	// Attempts 7 to 40 found 6 or more failures before them.
	if n := r.metric(t, "signin_address_delays_total"); n != 34 {
		t.Fatalf("%v attempts slowed, want 34", n)
	}
	if resp := r.Do("POST", "/v1/sessions", login("office@example.co.jp", "an application password", code)); resp.Status != 201 {
		t.Fatalf("another e-mail's right credentials from the address: %d %s", resp.Status, resp.Body)
	}
}

// assertNotInSchema dumps every row of intake's tables as text and fails
// when s appears in it (SE-1).
func (r *rig) assertNotInSchema(t *testing.T, s string) {
	t.Helper()
	ctx := context.Background()
	pool := r.Unit("intake").Deps.Pool
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'intake'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	variants := []string{s, strings.ReplaceAll(s, "-", "")}
	for _, tbl := range tables {
		var dump []byte
		if err := pool.QueryRow(ctx, `SELECT coalesce(json_agg(t)::text, '') FROM `+pgx.Identifier{tbl}.Sanitize()+` t`).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		// Outbox payloads are bytea: check their decoded text too.
		var text string
		_ = json.Unmarshal(dump, new(any))
		text = string(dump)
		for _, v := range variants {
			if strings.Contains(text, v) {
				t.Fatalf("secret found in table %s", tbl)
			}
		}
	}
}

// relogin opens a new session for email with the latest code the sealed
// events carry (sessions expire while tests move the clock by days).
func (r *rig) relogin(t *testing.T, email, _ string) string {
	t.Helper()
	var code string
	for _, e := range r.Events(events.TypeCertificateCodeIssued) {
		ev, _ := events.Decode[events.CertificateCodeIssued](e)
		if ev.Recipient.Email == email {
			code = r.openCode(t, e)
		}
	}
	resp := r.Do("POST", "/v1/sessions", login(email, "an application password", code))
	if resp.Status != 201 {
		t.Fatalf("relogin: %d %s", resp.Status, resp.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	resp.JSON(t, &s)
	return s.Token
}
