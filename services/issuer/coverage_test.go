package issuer_test

import (
	"bytes"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
)

// waitCoverageDue waits for the issuer's CoverageReissueDue of a certificate.
func (e *env) waitCoverageDue(certificateID string) events.CoverageReissueDue {
	e.t.Helper()
	p, err := events.Decode[events.CoverageReissueDue](e.WaitEvent(events.TypeCoverageReissueDue, certificateID, wait))
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) coverageDueCount(certificateID string) int {
	n := 0
	for _, env := range e.Events(events.TypeCoverageReissueDue) {
		if env.SubjectID == certificateID {
			n++
		}
	}
	return n
}

// reissueOf is the reissue application intake makes on CoverageReissueDue
// and validation approves: the previous application's data, the same
// order and coverage, and the given CSR.
func reissueOf(prev events.Application, previousCertificateID, csr string) events.Application {
	a := prev
	a.ID, a.Kind, a.PreviousCertificateID = uuid.NewString(), events.KindReissue, previousCertificateID
	srv := *prev.Server
	srv.CSR = csr
	a.Server = &srv
	return a
}

// IS-4: a 2-year coverage bought on 2026-12-01 is served by a chain of
// certificates each within the cap of its issuance date (199 days, then
// 99 from 2027-03-15), the next announced 30 days before each one's
// notAfter (not a minute sooner), with the same key where the customer
// opted in, and the last one ending with the coverage. The certificates
// replaced are left to expire, not revoked.
func TestCoverageLongerThanCertificateReissues_IS4(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clk := frozenAt(start)
	_, entries := startLogs(t, 3, clk)
	e := startTLS(t, entries, clk, nil)
	coverageEnd := start.AddDate(2, 0, 0)
	key := ecKey(t)
	csr := csrFor(t, key, pkix.Name{CommonName: "www.certlife-test.com"})
	a := serverApp("customer-cov", "www.certlife-test.com", nil, csr, coverageEnd)
	a.Server.ReuseKey = true
	e.approveServer(a)
	ev := e.waitIssued(a.ID)
	leaf := parsePEMCerts(t, []byte(ev.PEMChain))[0]
	if got := leaf.NotAfter.Sub(leaf.NotBefore) + time.Second; got != 199*24*time.Hour {
		t.Fatalf("first certificate valid %s, want 199 days (IS-4 on %s)", got, start.Format("2006-01-02"))
	}
	var ids []string
	appID := a.ID
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatal("more than 20 reissues for a 2-year coverage")
		}
		ids = append(ids, ev.CertificateID)
		if !leaf.NotAfter.Before(coverageEnd.Add(-time.Second)) {
			break
		}
		due := leaf.NotAfter.Add(-30 * 24 * time.Hour)
		e.Advance(due.Add(-time.Minute).Sub(e.Clock.Now()))
		if n := e.coverageDueCount(ev.CertificateID); n != 0 {
			t.Fatalf("reissue of %s announced before %s", ev.CertificateID, due)
		}
		e.Advance(time.Minute)
		d := e.waitCoverageDue(ev.CertificateID)
		if !d.CoverageEnd.Equal(coverageEnd) || !d.ReuseKey || !d.NotAfter.Equal(leaf.NotAfter) ||
			d.ApplicationID != appID || d.CustomerID != "customer-cov" || d.OrderID != a.Server.OrderID {
			t.Fatalf("CoverageReissueDue %+v", d)
		}
		// Intake and validation: a reissue with the previous CSR (reuse_key).
		r := reissueOf(a, ev.CertificateID, csr)
		e.approveServer(r)
		ev, appID = e.waitIssued(r.ID), r.ID
		next := parsePEMCerts(t, []byte(ev.PEMChain))[0]
		if ev.Kind != events.KindReissue || ev.PreviousCertificateID != ids[len(ids)-1] {
			t.Fatalf("reissue event kind %q previous %q", ev.Kind, ev.PreviousCertificateID)
		}
		if !bytes.Equal(next.RawSubjectPublicKeyInfo, leaf.RawSubjectPublicKeyInfo) {
			t.Fatal("the reissue does not carry the previous key")
		}
		now := e.Clock.Now()
		capDays := 199
		if !now.Before(time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC)) {
			capDays = 99
		}
		want := now.Add(time.Duration(capDays)*24*time.Hour - time.Second)
		if end := coverageEnd.Add(-time.Second); end.Before(want) {
			want = end
		}
		if !next.NotBefore.Equal(now) || !next.NotAfter.Equal(want) {
			t.Fatalf("reissue %d: %s – %s, want %s – %s", i+1, next.NotBefore, next.NotAfter, now, want)
		}
		// The replaced certificate is left to expire.
		if n := e.count(`SELECT count(*) FROM certificates WHERE id = $1 AND revoked_at IS NULL AND status = 'issued'`, ids[len(ids)-1]); n != 1 {
			t.Fatal("the replaced certificate was revoked")
		}
		leaf = next
	}
	if !leaf.NotAfter.Equal(coverageEnd.Add(-time.Second)) {
		t.Fatalf("last certificate ends %s, coverage %s", leaf.NotAfter, coverageEnd)
	}
	if n := e.count(`SELECT count(*) FROM timers WHERE kind = 'issuer-coverage-reissue'`); n != 0 {
		t.Fatalf("%d coverage timers after the last certificate", n)
	}
	t.Logf("a 2-year coverage from %s: %d certificates", start.Format("2006-01-02"), len(ids))
	// Each announcement was made once.
	for _, id := range ids[:len(ids)-1] {
		if n := e.coverageDueCount(id); n != 1 {
			t.Fatalf("certificate %s: %d announcements", id, n)
		}
	}
}

// IS-4: no reissue is announced for a certificate revoked meanwhile, nor
// for one whose coverage ends with it.
func TestCoverageReissueNotForRevokedOrCoveredCertificate_IS4(t *testing.T) {
	start := time.Date(2027, 4, 1, 9, 0, 0, 0, time.UTC)
	clk := frozenAt(start)
	_, entries := startLogs(t, 3, clk)
	e := startTLS(t, entries, clk, nil)
	revoked, evRevoked := e.issueNew("customer-r", "www.certlife-test.com", start.AddDate(1, 0, 0))
	_, evShort := e.issueNew("customer-s", "www.certlife-test.com", start.Add(60*24*time.Hour))
	if n := e.count(`SELECT count(*) FROM timers WHERE kind = 'issuer-coverage-reissue' AND key = $1`, evShort.CertificateID); n != 0 {
		t.Fatal("a coverage timer for a certificate that ends with its coverage")
	}
	if r := e.Ops("POST", "/ops/v1/revocations", map[string]any{"serial": hexSerial(revoked), "reason": "keyCompromise"}); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	e.Advance(revoked.NotAfter.Add(-29 * 24 * time.Hour).Sub(e.Clock.Now()))
	if n := e.coverageDueCount(evRevoked.CertificateID); n != 0 {
		t.Fatal("a reissue announced for a revoked certificate")
	}
	if n := e.count(`SELECT count(*) FROM timers WHERE kind = 'issuer-coverage-reissue'`); n != 0 {
		t.Fatal("the timer of the revoked certificate is still set")
	}
}
