package notifier_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// sealTo seals a value to the notifier's public key, as intake does.
func (h *harness) sealTo(t *testing.T, v string) []byte {
	t.Helper()
	b, err := seal.Seal(h.Key.Public(), []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func invoiceFor(orderID, email, lang string, notice *events.RenewalNotice, issuedAt time.Time) events.InvoiceIssued {
	return events.InvoiceIssued{
		InvoiceID: newID(), Number: "INV-2026-" + orderID[:6], PaymentReference: "PR" + strings.ToUpper(orderID[:6]),
		OrderID: orderID, CustomerID: "customer-1", Recipient: events.Recipient{Email: email, Language: lang, Name: "Hosuto Ichiro"},
		OrganizationName: "Example Hosting K.K.", Currency: "JPY",
		Lines:    []events.InvoiceLine{{Description: "OV server certificate, 12 months", Quantity: 1, UnitPrice: 30000, Amount: 30000, TaxRate: 10}},
		Taxes:    []events.TaxSummary{{Rate: 10, Taxable: 30000, Tax: 3000}},
		Subtotal: 30000, Tax: 3000, Total: 33000, RegistrationNumber: "T1234567890123", IssuerName: "Certlife K.K.",
		IssuedAt: issuedAt, DueAt: issuedAt.Add(30 * day), Notice: notice,
	}
}

// mailTo waits for exactly one mail to addr and returns it.
func (h *harness) mailTo(t *testing.T, addr string) testenv.Mail {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the mail to "+addr, func() bool { return len(h.SMTP.To(addr)) >= 1 })
	return h.SMTP.To(addr)[0]
}

// sealedLeft reports whether a delivery still holds a sealed secret.
func (h *harness) sealedLeft(t *testing.T, messageID string) bool {
	t.Helper()
	var left bool
	if err := h.DB.QueryRow(context.Background(), `SELECT sealed_links IS NOT NULL OR sealed_setup IS NOT NULL
		FROM notifier.deliveries WHERE message_id = $1`, messageID).Scan(&left); err != nil {
		t.Fatal(err)
	}
	return left
}

// SV-1, SV-2, NO-1, NO-2, NO-4: a certificate imported 89 days before its
// expiry gets no welcome mail — its setup link rides with the notice. The
// notice (InvoiceIssued with Notice) is one mail in the customer's
// language: certificate, expiry, days left, invoice number, amount, how to
// pay with the payment reference, the one-click links opened from their
// sealed form, the setup link, and the invoice PDF, which parses. A
// redelivered event and a second invoice for the same notice send nothing
// more; the delivery log names the reason and the causing event, and the
// secrets are gone from it once sent.
func TestRenewalNoticeMailWithInvoicePDF_SV1_SV2_NO1_NO2_NO4(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	cert, to := newID(), "hosting@example.co.jp"
	imp := imported(cert, to, now.Add(89*day), h.sealTo(t, "https://portal.example/setup?t=SETUP-SECRET"))
	envImp := h.Publish(imp, "")
	h.waitHandled(t, "notifier-reminders", envImp)
	h.waitHandled(t, "notifier-mail", envImp)
	if d := h.deliveries(t, to, ""); len(d) != 0 {
		t.Fatalf("a welcome mail although the notice is due at once: %+v", d)
	}

	links, _ := json.Marshal(domain.NoticeLinks{Renew: "https://portal.example/intent?renew=1&t=ONE-CLICK",
		Decline: "https://portal.example/intent?renew=0&t=ONE-CLICK"})
	notice := &events.RenewalNotice{CertificateID: cert, CommonName: imp.CommonName, NotAfter: imp.NotAfter,
		DaysBefore: 90, Imported: true, SealedLinks: h.sealTo(t, string(links))}
	order := newID()
	inv := invoiceFor(order, to, "ja", notice, now)
	env := h.Publish(inv, "corr-notice")
	h.PublishAgain(env)
	second := invoiceFor(order, to, "ja", notice, now) // another invoice for the same notice
	envSecond := h.Publish(second, "")
	h.waitHandled(t, "notifier-mail", envSecond)

	m := h.mailTo(t, to)
	if s := subjectOf(t, m); !strings.Contains(s, "shop.example.co.jp") || !strings.Contains(s, "更新のご案内") {
		t.Fatalf("notice subject %q", s)
	}
	for _, want := range []string{"Hosuto Ichiro 様", "shop.example.co.jp", cert, "残り 89 日", inv.Number, "33,000 円",
		"3,000 円", inv.PaymentReference, "renew=1&t=ONE-CLICK", "renew=0&t=ONE-CLICK", "setup?t=SETUP-SECRET",
		"他社で購入", "renewal-intent", order} {
		if !strings.Contains(m.Body, want) {
			t.Fatalf("notice lacks %q:\n%s", want, m.Body)
		}
	}
	files := attachments(t, m)
	pdf, ok := files[domain.InvoicePDFName(inv.Number)]
	if len(files) != 1 || !ok || pdf[0] != "application/pdf" || !strings.HasPrefix(pdf[1], "%PDF-") {
		t.Fatalf("attachments: %d files, names %v", len(files), keys(files))
	}
	text := testenv.PDFText(t, []byte(pdf[1]))
	for _, want := range []string{inv.Number, "T1234567890123", "33,000"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the invoice PDF lacks %q:\n%s", want, text)
		}
	}

	testenv.Eventually(t, 10*time.Second, "the notice logged as sent", func() bool {
		d := h.deliveries(t, to, domain.ReasonServerRenewalNotice)
		return len(d) == 1 && d[0].Status == "sent"
	})
	d := h.deliveries(t, to, "")
	// The consumer handles events concurrently: either invoice event may
	// be the one that queued the notice.
	if len(d) != 1 || (d[0].CausedBy != env.ID.String() && d[0].CausedBy != envSecond.ID.String()) ||
		d[0].SubjectID != order || d[0].Language != "ja" {
		t.Fatalf("delivery log %+v, want one notice caused by %s or %s", d, env.ID, envSecond.ID)
	}
	if d[0].MessageID != m.Msg.Header.Get("Message-Id") {
		t.Fatalf("Message-ID %q in the log, %q on the mail", d[0].MessageID, m.Msg.Header.Get("Message-Id"))
	}
	if h.sealedLeft(t, d[0].MessageID) {
		t.Fatal("the sealed links outlived the send")
	}
	var kept bool
	if err := h.DB.QueryRow(context.Background(), `SELECT sealed_setup_link IS NOT NULL FROM notifier.certificates
		WHERE certificate_id = $1`, cert).Scan(&kept); err != nil || kept {
		t.Fatalf("the setup link stayed with the certificate after the notice took it: %v %v", kept, err)
	}
	h.Settle("notifier-mail", 10*time.Second)
	if n := len(h.SMTP.To(to)); n != 1 {
		t.Fatalf("%d mails for one notice", n)
	}
	raw := string(h.Ops("GET", "/ops/v1/deliveries?recipient="+to, nil).Body)
	if strings.Contains(raw, "ONE-CLICK") || strings.Contains(raw, "SETUP-SECRET") {
		t.Fatal("the delivery log shows a secret link")
	}
}

func keys(m map[string][2]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// NO-2, NO-4: the invoice of a new order (no notice) is its own mail, in
// English here, with the PDF.
func TestInvoiceMailForNewOrder_NO2_NO4(t *testing.T) {
	h := start(t, startOpts{})
	to, order := "buyer@example.com", newID()
	inv := invoiceFor(order, to, "en", nil, h.Clock.Now())
	env := h.Publish(inv, "")
	m := h.mailTo(t, to)
	if s := subjectOf(t, m); s != "Certlife: invoice "+inv.Number+" for your server certificate order" {
		t.Fatalf("subject %q", s)
	}
	for _, want := range []string{"Dear Hosuto Ichiro", "JPY 33,000", inv.PaymentReference, order, "T1234567890123"} {
		if !strings.Contains(m.Body, want) {
			t.Fatalf("invoice mail lacks %q:\n%s", want, m.Body)
		}
	}
	files := attachments(t, m)
	if f, ok := files[domain.InvoicePDFName(inv.Number)]; !ok || f[0] != "application/pdf" {
		t.Fatalf("attachments %v", keys(files))
	} else if text := testenv.PDFText(t, []byte(f[1])); !strings.Contains(text, inv.Number) {
		t.Fatalf("PDF text:\n%s", text)
	}
	testenv.Eventually(t, 10*time.Second, "the invoice logged", func() bool {
		d := h.deliveries(t, to, domain.ReasonInvoiceIssued)
		return len(d) == 1 && d[0].Status == "sent" && d[0].CausedBy == env.ID.String()
	})
}

// SV-1: a certificate imported long before its first notice gets a
// welcome mail with the setup link at once (and the link is not kept for
// the notice).
func TestImportedWelcomeMailWithSetupLink_SV1(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	cert, to := newID(), "later@example.co.jp"
	env := h.Publish(imported(cert, to, now.Add(200*day), h.sealTo(t, "https://portal.example/setup?t=WELCOME")), "")
	m := h.mailTo(t, to)
	noticeAt := now.Add(110 * day).In(time.FixedZone("JST", 9*3600)).Format("2006年1月2日")
	for _, want := range []string{"shop.example.co.jp", "setup?t=WELCOME", "90 日前", noticeAt} {
		if !strings.Contains(m.Body, want) {
			t.Fatalf("welcome mail lacks %q:\n%s", want, m.Body)
		}
	}
	h.waitHandled(t, "notifier-reminders", env)
	var kept bool
	if err := h.DB.QueryRow(context.Background(), `SELECT sealed_setup_link IS NOT NULL FROM notifier.certificates
		WHERE certificate_id = $1`, cert).Scan(&kept); err != nil || kept {
		t.Fatalf("setup link kept for the notice although it was mailed: %v %v", kept, err)
	}
	testenv.Eventually(t, 10*time.Second, "the welcome logged", func() bool {
		d := h.deliveries(t, to, domain.ReasonCertificateImported)
		return len(d) == 1 && d[0].Status == "sent" && !h.sealedLeft(t, d[0].MessageID)
	})
}

// SV-3, SV-4, NO-2: a paid order gets the application guidance: it names
// the order, says how to apply ("order": id, CSR requirements) and the
// automatic re-application; a client coupon's payment mails nothing.
func TestApplicationGuidanceAfterPayment_SV3_SV4(t *testing.T) {
	h := start(t, startOpts{})
	to, order := "paid@example.co.jp", newID()
	pc := events.PaymentConfirmed{Method: "card", Reference: "evt_1", OrderID: order, InvoiceID: "inv-" + order[:8],
		CustomerID: "customer-1", Amount: 33000, Currency: "JPY",
		Recipient: events.Recipient{Email: to, Language: "en", Name: "Hosuto Ichiro"}, PaidAt: h.Clock.Now()}
	env := h.Publish(pc, "")
	h.PublishAgain(env)
	m := h.mailTo(t, to)
	if s := subjectOf(t, m); !strings.Contains(s, "order "+order) || !strings.Contains(s, "how to apply") {
		t.Fatalf("guidance subject %q", s)
	}
	for _, want := range []string{`"order": "` + order + `"`, "POST /v1/applications", "RSA of at least 2048 bits",
		"P-256", "OU", "Automatic re-application", "previous application data and CSR", "JPY 33,000", "card"} {
		if !strings.Contains(m.Body, want) {
			t.Fatalf("guidance lacks %q:\n%s", want, m.Body)
		}
	}
	// An order its application placed: the payment's mail says the
	// application proceeds, not how to apply.
	placedBy, app := newID(), newID()
	h.waitHandled(t, "notifier-mail", h.Publish(events.OrderPlaced{OrderID: placedBy, CustomerID: "customer-1",
		Product: events.ProductServer, Kind: events.OrderKindNew, Source: events.OrderSourceApplication, TermMonths: 12,
		Recipient: pc.Recipient, ApplicationID: app, PlacedAt: h.Clock.Now()}, ""))
	pc2 := pc
	pc2.OrderID, pc2.Recipient.Email = placedBy, "applied@example.co.jp"
	h.Publish(pc2, "")
	m2 := h.mailTo(t, "applied@example.co.jp")
	if !strings.Contains(m2.Body, "Your application "+app+" for this order proceeds") || strings.Contains(m2.Body, "How to apply") {
		t.Fatalf("guidance for an order placed by its application:\n%s", m2.Body)
	}
	client := h.Publish(events.PaymentConfirmed{ApplicationID: newID(), Method: "coupon", Reference: "12345678-87654321"}, "")
	h.waitHandled(t, "notifier-mail", client)
	h.Settle("notifier-mail", 10*time.Second)
	if n := len(h.SMTP.Messages()); n != 2 {
		t.Fatalf("%d mails, want only the two guidance mails", n)
	}
	if d := h.deliveries(t, to, domain.ReasonApplicationGuidance); len(d) != 1 || d[0].SubjectID != order {
		t.Fatalf("delivery log %+v", d)
	}
}

// SV-2, NO-2: a declined renewal is confirmed with the advice of the
// event; a failed payment is mailed too.
func TestDeclinedAndPaymentFailedMails_SV2_NO2(t *testing.T) {
	h := start(t, startOpts{})
	now := h.Clock.Now().Truncate(time.Second)
	cert, to := newID(), "decline@example.co.jp"
	// Its notice is due at once: no welcome mail before the confirmation.
	h.waitHandled(t, "notifier-reminders", h.Publish(imported(cert, to, now.Add(89*day), nil), ""))
	advice := "ご利用中の「専用SSLプラン」は専用証明書が必要です。共有SSLプランへの変更をお申し込みください。"
	h.Publish(events.RenewalDeclined{CertificateID: cert, CustomerID: "customer-1", OrderID: "order-9",
		Recipient: events.Recipient{Email: to, Language: "ja", Name: "Hosuto Ichiro"}, Advice: advice, DeclinedAt: now}, "")
	m := h.mailTo(t, to)
	if s := subjectOf(t, m); !strings.Contains(s, "shop.example.co.jp") || !strings.Contains(s, "更新しない") {
		t.Fatalf("declined subject %q", s)
	}
	if !strings.Contains(m.Body, advice) || !strings.Contains(m.Body, "更新通知は、今後お送りいたしません") {
		t.Fatalf("declined mail:\n%s", m.Body)
	}

	payer := "card@example.com"
	h.Publish(events.PaymentFailed{InvoiceID: "inv-7", OrderID: "order-7", CustomerID: "customer-1",
		Reason: "card_declined", Recipient: events.Recipient{Email: payer, Language: "en"}}, "")
	m = h.mailTo(t, payer)
	if s := subjectOf(t, m); s != "Certlife: the card payment for order order-7 failed" ||
		!strings.Contains(m.Body, "card_declined") || !strings.Contains(m.Body, "inv-7") {
		t.Fatalf("payment failed mail %q:\n%s", s, m.Body)
	}
}

// SV-4, NO-2: an application the platform made itself after payment is
// announced as such — previous data and CSR, the cancel deadline —
// instead of the ordinary acceptance mail.
func TestAutoReappliedMail_SV4(t *testing.T) {
	h := start(t, startOpts{})
	to, id, prev := "auto@example.co.jp", newID(), newID()
	ap := application(id, to, "ja")
	ap.Product, ap.Kind, ap.PreviousCertificateID, ap.Coupon = events.ProductServer, events.KindRenewal, prev, ""
	ap.Server = &events.ServerApplication{CustomerID: "customer-1", OrderID: "order-42", TermMonths: 12,
		CSR: "-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n", CommonName: "www.example.co.jp",
		Domains: []string{"example.co.jp"}, DCV: events.DCVChoice{Method: events.DCVMethodDNS},
		TechnicalContact: events.Contact{Name: "Gijutsu Hanako", Email: "tech@example.co.jp"},
		Organization:     events.ServerOrganization{DUNS: "123456789", NameEn: "Example Hosting K.K."},
		RenewalOf:        prev, AutoReapplied: true}
	now := h.Clock.Now()
	env := h.Publish(events.ApplicationProvisional{Application: ap, AcceptedAt: now, CancelDeadline: now.Add(time.Hour)}, "")
	m := h.mailTo(t, to)
	if s := subjectOf(t, m); !strings.Contains(s, "自動") || !strings.Contains(s, "www.example.co.jp") {
		t.Fatalf("auto-reapplied subject %q", s)
	}
	for _, want := range []string{id, "order-42", prev, "www.example.co.jp、example.co.jp", "前回の申請内容と CSR", "キャンセル期限"} {
		if !strings.Contains(m.Body, want) {
			t.Fatalf("auto-reapplied mail lacks %q:\n%s", want, m.Body)
		}
	}
	h.waitHandled(t, "notifier-mail", env)
	if d := h.deliveries(t, to, ""); len(d) != 1 || d[0].Reason != domain.ReasonAutoReapplied {
		t.Fatalf("deliveries %+v, want only the auto-reapplied mail", d)
	}
}
