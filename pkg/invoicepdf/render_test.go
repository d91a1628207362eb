package invoicepdf

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/testenv"

	"github.com/certlife/platform/pkg/events"
)

func sample() events.InvoiceIssued {
	issued := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	return events.InvoiceIssued{
		InvoiceID: "0193a0b0-0000-7000-8000-000000000001", Number: "INV-202611-000042",
		PaymentReference: "10000426", OrderID: "o1", CustomerID: "c1",
		Recipient:        events.Recipient{Email: "taro@example.co.jp", Language: "ja", Name: "辺利 太郎"},
		OrganizationName: "株式会社サンプルホスティング",
		Currency:         "JPY",
		Lines: []events.InvoiceLine{{Description: "サーバー証明書 OV 12か月 (www.example.co.jp)", Quantity: 1,
			UnitPrice: 48000, Amount: 48000, TaxRate: 10}},
		Taxes:    []events.TaxSummary{{Rate: 10, Taxable: 48000, Tax: 4800}},
		Subtotal: 48000, Tax: 4800, Total: 52800,
		RegistrationNumber: "T4010001012345", IssuerName: "サーティライフ株式会社",
		BankAccount: "三菱UFJ銀行 八重洲通支店 普通 1234567 サーティライフ（カ",
		IssuedAt:    issued, DueAt: issued.AddDate(0, 0, 30),
	}
}

// The PDF a person prints states the qualified-invoice registration
// number, the tax per rate and the total, in Japanese (BI-4, SV-1).
func TestRender_BI4_JapaneseStatesRegistrationTaxTotal(t *testing.T) {
	pdf, err := Render(sample(), "ja")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", pdf[:16])
	}
	if len(pdf) > 400_000 {
		t.Errorf("PDF is %d bytes: the font is not subset", len(pdf))
	}
	text := testenv.PDFText(t, pdf)
	for _, want := range []string{"請求書", "T4010001012345", "INV-202611-000042", "10000426",
		"消費税（10%）", "4,800 円", "52,800 円", "2026年11月30日", "2026年12月30日",
		"株式会社サンプルホスティング", "サーティライフ株式会社", "登録番号", "振込依頼人名"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Japanese PDF does not say %q:\n%s", want, text)
		}
	}
}

func TestRender_BI4_EnglishStatesRegistrationTaxTotal(t *testing.T) {
	inv := sample()
	inv.Currency = "USD"
	inv.Lines[0] = events.InvoiceLine{Description: "OV server certificate, 12 months", Quantity: 1, UnitPrice: 32000, Amount: 32000, TaxRate: 10}
	inv.Taxes = []events.TaxSummary{{Rate: 10, Taxable: 32000, Tax: 3200}}
	inv.Subtotal, inv.Tax, inv.Total = 32000, 3200, 35200
	pdf, err := Render(inv, "en")
	if err != nil {
		t.Fatal(err)
	}
	text := testenv.PDFText(t, pdf)
	for _, want := range []string{"Invoice", "Registration number", "T4010001012345", "Consumption tax (10%)",
		"USD 320.00", "USD 32.00", "USD 352.00", "30 November 2026", "Payment reference", "10000426"} {
		if !strings.Contains(text, want) {
			t.Errorf("the English PDF does not say %q:\n%s", want, text)
		}
	}
}

func TestRender_RefusesUnknownCurrencyAndNoLines(t *testing.T) {
	inv := sample()
	inv.Currency = "XXY"
	if _, err := Render(inv, "ja"); err == nil {
		t.Error("an unknown currency rendered")
	}
	inv = sample()
	inv.Lines = nil
	if _, err := Render(inv, "en"); err == nil {
		t.Error("an invoice without lines rendered")
	}
}

func TestFormatAmount_BI4(t *testing.T) {
	for _, c := range []struct {
		minor int64
		cur   string
		want  string
	}{{0, "JPY", "0"}, {52800, "JPY", "52,800"}, {1234567, "JPY", "1,234,567"}, {5, "USD", "0.05"},
		{123456, "USD", "1,234.56"}, {1000, "KWD", "1.000"}, {-4800, "JPY", "-4,800"}} {
		if got := FormatAmount(c.minor, c.cur); got != c.want {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", c.minor, c.cur, got, c.want)
		}
	}
}

// BenchmarkRender: one Japanese invoice PDF (the font is parsed and
// subset on every call).
func BenchmarkRender(b *testing.B) {
	inv := sample()
	var size int
	for b.Loop() {
		pdf, err := Render(inv, "ja")
		if err != nil {
			b.Fatal(err)
		}
		size = len(pdf)
	}
	b.ReportMetric(float64(size), "bytes/pdf")
}
