package main

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// Issue 8 end to end through the HTTP API of the all-in-one (SV-1, SV-2,
// SV-3, BI-2, BI-3, BI-4): the operator prices the server product and
// imports a certificate bought elsewhere expiring in 89 days with its
// customer; on the injected clock the renewal notice comes with the
// invoice PDF attached (registration number, tax, total); the customer
// sets a password with the mail's one-time link, the signed card webhook
// pays the invoice, the guidance mail names the order and the customer
// applies for it → 202. A second order is paid by a bank statement
// carrying its payment reference.
func TestServerOrderEndToEnd_SV1_SV2_SV3_BI2_BI3_BI4(t *testing.T) {
	e := startE2E(t, func(c *app.Config) { c.WebhookSecret = e2eWebhookSecret }, nil)
	e.setPrices()

	email := "hosting@example.co.jp"
	now := e.p.Clock.Now()
	cn := "www.hosting-e2e.example"
	certID, customerID := e.importCertificate(boughtElsewhere(t, cn, nil, now.AddDate(0, 0, -300), now.AddDate(0, 0, 89)), email)

	// The notice of an imported certificate is due 90 days ahead: the
	// reminder timers run on the injected clock.
	e.advance("1h")
	notice := e.waitMail(email, "renewal notice and invoice")
	text := testenv.PDFText(t, attachment(t, notice, "application/pdf"))
	for _, want := range []string{app.DevInvoiceRegistrationNumber, "4,800", "52,800"} {
		if !strings.Contains(text, want) {
			t.Errorf("the invoice PDF does not state %q:\n%s", want, text)
		}
	}
	tok := e.setPassword(notice, email)

	renewal := e.waitOrder(tok, "the renewal order of the notice", func(o serverOrder) bool {
		return o.RenewalOf == certID && o.InvoiceID != ""
	})
	if renewal.Kind != "renewal" {
		t.Errorf("notice order %+v", renewal)
	}
	inv := e.invoice(tok, renewal.InvoiceID)
	if inv.RegistrationNumber != app.DevInvoiceRegistrationNumber || inv.Tax != 4800 || inv.Total != serverPriceTotal ||
		inv.Currency != "JPY" || inv.Status != "open" || !strings.Contains(notice.Body, inv.Number) {
		t.Fatalf("invoice %+v", inv)
	}
	e.payByCard(inv)
	e.waitMail(email, "payment received for order "+renewal.ID)
	paid := e.order(tok, renewal.ID)
	if paid.Status != "awaiting_application" {
		t.Errorf("paid order: %+v", paid)
	}

	r := e.do("POST", "/v1/applications", serverApplicationBody(renewal.ID, serverCSR(t, serverDN, cn, p256(t)), email,
		nil, "dns"), "Authorization", "Bearer "+tok)
	if r.Status != 202 {
		t.Fatalf("renewal application: %d %s", r.Status, r.Body)
	}
	var a struct {
		ID string `json:"id"`
	}
	r.JSON(t, &a)
	prov, err := events.Decode[events.ApplicationProvisional](e.waitEvent(events.TypeApplicationProvisional, a.ID))
	if err != nil || prov.Application.Server == nil || prov.Application.Server.OrderID != renewal.ID || prov.Application.Kind != "renewal" {
		t.Fatalf("ApplicationProvisional %+v %v", prov, err)
	}
	// SV-11: the remaining validity is carried over; the coverage ends
	// at the previous end + the term.
	expires := now.AddDate(0, 0, 89).Truncate(time.Second).UTC()
	if o := e.order(tok, renewal.ID); o.ApplicationID != a.ID || o.Kind != "renewal" || o.CarryOverDays == nil ||
		*o.CarryOverDays != 88 || o.CoverageEnd == nil || !o.CoverageEnd.Equal(expires.AddDate(0, 12, 0)) {
		t.Errorf("order after the application: %+v (coverage end %v, want %v)", o, o.CoverageEnd, expires.AddDate(0, 12, 0))
	}

	// A second order, a new certificate, paid by bank transfer (BI-3).
	r = e.do("POST", "/v1/applications", serverApplicationBody("", serverCSR(t, serverDN, "shop.hosting-e2e.example", p256(t)), email,
		nil, "dns"), "Authorization", "Bearer "+tok)
	if r.Status != 202 {
		t.Fatalf("new application: %d %s", r.Status, r.Body)
	}
	second := e.waitOrder(tok, "the second order's invoice", func(o serverOrder) bool {
		return o.ID != renewal.ID && o.InvoiceID != ""
	})
	inv2 := e.invoice(tok, second.InvoiceID)
	if inv2.PaymentReference == "" || inv2.Total != serverPriceTotal {
		t.Fatalf("second invoice %+v", inv2)
	}
	csv := "date,payer_name,amount,reference\n" + now.Format("2006-01-02") + ",ｾﾙﾄﾗｲﾌﾎｽﾃｨﾝｸﾞ,５２８００," + inv2.PaymentReference + "\n"
	r = e.ops("POST", "/ops/v1/bank-statements", csv, "Content-Type", "text/csv")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"outcome":"matched"`) {
		t.Fatalf("statement: %d %s", r.Status, r.Body)
	}
	pc, err := events.Decode[events.PaymentConfirmed](e.waitEvent(events.TypePaymentConfirmed, second.ID))
	if err != nil || pc.Method != "bank_transfer" || pc.CustomerID != customerID {
		t.Fatalf("PaymentConfirmed %+v %v", pc, err)
	}
	if v := e.invoice(tok, inv2.ID); v.Status != "paid" {
		t.Errorf("invoice after the transfer: %+v", v)
	}
	// One notice per cycle (NO-3: never sent twice), however the clock
	// moved and the services worked on since.
	n := 0
	for _, m := range e.smtp.To(email) {
		if strings.Contains(mailSubject(m), "renewal notice") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d renewal notices", n)
	}
	// The same statement again applies nothing twice.
	r = e.ops("POST", "/ops/v1/bank-statements", csv, "Content-Type", "text/csv")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"outcome":"duplicate"`) {
		t.Errorf("statement again: %d %s", r.Status, r.Body)
	}
}

// SV-1, BI-4 in Japanese: a customer whose language is ja gets the
// notice in Japanese with the invoice PDF in Japanese (registration
// number, consumption tax, total in yen).
func TestServerNoticeInJapanese_SV1_BI4(t *testing.T) {
	e := startE2E(t, nil, nil)
	e.setPrices()
	email := "ja-hosting@example.co.jp"
	now := e.p.Clock.Now()
	e.importCertificateIn(boughtElsewhere(t, "www.ja-e2e.example", nil, now.AddDate(0, 0, -300), now.AddDate(0, 0, 89)), email, "ja")
	e.advance("1h")
	var notice testenv.Mail
	testenv.Eventually(t, 45*time.Second, "the notice with its invoice", func() bool {
		for _, m := range e.smtp.To(email) {
			if strings.Contains(string(m.Raw), "application/pdf") {
				notice = m
				return true
			}
		}
		return false
	})
	if !strings.Contains(notice.Body, "請求書") {
		t.Errorf("the notice is not in Japanese:\n%s", notice.Body)
	}
	text := testenv.PDFText(t, attachment(t, notice, "application/pdf"))
	for _, want := range []string{"請求書", "登録番号", app.DevInvoiceRegistrationNumber, "消費税", "4,800", "52,800"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Japanese invoice PDF does not state %q:\n%s", want, text)
		}
	}
}
