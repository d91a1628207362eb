package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
)

const day = 24 * time.Hour

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func near(a, b time.Time) bool { d := a.Sub(b); return d > -2*time.Second && d < 2*time.Second }

// IS-4, PC-15: validity starts at retrieval (not at approval) and runs for
// the term; a renewal chains on from the previous expiry; nothing runs
// past 825 days — the cap — however long the chained term.
func TestValidityStartsAtRetrievalChainsAndIsCapped_IS4_PC15(t *testing.T) {
	term := 820 * day
	e := start(t, func(c *app.Config) { c.TermClient = term })
	tok := e.session("applicant-g")
	id := e.approve(application("applicant-g", events.KindNew, "", ""))
	e.Advance(10 * day) // the applicant retrieves ten days after approval
	at := e.Clock.Now()
	first := e.issueCSR(tok, id, newKey(t))
	if !near(first.NotBefore, at) {
		t.Fatalf("not_before %s, want the retrieval time %s", first.NotBefore, at)
	}
	if got := first.NotAfter.Sub(first.NotBefore); got != term {
		t.Fatalf("new certificate runs %s, want the term %s", got, term)
	}

	// Renewal retrieved 20 days before the expiry: max(now, previous
	// not_after) + term = 840 days from now, capped at 825 days.
	renewal := e.approve(application("applicant-g", events.KindRenewal, id, ""))
	e.Clock.Set(first.NotAfter.Add(-20 * day))
	second := e.issueCSR(tok, renewal, newKey(t))
	if got := second.NotAfter.Sub(second.NotBefore); got != 825*day-time.Second {
		t.Fatalf("renewal runs %s, want the 825-day cap (inclusive: 825d - 1s)", got)
	}
	if !near(second.NotBefore, e.Clock.Now()) {
		t.Fatal("renewal's not_before is not its retrieval time")
	}
	// PC-10: the renewed certificate stays valid.
	var revoked int
	_ = e.pool().QueryRow(context.Background(), `SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL`).Scan(&revoked)
	if revoked != 0 {
		t.Fatal("a renewal revoked the certificate it renews")
	}
}

// PC-15: the renewal chain without the cap (one-year term): the new
// certificate ends one term after the previous one, not after the
// retrieval; a renewal after expiry runs one term from the retrieval.
func TestRenewalChainsFromPreviousExpiry_PC15(t *testing.T) {
	term := 365 * day
	e := start(t, nil)
	tok := e.session("applicant-h")
	id := e.approve(application("applicant-h", events.KindNew, "", ""))
	first := e.issueCSR(tok, id, newKey(t))
	if got := first.NotAfter.Sub(first.NotBefore); got != term {
		t.Fatalf("term %s", got)
	}
	renewal := e.approve(application("applicant-h", events.KindRenewal, id, ""))
	e.Clock.Set(first.NotAfter.Add(-25 * day))
	second := e.issueCSR(tok, renewal, newKey(t))
	if !second.NotAfter.Equal(first.NotAfter.Add(term)) {
		t.Fatalf("renewal ends %s, want previous expiry + term %s", second.NotAfter, first.NotAfter.Add(term))
	}
	// Renewed after its expiry (inside the 365-day window): from now.
	late := e.approve(application("applicant-h", events.KindRenewal, e.idOf(second), ""))
	e.Clock.Set(second.NotAfter.Add(40 * day))
	third := e.issueCSR(tok, late, newKey(t))
	if got := third.NotAfter.Sub(third.NotBefore); got != term || !near(third.NotBefore, e.Clock.Now()) {
		t.Fatalf("renewal after expiry runs %s from %s", got, third.NotBefore)
	}
}

// idOf is the certificate ID of an issued certificate.
func (e *env) idOf(c *x509.Certificate) string {
	e.t.Helper()
	var id string
	if err := e.pool().QueryRow(context.Background(), `SELECT id::text FROM certificates WHERE serial = $1`, hexSerial(c)).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// PC-8: a certificate is listed for renewal from 30 days before its
// expiry until 365 days after it, and not outside that window.
func TestRenewalEligibilityWindow_PC8(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-i")
	id := e.approve(application("applicant-i", events.KindNew, "", ""))
	cert := e.issueCSR(tok, id, newKey(t))
	steps := []struct {
		at   time.Time
		want bool
	}{
		{time.Time{}, false}, // now, just after issuance
		{cert.NotAfter.Add(-30*day - time.Minute), false},
		{cert.NotAfter.Add(-30*day + time.Minute), true},
		{cert.NotAfter.Add(time.Minute), true},
		{cert.NotAfter.Add(365*day - time.Minute), true},
		{cert.NotAfter.Add(365*day + time.Minute), false},
	}
	for _, s := range steps {
		if !s.at.IsZero() {
			if err := e.Clock.Set(s.at); err != nil {
				t.Fatal(err)
			}
		}
		if got := listed(e.list(tok, "renewal"), id); got != s.want {
			t.Fatalf("at expiry%+v: renewable = %v, want %v", s.at.Sub(cert.NotAfter).Round(time.Minute), got, s.want)
		}
	}
}

// PC-11: a reissue keeps the original's expiry; it is offered only with
// more than 30 days left; the replacement revokes the original as
// superseded when it is issued (PC-12), not before.
func TestReissueKeepsExpiryAndSupersedes_PC11_PC12(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-j")
	id := e.approve(application("applicant-j", events.KindNew, "", ""))
	orig := e.issueCSR(tok, id, newKey(t))
	if !listed(e.list(tok, "reissue"), id) {
		t.Fatal("a fresh certificate is not offered for reissue")
	}
	a := application("applicant-j", events.KindReissue, id, "superseded")
	e.Publish(events.ApplicationProvisional{Application: a, AcceptedAt: e.Clock.Now(), CancelDeadline: e.Clock.Now().Add(time.Hour)}, a.ID)
	reissue := e.approve(a)
	if listed(e.list(tok, "reissue"), id) {
		t.Fatal("a certificate with a reissue under way is offered for reissue again")
	}
	if n := e.count(`SELECT count(*) FROM certificates WHERE id = $1 AND revoked_at IS NOT NULL`, id); n != 0 {
		t.Fatal("a superseded reissue revoked the original before the replacement was issued")
	}
	e.Advance(40 * day)
	repl := e.issueCSR(tok, reissue, newKey(t))
	if !repl.NotAfter.Equal(orig.NotAfter) {
		t.Fatalf("reissue ends %s, want the original's %s", repl.NotAfter, orig.NotAfter)
	}
	if !near(repl.NotBefore, e.Clock.Now()) {
		t.Fatal("reissue's not_before is not its retrieval time")
	}
	ev := e.WaitEvent(events.TypeCertificateRevoked, id, wait)
	rp, _ := events.Decode[events.CertificateRevoked](ev)
	if rp.Reason != "superseded" || rp.Serial != hexSerial(orig) || rp.Recipient.Email == "" {
		t.Fatalf("CertificateRevoked %+v", rp)
	}
	if listed(e.list(tok, "reissue"), id) || listed(e.list(tok, "renewal"), id) {
		t.Fatal("a revoked certificate is still offered")
	}
	// IS-7: the superseded serial is on the CRL within minutes.
	e.Advance(time.Minute)
	crl := e.crl()
	if reason, ok := crlReason(crl, orig.SerialNumber); !ok || reason != 4 {
		t.Fatalf("CRL entry for the superseded certificate: listed=%v reason=%d", ok, reason)
	}

	// The replacement has 30 days or less left: no further reissue.
	e.Clock.Set(repl.NotAfter.Add(-31 * day))
	if !listed(e.list(tok, "reissue"), reissue) {
		t.Fatal("31 days left: should still be offered for reissue")
	}
	e.Clock.Set(repl.NotAfter.Add(-30 * day))
	if listed(e.list(tok, "reissue"), reissue) {
		t.Fatal("30 days left: must not be offered for reissue")
	}
}

// PC-12: a reissue for a lost or compromised key revokes the original at
// once, on acceptance, with keyCompromise — before any review; the
// replacement must not reuse the compromised key, and its issuance does
// not revoke the original a second time.
func TestKeyCompromiseRevokedOnAcceptance_PC12(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-k")
	id := e.approve(application("applicant-k", events.KindNew, "", ""))
	oldKey := newKey(t)
	orig := e.issueCSR(tok, id, oldKey)
	a := application("applicant-k", events.KindReissue, id, "key_compromise")
	e.Publish(events.ApplicationProvisional{Application: a, AcceptedAt: e.Clock.Now(), CancelDeadline: e.Clock.Now().Add(time.Hour)}, a.ID)
	ev := e.WaitEvent(events.TypeCertificateRevoked, id, wait)
	if rp, _ := events.Decode[events.CertificateRevoked](ev); rp.Reason != "keyCompromise" {
		t.Fatalf("revoked with %q, want keyCompromise", rp.Reason)
	}
	e.Advance(time.Minute)
	if reason, ok := crlReason(e.crl(), orig.SerialNumber); !ok || reason != 1 {
		t.Fatalf("CRL entry: listed=%v reason=%d, want keyCompromise (1)", ok, reason)
	}

	reissue := e.approve(a)
	r := e.as(tok, "POST", "/v1/certificates/"+reissue+"/retrieval", map[string]any{"accept_terms": true, "csr": csrPEM(t, oldKey)})
	if p := problem(t, r, 422); !fieldNamed(p, "csr") || !strings.Contains(string(r.Body), "compromised") {
		t.Fatalf("reusing the compromised key: %s", r.Body)
	}
	repl := e.issueCSR(tok, reissue, newKey(t))
	if !repl.NotAfter.Equal(orig.NotAfter) {
		t.Fatal("reissue does not keep the original expiry")
	}
	var reason string
	_ = e.pool().QueryRow(context.Background(), `SELECT revocation_reason FROM certificates WHERE id = $1`, id).Scan(&reason)
	if reason != "keyCompromise" {
		t.Fatalf("original's reason became %q", reason)
	}
	if got := e.eventsFor(events.TypeCertificateRevoked, id); len(got) != 1 {
		t.Fatalf("%d CertificateRevoked events for the original, want 1", len(got))
	}
}
