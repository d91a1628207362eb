package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// Japan's qualified invoice rules: the tax is computed once per rate over
// the invoice and rounded down, never per line (BI-4).
func TestTaxes_BI4_OncePerRateFloor(t *testing.T) {
	lines := []events.InvoiceLine{
		{Amount: 999, TaxRate: 10}, {Amount: 999, TaxRate: 10}, // per line 99+99=198; once: floor(199.8)=199
		{Amount: 1005, TaxRate: 8},
	}
	taxes, subtotal, tax := Taxes(lines)
	if subtotal != 3003 || tax != 199+80 {
		t.Fatalf("subtotal %d tax %d, want 3003 and 279", subtotal, tax)
	}
	if len(taxes) != 2 || taxes[0] != (events.TaxSummary{Rate: 10, Taxable: 1998, Tax: 199}) ||
		taxes[1] != (events.TaxSummary{Rate: 8, Taxable: 1005, Tax: 80}) {
		t.Fatalf("taxes %+v", taxes)
	}
}

func TestCheckPrices_BI4(t *testing.T) {
	good := Price{Product: "server", TermMonths: 12, Currency: "JPY", Amount: 48000, TaxRate: 10}
	if err := CheckPrices([]Price{good, {Product: "server", TermMonths: 24, Currency: "USD", Amount: 59900, TaxRate: 10}}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		p     []Price
		field string
	}{
		"lower-case currency": {[]Price{{Product: "server", TermMonths: 12, Currency: "jpy", Amount: 1, TaxRate: 10}}, "prices[0].currency"},
		"not ISO 4217":        {[]Price{{Product: "server", TermMonths: 12, Currency: "YEN", Amount: 1, TaxRate: 10}}, "prices[0].currency"},
		"zero amount":         {[]Price{{Product: "server", TermMonths: 12, Currency: "JPY", Amount: 0, TaxRate: 10}}, "prices[0].amount"},
		"negative tax":        {[]Price{{Product: "server", TermMonths: 12, Currency: "JPY", Amount: 1, TaxRate: -1}}, "prices[0].tax_rate"},
		"no term":             {[]Price{{Product: "server", Currency: "JPY", Amount: 1, TaxRate: 10}}, "prices[0].term_months"},
		"bad product":         {[]Price{{Product: "Server!", TermMonths: 12, Currency: "JPY", Amount: 1, TaxRate: 10}}, "prices[0].product"},
		"twice":               {[]Price{good, good}, "prices[1].term_months"},
	} {
		err := CheckPrices(c.p)
		e, ok := errs.As(err)
		if !ok || e.Kind != errs.KindInvalid || len(e.Fields) == 0 || e.Fields[0].Name != c.field {
			t.Errorf("%s: %v, want a 422 on %s", name, err, c.field)
		}
	}
}

func TestInvoiceNumberAndReference_BI3(t *testing.T) {
	at := time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC) // 1 December in Japan
	if got := InvoiceNumber(at, 42); got != "INV-202612-000042" {
		t.Errorf("number %s", got)
	}
	for seq := int64(1); seq < 3000; seq += 7 {
		ref := PaymentReference(seq)
		if !ValidPaymentReference(ref) {
			t.Fatalf("reference %s does not validate", ref)
		}
		// Any single mistyped digit is caught by the check digit.
		for i := 0; i < len(ref); i++ {
			b := []byte(ref)
			b[i] = '0' + (b[i]-'0'+3)%10
			if ValidPaymentReference(string(b)) {
				t.Fatalf("%s (from %s) validates", b, ref)
			}
		}
	}
	for _, bad := range []string{"", "123", "12345678901", "00000000a0"} {
		if ValidPaymentReference(bad) {
			t.Errorf("%q validates", bad)
		}
	}
}

// The registration number is T and a corporate number with the check
// digit of SPEC §5 (PC-1).
func TestRegistrationNumber_BI4(t *testing.T) {
	for _, ok := range []string{"T4010001012345", "T7000012050002"} {
		if !ValidRegistrationNumber(ok) {
			t.Errorf("%s refused", ok)
		}
	}
	for _, bad := range []string{"4010001012345", "T5010001012345", "T401000101234", "t4010001012345", "T40100010123456", "TX010001012345"} {
		if ValidRegistrationNumber(bad) {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestOrderLine(t *testing.T) {
	o := events.OrderPlaced{TermMonths: 12, Kind: events.OrderKindRenewal, CommonName: "www.example.jp"}
	l := OrderLine(o, Price{Amount: 48000, TaxRate: 10}, "ja")
	if l.Amount != 48000 || l.Quantity != 1 || !strings.Contains(l.Description, "更新") || !strings.Contains(l.Description, "www.example.jp") {
		t.Errorf("%+v", l)
	}
}
