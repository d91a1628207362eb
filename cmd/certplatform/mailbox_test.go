package main

import (
	"encoding/asn1"
	"mime"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/pkg/events"
)

// PC-16, PC-1, PC-17, NO-2 through every service: a certificate code more
// than 24 hours old still signs in, but the retrieval answers 409
// mailbox-validation-required; the applicant asks for a fresh code
// (POST /v1/certificate-codes), which the notifier mails by name over
// SMTP and which replaces the old one; signed in with it, the same
// certificate is retrieved — carrying the application's
// organizationIdentifier in its subject.
func TestMailboxControlEndToEnd_PC16_PC1(t *testing.T) {
	e := startE2E(t, nil, nil)
	coupons := e.importCoupons(1)
	const email = "mailbox@example.co.jp"
	a := e.submit(coupons[0], email)
	e.advance("61m")
	e.waitEvent(events.TypeCertificateReady, a.ID)
	old := e.waitCode(email, 1)

	e.advance("25h")
	token := e.login(email, old) // the code still authenticates (PC-7, PC-14)
	ready := e.eligible(token, "retrieval")
	if len(ready) != 1 {
		t.Fatalf("ready for retrieval: %+v", ready)
	}
	cert := ready[0].ID
	auth := []string{"Authorization", "Bearer " + token}
	r := e.do("POST", "/v1/certificates/"+cert+"/retrieval", map[string]any{"accept_terms": true, "pkcs12_password": "a strong p12 password"}, auth...)
	if r.Status != 409 || !strings.Contains(string(r.Body), "/mailbox-validation-required") {
		t.Fatalf("retrieval with a 25-hour-old code: %d %s", r.Status, r.Body)
	}

	for _, who := range []string{email, "unknown@example.co.jp"} {
		r := e.do("POST", "/v1/certificate-codes", map[string]string{"email": who, "password": "an application password"})
		if r.Status != 202 {
			t.Fatalf("certificate-codes for %s: %d %s", who, r.Status, r.Body)
		}
	}
	fresh := e.waitCode(email, 2)
	if fresh == old {
		t.Fatal("the same code was mailed again")
	}
	var mail string
	for _, m := range e.smtp.To(email) {
		if strings.Contains(m.Body, fresh) {
			subject, err := new(mime.WordDecoder).DecodeHeader(m.Msg.Header.Get("Subject"))
			if err != nil || subject != "【Certlife】新しい証明書コードのお知らせ（メールアドレスの確認）" ||
				m.Msg.Header.Get("Auto-Submitted") != "auto-generated" {
				t.Fatalf("fresh-code mail: subject %q (%v), Auto-Submitted %q", subject, err, m.Msg.Header.Get("Auto-Submitted"))
			}
			mail = m.Body
		}
	}
	if !strings.Contains(mail, "辺利 太郎 様") {
		t.Fatalf("the fresh-code mail does not name the applicant:\n%s", mail)
	}
	if n := len(e.smtp.To("unknown@example.co.jp")); n != 0 {
		t.Fatalf("%d mails to an unknown e-mail", n)
	}
	if r := e.do("POST", "/v1/sessions", map[string]string{"email": email, "password": "an application password",
		"certificate_code": old}); r.Status != 401 {
		t.Fatalf("the replaced code: %d", r.Status)
	}

	p12 := e.retrievePKCS12(e.login(email, fresh), cert, "a strong p12 password")
	_, leaf, _, err := pkcs12.DecodeChain(p12, "a strong p12 password")
	if err != nil {
		t.Fatal(err)
	}
	oid := asn1.ObjectIdentifier{2, 5, 4, 97}
	var got string
	for _, n := range leaf.Subject.Names {
		if n.Type.Equal(oid) {
			got, _ = n.Value.(string)
		}
	}
	if got != "NTRJP-4010001012345" {
		t.Fatalf("subject:organizationIdentifier %q in %s", got, leaf.Subject)
	}
}
