package notifier_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// PC-10, NO-3: RenewalDue 30 days before expiry; once the renewal was
// retrieved, the 10-day reminder is not sent.
func TestRenewalDueAt30DaysNotAfterRenewal_PC10_NO3(t *testing.T) {
	h := start(t, startOpts{})
	cert, to := newID(), "renew@example.jp"
	notAfter := h.Clock.Now().Add(60 * day).Truncate(time.Second)
	h.waitHandled(t, "notifier-reminders", h.Publish(issued(cert, to, notAfter), ""))

	h.Advance(30*day - time.Hour)
	if due := h.renewalDue(t, cert); len(due) != 0 {
		t.Fatalf("RenewalDue before its time: %+v", due)
	}
	h.Advance(2 * time.Hour)
	h.WaitEvent(events.TypeRenewalDue, cert, 10*time.Second)
	due := h.renewalDue(t, cert)
	want := events.RenewalDue{CertificateID: cert, ApplicantID: "applicant-1", Product: events.ProductClient,
		Recipient: events.Recipient{Email: to, Language: "ja"}, NotAfter: notAfter, DaysBefore: 30}
	if len(due) != 1 || !due[0].NotAfter.Equal(want.NotAfter) || mustJSON(t, due[0]) != mustJSON(t, want) {
		t.Fatalf("RenewalDue %+v, want %+v", due, want)
	}

	// The issuance seen again (a replaying upstream) re-creates the 30-day
	// timer, already due: it must not emit a second RenewalDue, which would
	// make intake replace the code just mailed.
	h.waitHandled(t, "notifier-reminders", h.Publish(issued(cert, to, notAfter), ""))
	h.Advance(time.Minute)
	testenv.Eventually(t, 10*time.Second, "the re-created 30-day timer to fire", func() bool {
		var n int
		err := h.DB.QueryRow(context.Background(), `SELECT count(*) FROM notifier.timers WHERE kind = 'notifier.reminder'
			AND key = $1`, domain.ReminderKey(cert, 30)).Scan(&n)
		return err == nil && n == 0
	})
	if due := h.renewalDue(t, cert); len(due) != 1 {
		t.Fatalf("a republished issuance gave %d RenewalDue events, want 1", len(due))
	}

	renewal := newID()
	h.waitHandled(t, "notifier-reminders", h.Publish(events.CertificateRetrieved{CertificateID: renewal,
		ApplicationID: newID(), Kind: events.KindRenewal, PreviousCertificateID: cert, Serial: "77",
		Mode: "pkcs12", RetrievedAt: h.Clock.Now()}, ""))
	h.Advance(21 * day)
	if outcome, why := h.reminderOutcome(t, cert, 10); outcome != "suppressed" || why != domain.SuppressedRenewed {
		t.Fatalf("10-day reminder after the renewal was retrieved: %s %s", outcome, why)
	}
	if due := h.renewalDue(t, cert); len(due) != 1 {
		t.Fatalf("want only the 30-day RenewalDue, got %+v", due)
	}
}

// PC-10, NO-3: no reminder for a revoked certificate (also when the
// revocation is seen before the issuance), nor past the renewal window;
// the revocation itself is mailed.
func TestNoReminderWhenRevokedOrExpired_PC10_NO3(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now()
	revoked, early, expired, to := newID(), newID(), newID(), "revoked@example.jp"

	h.waitHandled(t, "notifier-reminders", h.Publish(issued(revoked, to, now.Add(60*day)), ""))
	h.Publish(events.CertificateRevoked{CertificateID: revoked, ApplicationID: "app-" + revoked, Serial: "0a1b",
		Reason: "keyCompromise", RevokedAt: now, Recipient: events.Recipient{Email: to, Language: "ja"}}, "")
	// Out of order: the revocation arrives before the issuance.
	h.waitHandled(t, "notifier-reminders", h.Publish(events.CertificateRevoked{CertificateID: early,
		ApplicationID: "app-" + early, Serial: "0c", Reason: "cessationOfOperation", RevokedAt: now}, ""))
	h.waitHandled(t, "notifier-reminders", h.Publish(issued(early, to, now.Add(60*day)), ""))
	// Expired 400 days ago: both reminders are due at once, neither relevant.
	h.waitHandled(t, "notifier-reminders", h.Publish(issued(expired, to, now.Add(-400*day)), ""))

	h.Advance(31 * day)
	for _, c := range []struct {
		cert string
		days int
		why  string
	}{{revoked, 30, domain.SuppressedRevoked}, {early, 30, domain.SuppressedRevoked},
		{expired, 30, domain.SuppressedExpired}, {expired, 10, domain.SuppressedExpired}} {
		if outcome, why := h.reminderOutcome(t, c.cert, c.days); outcome != "suppressed" || why != c.why {
			t.Fatalf("%d-day reminder of %s: %s %q, want suppressed %q", c.days, c.cert, outcome, why, c.why)
		}
	}
	if n := len(h.Events(events.TypeRenewalDue)); n != 0 {
		t.Fatalf("%d RenewalDue events for irrelevant reminders", n)
	}
	testenv.Eventually(t, 10*time.Second, "the revocation mail", func() bool { return len(h.SMTP.To(to)) == 1 })
	m := h.SMTP.To(to)[0]
	if s := subjectOf(t, m); s != "【Certlife】証明書失効のお知らせ" || !strings.Contains(m.Body, "秘密鍵の紛失・漏洩") ||
		!strings.Contains(m.Body, "クライアント証明書") {
		t.Fatalf("revocation mail %q:\n%s", s, m.Body)
	}
	metrics := string(h.Do("GET", "/metrics", nil).Body)
	if !strings.Contains(metrics, `renewal_reminders_total{outcome="suppressed",service="notifier",why="revoked"} 2`) {
		t.Fatal("suppressed reminders are not counted by why in /metrics")
	}
}

// NO-3: reminders that came due while the notifier was stopped are sent
// when it is back if still relevant: not for a certificate revoked
// meanwhile, and only the latest when two came due.
func TestMissedReminderSentAfterRestart_NO3(t *testing.T) {
	h1 := start(t, startOpts{})
	now := h1.Clock.Now()
	a, b, c, to := newID(), newID(), newID(), "restart@example.jp"
	for _, ev := range []events.CertificateIssued{
		issued(a, to, now.Add(40*day)), // 30-day reminder due on day 10
		issued(b, to, now.Add(40*day)), // revoked while the notifier is down
		issued(c, to, now.Add(31*day)), // 30- and 10-day reminders due on days 1 and 21
	} {
		h1.waitHandled(t, "notifier-reminders", h1.Publish(ev, ""))
	}
	h1.Stop()

	if err := h1.Clock.Advance(25 * day); err != nil {
		t.Fatal(err)
	}
	h1.publishWhileStopped(t, events.CertificateRevoked{CertificateID: b, ApplicationID: "app-" + b, Serial: "0b",
		Reason: "affiliationChanged", RevokedAt: h1.Clock.Now()})

	h2 := start(t, startOpts{reuse: h1, smtp: h1.SMTP, keyPath: h1.KeyPath})
	for _, r := range []struct {
		cert         string
		days         int
		outcome, why string
	}{{a, 30, "sent", ""}, {b, 30, "suppressed", domain.SuppressedRevoked},
		{c, 30, "suppressed", domain.SuppressedSuperseded}, {c, 10, "sent", ""}} {
		if outcome, why := h2.reminderOutcome(t, r.cert, r.days); outcome != r.outcome || why != r.why {
			t.Fatalf("%d-day reminder of %s after restart: %s %q, want %s %q", r.days, r.cert, outcome, why, r.outcome, r.why)
		}
	}
	// The log row commits with the outbox row; the relay publishes it just after.
	h2.WaitEvent(events.TypeRenewalDue, a, 10*time.Second)
	h2.WaitEvent(events.TypeRenewalDue, c, 10*time.Second)
	if due := h2.renewalDue(t, a); len(due) != 1 || due[0].DaysBefore != 30 {
		t.Fatalf("missed 30-day reminder of A: %+v", due)
	}
	if due := h2.renewalDue(t, c); len(due) != 1 || due[0].DaysBefore != 10 {
		t.Fatalf("C: want only the 10-day RenewalDue, got %+v", due)
	}
	if due := h2.renewalDue(t, b); len(due) != 0 {
		t.Fatalf("RenewalDue for a certificate revoked while the notifier was down: %+v", due)
	}
}
