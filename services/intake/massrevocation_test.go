package intake_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// OP-5 (with IS-4): a server certificate a mass revocation took, whose
// paid coverage goes on, is offered a free replacement — the coverage
// reissue, always with a new key even for a customer who opted in to
// reusing it: CoverageCSRRequested names the mass revocation and its
// reason, the order shows the replacement waiting for its CSR, a CSR of
// the revoked key is refused, a new one makes the reissue application.
// A redelivery offers nothing more; a revocation that is not a mass
// revocation offers nothing.
func TestRevokedServerCertificateReplaced_OP5(t *testing.T) {
	r := newRig(t, testenv.Options{})
	key := ecKey(t)
	b := serverBody(t, "massrev@example.co.jp", exampleDN)
	b["csr"], b["reuse_key"] = csrPEM(t, exampleDN, key), true
	a := r.submit(t, b)
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	notAfter := r.Clock.Now().Add(199 * 24 * time.Hour).Truncate(time.Second)
	certID := r.issue(t, prov.Application, notAfter)
	tok := r.customerLogin(t, "massrev@example.co.jp", "a customer password")
	orderID := prov.Application.Server.OrderID
	r.waitOrder(t, tok, orderID, "issued", func(o orderView) bool { return o.Status == "issued" })

	mass := uuid.NewString()
	revoked := events.CertificateRevoked{CertificateID: certID, ApplicationID: prov.Application.ID,
		Serial: strings.ReplaceAll(certID, "-", ""), Reason: "keyCompromise", RevokedAt: r.Clock.Now(), MassRevocationID: mass}
	env := r.Publish(revoked, certID)
	req := decode[events.CoverageCSRRequested](t, r.WaitEvent(events.TypeCoverageCSRRequested, "", 10*time.Second))
	if req.CertificateID != certID || req.MassRevocationID != mass || req.RevocationReason != "keyCompromise" ||
		req.Recipient.Email != "massrev@example.co.jp" || req.Recipient.Language != "ja" || req.CommonName != exampleDN.CN ||
		req.OrderID != orderID || !req.CoverageEnd.After(notAfter) || !req.Deadline.Equal(req.CoverageEnd) {
		t.Fatalf("replacement request %+v", req)
	}
	r.PublishAgain(env)
	r.Publish(revoked, certID) // the same revocation under another event ID
	r.Settle("intake-applications", 10*time.Second)
	if n := len(r.Events(events.TypeCoverageCSRRequested)); n != 1 {
		t.Fatalf("%d CSR requests, want one", n)
	}
	if n := len(r.reissuesOf(t, certID)); n != 0 {
		t.Fatal("an application before the new key's CSR (the key must not be reused)")
	}
	tok = r.customerLogin(t, "massrev@example.co.jp", "a customer password")
	if o := r.order(t, tok, orderID); o.CoverageReissue == nil || o.CoverageReissue.Status != "awaiting_csr" ||
		o.CoverageReissue.CertificateID != certID || o.CoverageReissue.ApplicationID != req.ApplicationID ||
		o.CoverageReissue.ReuseKey || o.CoverageReissue.MassRevocationID != mass ||
		o.CoverageReissue.RevocationReason != "keyCompromise" {
		t.Fatalf("order's replacement %+v", o.CoverageReissue)
	}
	path := "/v1/certificates/" + certID + "/reissues"
	problemOf(t, r.Do("POST", path, map[string]any{"csr": csrPEM(t, exampleDN, key)}, bearer(tok)...), 422)
	resp := r.Do("POST", path, map[string]any{"csr": csrPEM(t, exampleDN, nil)}, bearer(tok)...)
	if resp.Status != 202 {
		t.Fatalf("CSR: %d %s", resp.Status, resp.Body)
	}
	re := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, req.ApplicationID, 10*time.Second)).Application
	if re.Kind != events.KindReissue || re.PreviousCertificateID != certID || re.Server.OrderID != orderID ||
		!strings.Contains(re.Server.Decision, "OP-5") {
		t.Fatalf("replacement application %+v", re.Server)
	}

	// A revocation one by one (no mass revocation) offers nothing here.
	b2 := serverBody(t, "single@example.co.jp", exampleDN)
	a2 := r.submit(t, b2)
	prov2 := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a2.ID, 10*time.Second))
	cert2 := r.issue(t, prov2.Application, notAfter)
	tok2 := r.customerLogin(t, "single@example.co.jp", "a customer password")
	r.waitOrder(t, tok2, prov2.Application.Server.OrderID, "issued", func(o orderView) bool { return o.Status == "issued" })
	r.Publish(events.CertificateRevoked{CertificateID: cert2, ApplicationID: prov2.Application.ID,
		Serial: "0c", Reason: "superseded", RevokedAt: r.Clock.Now()}, cert2)
	r.Settle("intake-applications", 10*time.Second)
	if n := len(r.Events(events.TypeCoverageCSRRequested)); n != 1 {
		t.Fatalf("%d CSR requests after a single revocation", n)
	}
}
