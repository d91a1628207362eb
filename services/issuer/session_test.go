package issuer_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/issuer"
)

// Issue 6 item 8, PC-7: the issuer verifies intake's session tokens
// locally — intake is not running in this test and nothing answers on
// NATS for it — and refuses expired, forged and tampered tokens with 401.
// A session opened without the certificate code is refused every
// certificate step with 403.
func TestSessionTokenVerifiedLocally_PC7(t *testing.T) {
	// A frozen clock: the expiry below is checked to the second, which a
	// clock that keeps flowing on a loaded machine would overshoot.
	e := startWith(t, testenv.Options{Clock: clock.NewFrozen(time.Now().UTC().Truncate(time.Second))})
	id := e.approve(application("applicant-s", events.KindNew, "", ""))
	list := "/v1/certificates?eligible_for=retrieval"

	good := e.token("applicant-s", true, e.Clock.Now().Add(30*time.Minute))
	if !listed(e.list(good, "retrieval"), id) {
		t.Fatal("a valid token does not see its certificate")
	}

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := session.NewSigner(otherKey).Sign(session.Claims{SessionID: uuid.NewString(), Subject: "applicant-s",
		CodeVerified: true, ExpiresAt: e.Clock.Now().Add(time.Hour).Unix()})
	parts := strings.Split(good, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	evil := strings.Replace(string(raw), `"sub":"applicant-s"`, `"sub":"applicant-x"`, 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(evil)) + "." + parts[2]
	for name, tok := range map[string]string{"forged": forged, "tampered": tampered, "truncated": good[:len(good)-4]} {
		p := problem(t, e.as(tok, "GET", list, nil), http.StatusUnauthorized)
		if p["type"] != "https://certlife.dev/problems/unauthorized" {
			t.Errorf("%s: %v", name, p)
		}
	}

	passwordOnly := e.token("applicant-s", false, e.Clock.Now().Add(30*time.Minute))
	p := problem(t, e.as(passwordOnly, "GET", list, nil), http.StatusForbidden)
	if p["type"] != "https://certlife.dev/problems/certificate-code-required" {
		t.Fatalf("password-only session: %v", p)
	}
	problem(t, e.as(passwordOnly, "POST", "/v1/certificates/"+id+"/retrieval",
		map[string]any{"accept_terms": true, "pkcs12_password": "password-1"}), http.StatusForbidden)

	// Expired: valid up to, not at, its expiry on the injected clock.
	e.Advance(30*time.Minute - time.Second)
	e.list(good, "retrieval")
	e.Advance(time.Second)
	problem(t, e.as(good, "GET", list, nil), http.StatusUnauthorized)
}

// SE-10: an issuer without the session public key refuses to start and
// says what is missing.
func TestIssuerNeedsSessionPublicKey_SE10(t *testing.T) {
	dbURL := testenv.Database(t)
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	cfg, err := app.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.NatsURL, cfg.DataDir, cfg.SessionPublicKey = dbURL, n.URL(), t.TempDir(), ""
	ops, _ := opsauth.Parse("")
	_, err = app.Build(context.Background(), issuer.Definition, app.Shared{Config: cfg, NC: nc, JS: js,
		Clock: clock.NewOffset(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(), Ops: ops})
	if err == nil || !strings.Contains(err.Error(), "SESSION_PUBLIC_KEY") {
		t.Fatalf("started without SESSION_PUBLIC_KEY: %v", err)
	}
}

// testSessionKey is a fresh session public key for tests that build the
// issuer by hand.
func testSessionKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return session.EncodePublicKey(pub)
}
