package notifier_test

import (
	"context"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// ownServer is CertificateIssued of one of our server certificates.
func ownServer(certID, techEmail string, notAfter time.Time) events.CertificateIssued {
	return events.CertificateIssued{
		CertificateID: certID, ApplicationID: "app-" + certID, ApplicantID: "applicant-s", Product: events.ProductServer,
		Kind: events.KindNew, Recipient: events.Recipient{Email: techEmail, Language: "ja", Name: "Gijutsu Hanako"},
		Serial: "7f0a", Issuer: "tls1", NotBefore: notAfter.Add(-365 * day), NotAfter: notAfter,
		CustomerID: "customer-" + certID[:8], OrderID: "order-" + certID[:8], DNSNames: []string{"www.example.co.jp"},
		TechnicalContact: &events.Contact{Name: "Gijutsu Hanako", Email: techEmail}, PEMChain: testChain,
	}
}

// imported is CertificateImported of a server certificate bought elsewhere.
func imported(certID, email string, notAfter time.Time, sealedSetup []byte) events.CertificateImported {
	return events.CertificateImported{
		CertificateID: certID, CustomerID: "customer-" + certID[:8],
		Recipient:    events.Recipient{Email: email, Language: "ja", Name: "Hosuto Ichiro"},
		Organization: events.ServerOrganization{DUNS: "123456789", NameEn: "Example Hosting K.K."},
		CommonName:   "shop.example.co.jp", DNSNames: []string{"shop.example.co.jp"}, Serial: "0bad",
		IssuerDN: "CN=Other CA", NotBefore: notAfter.Add(-365 * day), NotAfter: notAfter, SealedSetupLink: sealedSetup,
	}
}

// SV-1, NO-3: our own server certificate's notice is due 60 days before
// its expiry: RenewalDue names the product, the customer and the offset,
// once — a republished issuance does not make a second one.
func TestServerNoticeAt60Days_SV1_NO3(t *testing.T) {
	h := start(t, startOpts{})
	cert := newID()
	notAfter := h.Clock.Now().Add(100 * day).Truncate(time.Second)
	ev := ownServer(cert, "tech@example.co.jp", notAfter)
	h.waitHandled(t, "notifier-reminders", h.Publish(ev, ""))

	h.Advance(40*day - time.Hour)
	if due := h.renewalDue(t, cert); len(due) != 0 {
		t.Fatalf("RenewalDue before 60 days: %+v", due)
	}
	h.Advance(2 * time.Hour)
	h.WaitEvent(events.TypeRenewalDue, cert, 10*time.Second)
	want := events.RenewalDue{CertificateID: cert, ApplicantID: "applicant-s", CustomerID: ev.CustomerID,
		Product: events.ProductServer, Recipient: events.Recipient{Email: "tech@example.co.jp", Language: "ja"},
		NotAfter: notAfter, DaysBefore: 60}
	if due := h.renewalDue(t, cert); len(due) != 1 || mustJSON(t, due[0]) != mustJSON(t, want) {
		t.Fatalf("RenewalDue %+v, want %+v", due, want)
	}
	h.waitHandled(t, "notifier-reminders", h.Publish(ev, ""))
	h.Advance(time.Minute)
	testenv.Eventually(t, 10*time.Second, "the re-created 60-day timer to fire", func() bool {
		var n int
		err := h.DB.QueryRow(context.Background(), `SELECT count(*) FROM notifier.timers WHERE kind = 'notifier.reminder'
			AND key = $1`, domain.ReminderKey(cert, 60)).Scan(&n)
		return err == nil && n == 0
	})
	h.Settle("notifier-reminders", 10*time.Second)
	if due := h.renewalDue(t, cert); len(due) != 1 {
		t.Fatalf("a republished issuance gave %d RenewalDue events, want 1", len(due))
	}
}

// SV-1, NO-3: a certificate bought elsewhere is due 90 days before its
// expiry: one expiring in 89 days at once, one expiring in 120 days on
// day 30.
func TestImportedNoticeAt90Days_SV1_NO3(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	soon, later := newID(), newID()
	h.waitHandled(t, "notifier-reminders", h.Publish(imported(soon, "soon@example.co.jp", now.Add(89*day), nil), ""))
	h.waitHandled(t, "notifier-reminders", h.Publish(imported(later, "later@example.co.jp", now.Add(120*day), nil), ""))
	h.Advance(time.Minute)
	h.WaitEvent(events.TypeRenewalDue, soon, 10*time.Second)
	due := h.renewalDue(t, soon)
	if len(due) != 1 || due[0].DaysBefore != 90 || due[0].Product != events.ProductServer ||
		due[0].CustomerID != "customer-"+soon[:8] || due[0].ApplicantID != "" || due[0].Recipient.Email != "soon@example.co.jp" {
		t.Fatalf("imported certificate expiring in 89 days: %+v", due)
	}
	h.Advance(30*day - time.Hour)
	if due := h.renewalDue(t, later); len(due) != 0 {
		t.Fatalf("RenewalDue of an imported certificate before 90 days: %+v", due)
	}
	h.Advance(2 * time.Hour)
	h.WaitEvent(events.TypeRenewalDue, later, 10*time.Second)
	if due := h.renewalDue(t, later); len(due) != 1 || due[0].DaysBefore != 90 {
		t.Fatalf("imported certificate expiring in 120 days: %+v", due)
	}
}

// SV-2, NO-3: no notice once the renewal was declined, once a renewal was
// issued, for a revoked certificate, nor for an expired server
// certificate (an order for it is a new one, SV-5).
func TestServerNoticeStops_SV2_NO3(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	declined, renewed, revoked, expired := newID(), newID(), newID(), newID()
	h.waitHandled(t, "notifier-reminders", h.Publish(imported(declined, "d@example.co.jp", now.Add(100*day), nil), ""))
	h.waitHandled(t, "notifier-reminders", h.Publish(ownServer(renewed, "r@example.co.jp", now.Add(70*day)), ""))
	h.waitHandled(t, "notifier-reminders", h.Publish(ownServer(revoked, "v@example.co.jp", now.Add(70*day)), ""))
	h.waitHandled(t, "notifier-reminders", h.Publish(ownServer(expired, "x@example.co.jp", now.Add(-day)), ""))

	h.waitHandled(t, "notifier-reminders", h.Publish(events.RenewalDeclined{CertificateID: declined,
		CustomerID: "customer-" + declined[:8], Advice: "change the plan", DeclinedAt: now}, ""))
	next := ownServer(newID(), "r@example.co.jp", now.Add(465*day))
	next.Kind, next.PreviousCertificateID = events.KindRenewal, renewed
	h.waitHandled(t, "notifier-reminders", h.Publish(next, ""))
	h.waitHandled(t, "notifier-reminders", h.Publish(events.CertificateRevoked{CertificateID: revoked,
		ApplicationID: "app-" + revoked, Serial: "7f0a", Reason: "keyCompromise", RevokedAt: now}, ""))

	h.Advance(11 * day)
	for _, c := range []struct {
		cert string
		days int
		why  string
	}{{declined, 90, domain.SuppressedDeclined}, {renewed, 60, domain.SuppressedRenewed},
		{revoked, 60, domain.SuppressedRevoked}, {expired, 60, domain.SuppressedExpired}} {
		if outcome, why := h.reminderOutcome(t, c.cert, c.days); outcome != "suppressed" || why != c.why {
			t.Fatalf("%d-day notice of %s: %s %q, want suppressed %q", c.days, c.cert, outcome, why, c.why)
		}
	}
	if n := len(h.Events(events.TypeRenewalDue)); n != 0 {
		t.Fatalf("%d RenewalDue events for notices no longer relevant", n)
	}
}

// NO-3: server notices that came due while the notifier was down are sent
// when it is back — except one declined meanwhile.
func TestMissedServerNoticeAfterRestart_NO3(t *testing.T) {
	h1 := start(t, startOpts{})
	now := h1.Clock.Now().Truncate(time.Second)
	own, imp, declined := newID(), newID(), newID()
	h1.waitHandled(t, "notifier-reminders", h1.Publish(ownServer(own, "o@example.co.jp", now.Add(70*day)), ""))
	h1.waitHandled(t, "notifier-reminders", h1.Publish(imported(imp, "i@example.co.jp", now.Add(100*day), nil), ""))
	h1.waitHandled(t, "notifier-reminders", h1.Publish(imported(declined, "d@example.co.jp", now.Add(100*day), nil), ""))
	h1.Stop()

	if err := h1.Clock.Advance(20 * day); err != nil {
		t.Fatal(err)
	}
	h1.publishWhileStopped(t, events.RenewalDeclined{CertificateID: declined, CustomerID: "customer-" + declined[:8],
		Advice: "change the plan", DeclinedAt: h1.Clock.Now()})

	h2 := start(t, startOpts{reuse: h1, smtp: h1.SMTP, keyPath: h1.KeyPath})
	for _, r := range []struct {
		cert         string
		days         int
		outcome, why string
	}{{own, 60, "sent", ""}, {imp, 90, "sent", ""}, {declined, 90, "suppressed", domain.SuppressedDeclined}} {
		if outcome, why := h2.reminderOutcome(t, r.cert, r.days); outcome != r.outcome || why != r.why {
			t.Fatalf("%d-day notice of %s after restart: %s %q, want %s %q", r.days, r.cert, outcome, why, r.outcome, r.why)
		}
	}
	h2.WaitEvent(events.TypeRenewalDue, own, 10*time.Second)
	h2.WaitEvent(events.TypeRenewalDue, imp, 10*time.Second)
	if due := h2.renewalDue(t, declined); len(due) != 0 {
		t.Fatalf("RenewalDue for a renewal declined while the notifier was down: %+v", due)
	}
}
