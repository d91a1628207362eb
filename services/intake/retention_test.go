package intake_test

import (
	"testing"
	"time"

	"github.com/certlife/platform/pkg/testenv"
)

// Issue 6 item 3 (SE-3's records have a bound): sessions a day after they
// expired, and sign-in attempts an hour after they left the throttle's
// window, are pruned by the retention timer on the injected clock; young
// ones stay.
func TestSessionsAndSignInAttemptsArePruned(t *testing.T) {
	r := newRig(t, testenv.Options{})
	email := "prune@example.co.jp"
	r.submit(t, body(email))
	// A failed sign-in (another e-mail: a success clears its own e-mail's
	// failures) leaves an attempt and the e-mail's row.
	if resp := r.Do("POST", "/v1/sessions", map[string]any{"email": "nobody@example.co.jp", "password": "wrong password!!", "certificate_code": "AAAA-BBBB-CCCC-DDDD-EEEE"}); resp.Status != 401 {
		t.Fatalf("sign-in: %d %s", resp.Status, resp.Body)
	}
	// A password-only session.
	if resp := r.Do("POST", "/v1/sessions", map[string]any{"email": email, "password": "an application password"}); resp.Status != 201 {
		t.Fatalf("session: %d %s", resp.Status, resp.Body)
	}
	if r.count(t, "login_failures") == 0 || r.count(t, "sessions") != 1 || r.count(t, "login_emails") == 0 {
		t.Fatalf("nothing to prune: %d %d %d", r.count(t, "login_failures"), r.count(t, "sessions"), r.count(t, "login_emails"))
	}
	r.Advance(30 * time.Minute) // young: both stay
	if r.count(t, "login_failures") == 0 || r.count(t, "sessions") != 1 {
		t.Fatal("young rows were pruned")
	}
	r.Advance(2 * time.Hour) // attempts past 15 min + 1 h
	testenv.Eventually(t, 10*time.Second, "attempts pruned", func() bool {
		r.Advance(time.Minute)
		return r.count(t, "login_failures") == 0 && r.count(t, "login_emails") == 0
	})
	if r.count(t, "sessions") != 1 {
		t.Fatal("a session younger than a day past its expiry was pruned")
	}
	r.Advance(25 * time.Hour)
	testenv.Eventually(t, 10*time.Second, "expired session pruned", func() bool {
		r.Advance(time.Minute)
		return r.count(t, "sessions") == 0
	})
}
