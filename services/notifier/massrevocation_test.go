package notifier_test

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// OP-5, NO-2: a mass revocation mails each subscriber once, in their
// language, listing every certificate of theirs it revoked (serial,
// product, common name or address) with the reason — from the one
// CertificateRevoked that carries the recipient; the others mail
// nothing, and a redelivery (even under another event ID) nothing more.
func TestMassRevocationOneMailListsAll_OP5_NO2(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	mass := newID()
	ja, en := "mass-ja@example.co.jp", "mass-en@example.co.jp"
	list := []events.RevokedCertificate{
		{Serial: "0a01", Product: events.ProductClient, Subject: ja},
		{Serial: "0a02", Product: events.ProductClient, Subject: ja},
		{Serial: "0a03", Product: events.ProductServer, Subject: "www.example.co.jp"},
	}
	revoked := func(serial string, to events.Recipient, l []events.RevokedCertificate) events.CertificateRevoked {
		return events.CertificateRevoked{CertificateID: newID(), ApplicationID: newID(), Serial: serial, Reason: "keyCompromise",
			RevokedAt: now, Recipient: to, MassRevocationID: mass, Certificates: l, CertificatesTotal: len(l)}
	}
	first := revoked("0a01", events.Recipient{Email: ja, Language: "ja", Name: "辺利 太郎"}, list)
	env := h.Publish(first, first.CertificateID)
	h.PublishAgain(env)
	h.Publish(first, first.CertificateID) // the same notice under another event ID
	h.Publish(revoked("0a02", events.Recipient{}, nil), "")
	h.Publish(revoked("0a03", events.Recipient{}, nil), "")
	h.Publish(revoked("0b01", events.Recipient{Email: en, Language: "en", Name: "Veri Taro"},
		[]events.RevokedCertificate{{Serial: "0b01", Product: events.ProductClient, Subject: en}}), "")
	testenv.Eventually(t, 10*time.Second, "both mails", func() bool {
		return len(h.SMTP.To(ja)) == 1 && len(h.SMTP.To(en)) == 1
	})
	h.Settle("notifier-mail", 10*time.Second)
	if n, m := len(h.SMTP.To(ja)), len(h.SMTP.To(en)); n != 1 || m != 1 {
		t.Fatalf("%d and %d mails, want one per subscriber", n, m)
	}
	for _, tc := range []struct {
		to, subject string
		body        []string
	}{
		{ja, "3 件の一括失効", []string{"辺利 太郎 様", "0a01", "0a02", "0a03", "www.example.co.jp", "秘密鍵の紛失・漏洩", mass}},
		{en, "we have revoked your certificate", []string{"Dear Veri Taro", "0b01", en, "the private key was lost or compromised", mass}},
	} {
		m := h.SMTP.To(tc.to)[0]
		if s := subjectOf(t, m); !strings.Contains(s, tc.subject) {
			t.Fatalf("subject %q, want %q", s, tc.subject)
		}
		for _, want := range tc.body {
			if !strings.Contains(m.Body, want) {
				t.Fatalf("body to %s lacks %q:\n%s", tc.to, want, m.Body)
			}
		}
	}
	if d := h.deliveries(t, ja, domain.ReasonMassRevocation); len(d) != 1 {
		t.Fatalf("%d mass revocation deliveries", len(d))
	}
}

// OP-5: the free replacement of a server certificate a mass revocation
// took asks for a CSR of a new key and says why (the reason); it sets no
// reminder.
func TestRevocationReplacementMail_OP5(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	for _, tc := range []struct{ lang, subject, body string }{
		{"ja", "無償再発行のご案内", "新しい鍵を作成し"},
		{"en", "a free replacement for the revoked certificate of www.example.co.jp", "create a NEW key"},
	} {
		to := "replace-" + tc.lang + "@example.co.jp"
		cert, app, mass := newID(), newID(), newID()
		p := csrRequested(cert, app, to, tc.lang, now.Add(300*day), now.Add(300*day))
		p.MassRevocationID, p.RevocationReason = mass, "keyCompromise"
		h.PublishAgain(h.Publish(p, cert))
		testenv.Eventually(t, 10*time.Second, "the replacement mail to "+to, func() bool { return len(h.SMTP.To(to)) == 1 })
		m := h.SMTP.To(to)[0]
		if s := subjectOf(t, m); !strings.Contains(s, tc.subject) {
			t.Fatalf("%s subject %q", tc.lang, s)
		}
		for _, want := range []string{tc.body, "/v1/certificates/" + cert + "/reissues", app, mass, "www.example.co.jp"} {
			if !strings.Contains(m.Body, want) {
				t.Fatalf("%s body lacks %q:\n%s", tc.lang, want, m.Body)
			}
		}
		if d := h.deliveries(t, to, domain.ReasonRevocationReplacement); len(d) != 1 {
			t.Fatalf("%d replacement deliveries", len(d))
		}
	}
	h.Advance(295 * day)
	h.Settle("notifier-mail", 10*time.Second)
	for _, lang := range []string{"ja", "en"} {
		if n := len(h.SMTP.To("replace-" + lang + "@example.co.jp")); n != 1 {
			t.Fatalf("%d mails, want the replacement only (no reminder)", n)
		}
	}
}
