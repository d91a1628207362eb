package issuer_test

import (
	"crypto/x509"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// crl fetches and checks the issuing CA's CRL as a relying party would
// (IS-7): DER, signed by the intermediate, nextUpdate within 10 days.
func (e *env) crl() *x509.RevocationList {
	e.t.Helper()
	r := e.Do("GET", "/crl/ica1.crl", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/pkix-crl" {
		e.t.Fatalf("/crl/ica1.crl: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(r.Body)
	if err != nil {
		e.t.Fatalf("CRL does not parse: %v", err)
	}
	if err := crl.CheckSignatureFrom(e.caCert("ica1")); err != nil {
		e.t.Fatalf("CRL is not signed by the intermediate: %v", err)
	}
	if d := crl.NextUpdate.Sub(crl.ThisUpdate); d <= 0 || d > 10*day {
		e.t.Fatalf("nextUpdate - thisUpdate = %s, want (0, 10 days]", d)
	}
	return crl
}

func crlReason(crl *x509.RevocationList, serial *big.Int) (int, bool) {
	for _, en := range crl.RevokedCertificateEntries {
		if en.SerialNumber.Cmp(serial) == 0 {
			return en.ReasonCode, true
		}
	}
	return 0, false
}

// IS-6: an operator revokes by serial (any hex spelling) with an RFC 5280
// reason; revoking again changes nothing and answers with the revocation
// that stands; an unknown serial is 404, a bad reason 422.
func TestOperatorRevocationIsIdempotent_IS6(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-l")
	a := application("applicant-l", events.KindNew, "", "")
	id := e.approve(a)
	cert := e.issueCSR(tok, id, newKey(t))
	spelled := strings.ToUpper(hexSerial(cert))
	spelled = spelled[:2] + ":" + spelled[2:]

	r := e.Ops("POST", "/ops/v1/revocations", map[string]any{"serial": spelled, "reason": "cessationOfOperation"})
	if r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	var out struct {
		CertificateID  string    `json:"certificate_id"`
		Serial         string    `json:"serial"`
		Reason         string    `json:"reason"`
		RevokedAt      time.Time `json:"revoked_at"`
		AlreadyRevoked bool      `json:"already_revoked"`
	}
	r.JSON(t, &out)
	if out.CertificateID != id || out.Serial != hexSerial(cert) || out.Reason != "cessationOfOperation" || out.AlreadyRevoked {
		t.Fatalf("revocation %+v", out)
	}
	again := e.Ops("POST", "/ops/v1/revocations", map[string]any{"serial": hexSerial(cert), "reason": "privilegeWithdrawn"})
	var second = out
	again.JSON(t, &second)
	if again.Status != http.StatusOK || !second.AlreadyRevoked || second.Reason != "cessationOfOperation" || !second.RevokedAt.Equal(out.RevokedAt) {
		t.Fatalf("second revocation: %d %s", again.Status, again.Body)
	}
	ev := e.WaitEvent(events.TypeCertificateRevoked, id, wait)
	rp, _ := events.Decode[events.CertificateRevoked](ev)
	if rp.Reason != "cessationOfOperation" || rp.ApplicationID != a.ID || rp.Recipient.Email != a.Applicant.Email {
		t.Fatalf("CertificateRevoked %+v", rp)
	}
	time.Sleep(200 * time.Millisecond)
	if got := e.eventsFor(events.TypeCertificateRevoked, id); len(got) != 1 {
		t.Fatalf("%d CertificateRevoked events, want 1", len(got))
	}
	problem(t, e.Ops("POST", "/ops/v1/revocations", map[string]any{"serial": "0abc", "reason": "superseded"}), http.StatusNotFound)
	for _, reason := range []string{"unspecified", "removeFromCRL", "certificateHold", "KEYCOMPROMISE", ""} {
		p := problem(t, e.Ops("POST", "/ops/v1/revocations", map[string]any{"serial": hexSerial(cert), "reason": reason}), 422)
		if !fieldNamed(p, "reason") {
			t.Fatalf("reason %q: %v", reason, p)
		}
	}
	problem(t, e.Do("POST", "/ops/v1/revocations", map[string]any{"serial": hexSerial(cert), "reason": "superseded"}), http.StatusUnauthorized)
	e.Advance(time.Minute)
	if reason, ok := crlReason(e.crl(), cert.SerialNumber); !ok || reason != 5 {
		t.Fatalf("CRL: listed=%v reason=%d, want cessationOfOperation (5)", ok, reason)
	}
}

// IS-7: the CRL exists from the start; a revocation puts the serial on a
// new CRL (higher number) within a minute; the CRL is regenerated at
// least every 4 days; an entry stays until the certificate expires.
func TestCRLRegeneratedAndKeepsEntriesUntilExpiry_IS7(t *testing.T) {
	e := start(t, nil)
	first := e.crl()
	if first.Number == nil || first.Number.Sign() <= 0 || len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("first CRL: number %v, %d entries", first.Number, len(first.RevokedCertificateEntries))
	}
	if !first.ThisUpdate.Before(e.Clock.Now().Add(time.Second)) {
		t.Fatal("thisUpdate is in the future")
	}
	tok := e.session("applicant-m")
	id := e.approve(application("applicant-m", events.KindNew, "", ""))
	cert := e.issueCSR(tok, id, newKey(t))
	if r := e.Ops("POST", "/ops/v1/revocations", map[string]any{"serial": hexSerial(cert), "reason": "affiliationChanged"}); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	// The timer is due at once; the timer worker fires it without any
	// clock movement.
	var second *x509.RevocationList
	testenv.Eventually(t, wait, "a CRL listing the revocation", func() bool {
		second = e.crl()
		_, ok := crlReason(second, cert.SerialNumber)
		return ok
	})
	if second.Number.Cmp(first.Number) <= 0 {
		t.Fatalf("CRLNumber %v after %v", second.Number, first.Number)
	}
	if reason, _ := crlReason(second, cert.SerialNumber); reason != 3 {
		t.Fatalf("reason code %d, want affiliationChanged (3)", reason)
	}
	var revokedAt time.Time
	for _, en := range second.RevokedCertificateEntries {
		revokedAt = en.RevocationTime
	}
	if e.Clock.Now().Sub(revokedAt) > time.Minute {
		t.Fatalf("revocation time %s", revokedAt)
	}

	// No revocation: still regenerated within 4 days.
	e.Advance(4 * day)
	third := e.crl()
	if third.Number.Cmp(second.Number) <= 0 || !third.ThisUpdate.After(second.ThisUpdate.Add(2*day)) {
		t.Fatalf("after 4 days: CRL #%v thisUpdate %s (previous #%v %s)", third.Number, third.ThisUpdate, second.Number, second.ThisUpdate)
	}
	if _, ok := crlReason(third, cert.SerialNumber); !ok {
		t.Fatal("an unexpired revoked certificate left the CRL")
	}
	// Once the certificate has expired, its entry goes.
	e.Clock.Set(cert.NotAfter.Add(-time.Hour))
	e.Advance(4 * day)
	last := e.crl()
	if _, ok := crlReason(last, cert.SerialNumber); ok {
		t.Fatal("an expired certificate is still on the CRL")
	}
	if last.Number.Cmp(third.Number) <= 0 {
		t.Fatal("CRLNumber did not increase")
	}
	// The root's CRL (ARL) is served from the CA directory; nothing else is a CRL.
	r := e.Do("GET", "/crl/root.crl", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("/crl/root.crl: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if arl, err := x509.ParseRevocationList(r.Body); err != nil || arl.CheckSignatureFrom(e.caCert("root")) != nil {
		t.Fatalf("root CRL not signed by the root: %v", err)
	}
	for _, bad := range []string{"/crl/ica1.pem", "/crl/nope.crl", "/crl/ica1", "/crl/ica1.crl.der"} {
		problem(t, e.Do("GET", bad, nil), http.StatusNotFound)
	}
}
