package issuer_test

import (
	"testing"
	"time"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// PC-8, PC-11 (issue 6 item 8): the windows CertificateIssued carries
// are the ones the issuer lists by, to the second at every edge — so what
// intake accepts (from the event) and what the issuer lists agree. The
// clock is frozen: each edge is hit exactly.
func TestIssuedEventCarriesTheListedWindows_PC8_PC11(t *testing.T) {
	e := startWith(t, testenv.Options{Clock: clock.NewFrozen(time.Now().UTC().Truncate(time.Second))})
	tok := e.session("applicant-w")
	a := application("applicant-w", events.KindNew, "", "")
	id := e.approve(a)
	cert := e.issueCSR(tok, id, newKey(t))
	issued, err := events.Decode[events.CertificateIssued](e.WaitEvent(events.TypeCertificateIssued, a.ID, wait))
	if err != nil {
		t.Fatal(err)
	}
	w := issued.Windows
	if w == nil {
		t.Fatal("CertificateIssued carries no windows")
	}
	if !w.RenewalFrom.Equal(cert.NotAfter.Add(-30*day)) || !w.RenewalUntil.Equal(cert.NotAfter.Add(365*day)) ||
		!w.ReissueUntil.Equal(cert.NotAfter.Add(-30*day)) {
		t.Fatalf("windows %+v for not_after %s", w, cert.NotAfter)
	}
	for _, s := range []struct {
		at               time.Time
		renewal, reissue bool
	}{
		{w.RenewalFrom.Add(-time.Second), false, true}, // 30 days and a second left
		{w.RenewalFrom, true, false},                   // exactly 30 days left
		{w.RenewalUntil, true, false},                  // 365 days after expiry
		{w.RenewalUntil.Add(time.Second), false, false},
	} {
		if err := e.Clock.Set(s.at); err != nil {
			t.Fatal(err)
		}
		now := e.Clock.Now()
		if w.RenewalOpen(now) != s.renewal || w.ReissueOpen(now) != s.reissue {
			t.Fatalf("at %s the event's windows say renewal %v reissue %v", now, w.RenewalOpen(now), w.ReissueOpen(now))
		}
		if got := listed(e.list(tok, "renewal"), id); got != s.renewal {
			t.Errorf("at %s: listed for renewal %v, want %v", now, got, s.renewal)
		}
		if got := listed(e.list(tok, "reissue"), id); got != s.reissue {
			t.Errorf("at %s: listed for reissue %v, want %v", now, got, s.reissue)
		}
	}
}
