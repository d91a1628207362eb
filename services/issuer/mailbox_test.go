package issuer_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
)

// PC-16 (S/MIME BR 4.2.1): a certificate is issued at retrieval only if
// the session carries a validation of the certificate's mailbox from the
// last 30 days — checked by the issuer on the token alone, to the second
// on a frozen clock. Otherwise 409 mailbox-validation-required, and
// nothing is issued or recorded: the same certificate is retrieved once
// the applicant signs in with a fresh code.
func TestRetrievalNeedsMailboxValidatedWithin30Days_PC16(t *testing.T) {
	e := startWith(t, testenv.Options{Clock: clock.NewFrozen(time.Now().UTC().Truncate(time.Second))})
	const who = "applicant-mb"
	first := e.approve(application(who, events.KindNew, "", ""))
	second := e.approve(application(who, events.KindNew, "", ""))
	validated := e.Clock.Now()
	tok := e.sign(session.Claims{Subject: who, CodeVerified: true, ExpiresAt: validated.Add(60 * day).Unix(),
		MailboxValidatedAt: validated.Unix(), MailboxEmail: who + "@example.co.jp"})

	// 30 days less a second after the validation: issued.
	if err := e.Clock.Set(validated.Add(30*day - time.Second)); err != nil {
		t.Fatal(err)
	}
	e.issueCSR(tok, first, newKey(t))

	// Exactly 30 days after: refused, and the certificate still waits.
	if err := e.Clock.Set(validated.Add(30 * day)); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"accept_terms": true, "csr": csrPEM(t, newKey(t))}
	refused := func(tok, why string) {
		t.Helper()
		p := problem(t, e.as(tok, "POST", "/v1/certificates/"+second+"/retrieval", body), http.StatusConflict)
		if p["type"] != "https://certlife.dev/problems/mailbox-validation-required" {
			t.Fatalf("%s: %v", why, p)
		}
	}
	refused(tok, "a validation 30 days old")
	// No validation at all, or one of another mailbox, is no better.
	refused(e.sign(session.Claims{Subject: who, CodeVerified: true, ExpiresAt: e.Clock.Now().Add(time.Hour).Unix()}),
		"no validation")
	refused(e.sign(session.Claims{Subject: who, CodeVerified: true, ExpiresAt: e.Clock.Now().Add(time.Hour).Unix(),
		MailboxValidatedAt: e.Clock.Now().Unix(), MailboxEmail: "someone.else@example.co.jp"}), "another mailbox")
	if n := e.count(`SELECT count(*) FROM certificates WHERE id = $1 AND retrieval_mode IS NULL AND serial IS NULL`, second); n != 1 {
		t.Fatal("a refused retrieval changed the certificate")
	}
	if !listed(e.list(tok, "retrieval"), second) {
		t.Fatal("the certificate is no longer offered for retrieval after a refusal")
	}
	if n := len(e.eventsFor(events.TypeCertificateIssued, second)); n != 0 {
		t.Fatalf("%d CertificateIssued events for a refused retrieval", n)
	}

	// A fresh validation (a new sign-in with a new code) lets it through.
	fresh := e.token(who, true, e.Clock.Now().Add(30*time.Minute))
	e.issueCSR(fresh, second, newKey(t))
}
