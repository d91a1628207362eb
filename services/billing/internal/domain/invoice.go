package domain

// Invoices (BI-4, Japan's qualified invoice rules): prices per product and
// term in integer minor units of an ISO 4217 currency, the tax computed
// once per rate per invoice and rounded down, the invoice number and the
// payment reference a bank transfer quotes (BI-3).

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/invoicepdf"
)

// Invoice states. awaiting_price: the order has no price yet, so its
// invoice waits for an operator (never a silent 0); open: issued, to be
// paid; paid; refunded (after a payment).
const (
	InvoiceAwaitingPrice = "awaiting_price"
	InvoiceOpen          = "open"
	InvoicePaid          = "paid"
	InvoiceRefunded      = "refunded"
	InvoiceVoid          = "void" // the order was cancelled before it was paid
)

// Payment methods of PaymentConfirmed for invoices.
const (
	MethodCard         = "card"
	MethodBankTransfer = "bank_transfer"
)

// Price is one entry of the price list: what a product for a term costs,
// before tax, in minor units of Currency.
type Price struct {
	Product    string `json:"product"`
	TermMonths int    `json:"term_months"`
	Currency   string `json:"currency"`
	Amount     int64  `json:"amount"`
	TaxRate    int    `json:"tax_rate"`
}

// MaxPrices bounds a price list.
const MaxPrices = 200

var productName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// CheckPrices validates a whole price list (BI-4): every field per entry,
// one entry per product and term. It answers an errs.KindInvalid error
// naming each bad field by its JSON path.
func CheckPrices(prices []Price) error {
	var fields []errs.Field
	bad := func(i int, name, msg string) {
		fields = append(fields, errs.Field{Name: fmt.Sprintf("prices[%d].%s", i, name), Message: msg})
	}
	if len(prices) > MaxPrices {
		return errs.InvalidField("prices", fmt.Sprintf("at most %d entries", MaxPrices))
	}
	seen := map[string]int{}
	for i, p := range prices {
		if !productName.MatchString(p.Product) {
			bad(i, "product", "a product name: lower-case letters, digits, - or _")
		}
		if p.TermMonths < 1 || p.TermMonths > 120 {
			bad(i, "term_months", "between 1 and 120")
		}
		if _, ok := invoicepdf.CurrencyExponent(p.Currency); !ok {
			bad(i, "currency", "an ISO 4217 currency code we invoice in (e.g. JPY, USD, EUR)")
		}
		if p.Amount <= 0 || p.Amount > 1_000_000_000_000 {
			bad(i, "amount", "a positive integer in the currency's minor units (JPY has none)")
		}
		if p.TaxRate < 0 || p.TaxRate > 100 {
			bad(i, "tax_rate", "a percentage between 0 and 100")
		}
		key := p.Product + "/" + strconv.Itoa(p.TermMonths)
		if j, dup := seen[key]; dup {
			bad(i, "term_months", fmt.Sprintf("product %s for %d months is already priced by prices[%d]", p.Product, p.TermMonths, j))
		}
		seen[key] = i
	}
	if len(fields) > 0 {
		return errs.Invalid(fields...)
	}
	return nil
}

// Taxes computes the tax once per rate over the whole invoice, rounded
// down (Japan's qualified invoice rules: one rounding per rate per
// invoice, never per line), and the invoice's sums.
func Taxes(lines []events.InvoiceLine) (taxes []events.TaxSummary, subtotal, tax int64) {
	byRate := map[int]int64{}
	for _, l := range lines {
		byRate[l.TaxRate] += l.Amount
		subtotal += l.Amount
	}
	for rate, taxable := range byRate {
		t := taxable * int64(rate) / 100 // floor: amounts are never negative
		taxes = append(taxes, events.TaxSummary{Rate: rate, Taxable: taxable, Tax: t})
		tax += t
	}
	sort.Slice(taxes, func(i, j int) bool { return taxes[i].Rate > taxes[j].Rate })
	return taxes, subtotal, tax
}

// OrderLine is the invoice line an order buys, in the recipient's language.
func OrderLine(o events.OrderPlaced, p Price, language string) events.InvoiceLine {
	var d string
	if language == "ja" {
		d = fmt.Sprintf("SSLサーバー証明書（OV）%dか月", o.TermMonths)
		if o.Kind == events.OrderKindRenewal {
			d += " 更新"
		}
	} else {
		d = fmt.Sprintf("OV TLS server certificate, %d months", o.TermMonths)
		if o.Kind == events.OrderKindRenewal {
			d += ", renewal"
		}
	}
	if o.CommonName != "" {
		d += " (" + o.CommonName + ")"
	}
	return events.InvoiceLine{Description: d, Quantity: 1, UnitPrice: p.Amount, Amount: p.Amount, TaxRate: p.TaxRate}
}

// jst: invoice numbers carry the Japanese calendar month.
var jst = time.FixedZone("JST", 9*60*60)

// InvoiceNumber is "INV-YYYYMM-NNNNNN": the month of issue (JST) and the
// invoice sequence, unique because the sequence is.
func InvoiceNumber(issued time.Time, seq int64) string {
	return fmt.Sprintf("INV-%s-%06d", issued.In(jst).Format("200601"), seq)
}

// PaymentReference is the number a bank transfer quotes (BI-3): the
// invoice sequence on 9 digits and a Luhn check digit, so that a mistyped
// reference is not matched to another invoice.
func PaymentReference(seq int64) string {
	s := fmt.Sprintf("%09d", seq)
	return s + strconv.Itoa(luhnDigit(s))
}

// ValidPaymentReference checks the shape and check digit of a reference.
func ValidPaymentReference(s string) bool {
	if len(s) != 10 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	return luhnDigit(s[:9]) == int(s[9]-'0')
}

func luhnDigit(s string) int {
	sum := 0
	double := true // the digit left of the check digit is doubled
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10 - sum%10) % 10
}

// ValidRegistrationNumber checks a qualified invoice issuer's registration
// number: "T" and a 13-digit corporate number whose check digit holds
// (SPEC §5, PC-1: the first digit is 9 − (Σ Pₙ·Qₙ mod 9) over the other
// twelve digits Pₙ counted from the right, Qₙ = 1 for odd n, 2 for even n).
func ValidRegistrationNumber(s string) bool {
	if len(s) != 14 || s[0] != 'T' || strings.Trim(s[1:], "0123456789") != "" {
		return false
	}
	c := s[1:]
	sum := 0
	for n := 1; n <= 12; n++ {
		q := 1
		if n%2 == 0 {
			q = 2
		}
		sum += int(c[13-n]-'0') * q
	}
	return int(c[0]-'0') == 9-sum%9
}
