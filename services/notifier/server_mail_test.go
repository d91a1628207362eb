package notifier_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

const testChain = "-----BEGIN CERTIFICATE-----\nTEVBRg==\n-----END CERTIFICATE-----\n" +
	"-----BEGIN CERTIFICATE-----\nSU5URVJNRURJQVRF\n-----END CERTIFICATE-----\n"

func serverIssued(certID, email, lang string) events.CertificateIssued {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return events.CertificateIssued{
		CertificateID: certID, ApplicationID: "app-" + certID, ApplicantID: "applicant-s", Product: events.ProductServer,
		Kind: events.KindNew, Recipient: events.Recipient{Email: email, Language: lang}, Serial: "7f0a1b2c3d4e5f60",
		Issuer: "tls1", NotBefore: now, NotAfter: now.Add(199*day - time.Second),
		CustomerID: "customer-1", OrderID: "order-1", DNSNames: []string{"www.example.co.jp", "example.co.jp"},
		TechnicalContact: &events.Contact{Name: "Gijutsu Hanako", Email: email}, PEMChain: testChain,
	}
}

// attachments are the attached files of a mail: name → (content type, content).
func attachments(t *testing.T, m testenv.Mail) map[string][2]string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw)) // m.Msg's body was read for m.Body
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("not a multipart mail: %q %v", mt, err)
	}
	out := map[string][2]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.FileName() == "" {
			continue
		}
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			r = base64.NewDecoder(base64.StdEncoding, p)
		}
		b, _ := io.ReadAll(r)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out[p.FileName()] = [2]string{ct, string(b)}
	}
	return out
}

// SV-10, NO-2, NO-1: a server certificate's issuance is mailed to its
// technical contact, in their language, with the PEM chain attached; the
// same event again sends nothing more. A client certificate's issuance
// mails nothing (it is delivered by retrieval).
func TestServerCertificateMailedWithChain_SV10_NO2(t *testing.T) {
	h := start(t, startOpts{})
	for _, tc := range []struct{ lang, subject, body string }{
		{"ja", "サーバ証明書発行のお知らせ", "Gijutsu Hanako 様"},
		{"en", "your server certificate has been issued", "Dear Gijutsu Hanako"},
	} {
		to := "tech-" + tc.lang + "@example.co.jp"
		ev := serverIssued(newID(), to, tc.lang)
		env := h.Publish(ev, "")
		h.PublishAgain(env)
		h.Publish(ev, "")
		testenv.Eventually(t, 10*time.Second, "the mail to "+to, func() bool { return len(h.SMTP.To(to)) == 1 })
		h.waitHandled(t, "notifier-mail", env)
		m := h.SMTP.To(to)[0]
		if s := subjectOf(t, m); !strings.Contains(s, tc.subject) {
			t.Fatalf("%s subject %q", tc.lang, s)
		}
		for _, want := range []string{tc.body, "www.example.co.jp", "example.co.jp", "7f0a1b2c3d4e5f60", ev.CertificateID} {
			if !strings.Contains(m.Body, want) {
				t.Fatalf("%s body lacks %q:\n%s", tc.lang, want, m.Body)
			}
		}
		files := attachments(t, m)
		f, ok := files["www.example.co.jp.pem"]
		if len(files) != 1 || !ok || f[0] != "application/pem-certificate-chain" || f[1] != testChain {
			t.Fatalf("%s attachments %v", tc.lang, files)
		}
		// The SMTP server has it; the delivery log says sent once the
		// send's transaction commits.
		testenv.Eventually(t, 10*time.Second, "the delivery logged as sent", func() bool {
			d := h.deliveries(t, to, domain.ReasonServerCertificateIssued)
			return len(d) == 1 && d[0].Status == "sent"
		})
	}
	// A client certificate's issuance: no mail.
	client := issued(newID(), "client@example.co.jp", time.Now().Add(365*day))
	env := h.Publish(client, "")
	h.waitHandled(t, "notifier-mail", env)
	if n := len(h.deliveries(t, "client@example.co.jp", "")); n != 0 {
		t.Fatalf("%d mails for a client issuance", n)
	}
}
