package notifier_test

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

func csrRequested(certID, appID, email, lang string, deadline, coverageEnd time.Time) events.CoverageCSRRequested {
	return events.CoverageCSRRequested{ApplicationID: appID, CertificateID: certID, CustomerID: "customer-c",
		OrderID: "order-c", Recipient: events.Recipient{Email: email, Language: lang, Name: "Kokyaku Jiro"},
		CommonName: "www.example.co.jp", Deadline: deadline, CoverageEnd: coverageEnd, RequestedAt: deadline.Add(-30 * day)}
}

// IS-4, NO-2, NO-3: a coverage reissue's CSR request is mailed in the
// customer's language with the deadline and the route; the reminder
// comes 7 days before the deadline, once, only while the CSR is missing:
// the reissue application's acceptance (its CSR arrived) cancels it.
func TestCoverageCSRRequestAndOneReminder_IS4_NO3(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	deadline, end := now.Add(30*day), now.Add(400*day)
	for _, tc := range []struct{ lang, subject, body string }{
		{"ja", "の新しい CSR をご提出ください", "Kokyaku Jiro 様"},
		{"en", "a new CSR is needed for www.example.co.jp", "Dear Kokyaku Jiro"},
	} {
		to := "missing-" + tc.lang + "@example.co.jp"
		cert, app := newID(), newID()
		env := h.Publish(csrRequested(cert, app, to, tc.lang, deadline, end), cert)
		h.PublishAgain(env)
		testenv.Eventually(t, 10*time.Second, "the CSR request to "+to, func() bool { return len(h.SMTP.To(to)) == 1 })
		m := h.SMTP.To(to)[0]
		if s := subjectOf(t, m); !strings.Contains(s, tc.subject) {
			t.Fatalf("%s subject %q", tc.lang, s)
		}
		for _, want := range []string{tc.body, "/v1/certificates/" + cert + "/reissues", app, "www.example.co.jp"} {
			if !strings.Contains(m.Body, want) {
				t.Fatalf("%s body lacks %q:\n%s", tc.lang, want, m.Body)
			}
		}
	}
	// One customer sends the CSR (its reissue is accepted), the other does not.
	sent, silent := "sent@example.co.jp", "silent@example.co.jp"
	sentApp := newID()
	h.waitHandled(t, "notifier-mail", h.Publish(csrRequested(newID(), sentApp, sent, "en", deadline, end), ""))
	h.waitHandled(t, "notifier-mail", h.Publish(csrRequested(newID(), newID(), silent, "en", deadline, end), ""))
	a := application(sentApp, sent, "en")
	a.Product, a.Kind, a.PreviousCertificateID = events.ProductServer, events.KindReissue, newID()
	a.Server = &events.ServerApplication{CustomerID: "customer-c", OrderID: "order-c", CSR: "csr", CommonName: "www.example.co.jp",
		TermMonths: 12, TechnicalContact: events.Contact{Email: sent}, Organization: events.ServerOrganization{DUNS: "123456789"}}
	h.waitHandled(t, "notifier-mail", h.Publish(events.ApplicationProvisional{Application: a, AcceptedAt: now, CancelDeadline: now}, ""))

	h.Advance(23*day - time.Hour)
	if n := len(h.deliveries(t, silent, domain.ReasonCoverageCSRReminder)); n != 0 {
		t.Fatal("a reminder before 7 days before the deadline")
	}
	h.Advance(2 * time.Hour)
	testenv.Eventually(t, 10*time.Second, "the reminder", func() bool { return len(h.SMTP.To(silent)) == 2 })
	if s := subjectOf(t, h.SMTP.To(silent)[1]); !strings.Contains(s, "reminder") {
		t.Fatalf("reminder subject %q", s)
	}
	h.Advance(6 * day)
	h.Settle("notifier-mail", 10*time.Second)
	if n := len(h.SMTP.To(silent)); n != 2 {
		t.Fatalf("%d mails to the silent customer, want the request and one reminder", n)
	}
	if n := len(h.SMTP.To(sent)); n != 1 {
		t.Fatalf("%d mails to the customer who sent the CSR, want the request only", n)
	}
}

// IS-4 with NO-3: a server certificate whose coverage goes on after it
// gets no renewal notice (its reissue follows); the last certificate of
// the coverage gets its 60-day notice.
func TestNoRenewalNoticeInsideLongerCoverage_IS4_NO3(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	mid, last := newID(), newID()
	a := ownServer(mid, "mid@example.co.jp", now.Add(100*day))
	a.CoverageEnd = now.Add(400 * day)
	b := ownServer(last, "last@example.co.jp", now.Add(100*day))
	b.CoverageEnd = b.NotAfter.Add(time.Second)
	h.waitHandled(t, "notifier-reminders", h.Publish(a, ""))
	h.waitHandled(t, "notifier-reminders", h.Publish(b, ""))
	h.Advance(41 * day)
	h.WaitEvent(events.TypeRenewalDue, last, 10*time.Second)
	h.Settle("notifier-reminders", 10*time.Second)
	if due := h.renewalDue(t, mid); len(due) != 0 {
		t.Fatalf("a renewal notice inside the coverage: %+v", due)
	}
}
