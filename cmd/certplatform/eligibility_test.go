package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/intake"
	"github.com/certlife/platform/services/issuer"
)

// PC-8, PC-11 (issue 6 item 8): each eligibility rule has one owner —
// the issuer computes the windows, CertificateIssued carries them — and
// both sides agree at every edge, on the injected (frozen) clock: what
// the issuer lists as renewable or reissuable is what intake offers
// (prefill) and accepts (POST renewals/reissues), to the second.
func TestEligibilityWindowsAgreeAcrossServices_PC8_PC11(t *testing.T) {
	dir := t.TempDir()
	notifier, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sessionKey := filepath.Join(dir, "session.key")
	signing, err := session.LoadOrCreateKey(sessionKey, true)
	if err != nil {
		t.Fatal(err)
	}
	codeKey := filepath.Join(dir, "code-hmac.key")
	if err := os.WriteFile(codeKey, []byte("0123456789abcdef0123456789abcdef0123"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFrozen(time.Now().UTC().Truncate(time.Second))
	p := testenv.Start(t, testenv.Options{Clock: clk, Config: func(c *app.Config) {
		c.NotifierPublicKey = notifier.Public().String()
		c.SessionPrivateKeyFile = sessionKey
		c.SessionPublicKey = session.EncodePublicKey(signing.Public().(ed25519.PublicKey))
		c.CodeHMACKeyFile = codeKey
		c.CancelWindow = time.Hour
		// The issuer's throwaway CA, PUBLIC_URL and CT logs are dev mode's
		// (SE-10), as in the issuer's own tests.
		c.DevMode = true
	}}, intake.Definition, issuer.Definition)
	// Billing's instant coupon check; billing itself is not needed here.
	if _, err := rpc.Serve(p.NC, events.RPCCouponCheck, p.Log, func(context.Context, events.CouponCheckRequest) (events.CouponCheckResponse, error) {
		return events.CouponCheckResponse{OK: true}, nil
	}); err != nil {
		t.Fatal(err)
	}

	// A new application, final after its window, approved as validation
	// would; the code intake mails (sealed to the notifier) opens a session.
	const email = "edges@example.co.jp"
	resp := p.Do("POST", "/v1/applications", application("11111111-22222222", email))
	if resp.Status != 202 {
		t.Fatalf("submit: %d %s", resp.Status, resp.Body)
	}
	var sub submitted
	resp.JSON(t, &sub)
	prov, _ := events.Decode[events.ApplicationProvisional](p.WaitEvent(events.TypeApplicationProvisional, sub.ID, 10*time.Second))
	p.Advance(61 * time.Minute)
	p.WaitEvent(events.TypeCancelWindowClosed, sub.ID, 10*time.Second)
	p.Publish(events.ReviewApproved{ReviewID: "r-" + sub.ID, Application: prov.Application, Reviewer: "ops:test"}, sub.ID)
	codeEv, _ := events.Decode[events.CertificateCodeIssued](p.WaitEvent(events.TypeCertificateCodeIssued, sub.ID, 10*time.Second))
	raw, err := notifier.Open(codeEv.SealedCode)
	if err != nil {
		t.Fatal(err)
	}
	code := string(raw)
	signIn := func() []string {
		t.Helper()
		r := p.Do("POST", "/v1/sessions", map[string]string{"email": email, "password": "an application password", "certificate_code": code})
		if r.Status != 201 {
			t.Fatalf("session: %d %s", r.Status, r.Body)
		}
		var s struct {
			Token string `json:"token"`
		}
		r.JSON(t, &s)
		return []string{"Authorization", "Bearer " + s.Token}
	}
	auth := signIn()
	cert := codeEv.CertificateID
	if r := p.Do("POST", "/v1/certificates/"+cert+"/retrieval", map[string]any{"accept_terms": true, "csr": testCSR(t, email)}, auth...); r.Status != 202 {
		t.Fatalf("retrieval: %d %s", r.Status, r.Body)
	}
	issued, _ := events.Decode[events.CertificateIssued](p.WaitEvent(events.TypeCertificateIssued, sub.ID, 10*time.Second))
	w := issued.Windows
	if w == nil {
		t.Fatal("CertificateIssued carries no windows")
	}

	listed := func(auth []string, step string) bool {
		t.Helper()
		r := p.Do("GET", "/v1/certificates?eligible_for="+step, nil, auth...)
		var out struct {
			Certificates []struct {
				ID string `json:"id"`
			} `json:"certificates"`
		}
		r.JSON(t, &out)
		for _, c := range out.Certificates {
			if c.ID == cert {
				return true
			}
		}
		return false
	}
	type prefill struct {
		RenewalOpen bool `json:"renewal_open"`
		ReissueOpen bool `json:"reissue_open"`
	}
	offered := func(auth []string) prefill {
		t.Helper()
		var pf prefill
		p.Do("GET", "/v1/certificates/"+cert+"/prefill", nil, auth...).JSON(t, &pf)
		return pf
	}
	// Intake records the certificate from the event it consumes.
	testenv.Eventually(t, 10*time.Second, "intake knows the certificate is issued", func() bool { return offered(auth).ReissueOpen })

	post := func(auth []string, step string) int {
		t.Helper()
		body := map[string]any{"reason": "superseded"}
		if step == "renewals" {
			body = map[string]any{"coupon": "33333333-44444444"}
		}
		r := p.Do("POST", "/v1/certificates/"+cert+"/"+step, body, auth...)
		if r.Status == 409 {
			var prob struct {
				Type string `json:"type"`
			}
			r.JSON(t, &prob)
			if prob.Type != "https://certlife.dev/problems/not-eligible" {
				return 0 // refused for another reason: not a window answer
			}
		}
		return r.Status
	}
	for _, s := range []struct {
		name             string
		at               time.Time
		renewal, reissue bool
		// tryRenewal / tryReissue: also POST that step (each succeeds once).
		tryRenewal, tryReissue bool
	}{
		{"30 days and a second before expiry", w.RenewalFrom.Add(-time.Second), false, true, true, true},
		{"30 days before expiry", w.RenewalFrom, true, false, true, true},
		{"365 days after expiry", w.RenewalUntil, true, false, false, true},
		{"365 days and a second after expiry", w.RenewalUntil.Add(time.Second), false, false, true, true},
	} {
		if err := clk.Set(s.at); err != nil {
			t.Fatal(err)
		}
		auth := signIn()
		if got := listed(auth, "renewal"); got != s.renewal {
			t.Errorf("%s: issuer lists for renewal %v, want %v", s.name, got, s.renewal)
		}
		if got := listed(auth, "reissue"); got != s.reissue {
			t.Errorf("%s: issuer lists for reissue %v, want %v", s.name, got, s.reissue)
		}
		if got := offered(auth); got.RenewalOpen != s.renewal || got.ReissueOpen != s.reissue {
			t.Errorf("%s: intake offers %+v, want renewal %v reissue %v", s.name, got, s.renewal, s.reissue)
		}
		for _, try := range []struct {
			step string
			do   bool
			open bool
		}{{"renewals", s.tryRenewal, s.renewal}, {"reissues", s.tryReissue, s.reissue}} {
			if !try.do {
				continue
			}
			want := 409
			if try.open {
				want = 202
			}
			if got := post(auth, try.step); got != want {
				t.Errorf("%s: POST %s answered %d, want %d", s.name, try.step, got, want)
			}
		}
	}
}

func testCSR(t *testing.T, email string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{EmailAddresses: []string{email}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}
