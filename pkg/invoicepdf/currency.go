package invoicepdf

import (
	"strconv"
	"strings"
)

// minorUnits is the ISO 4217 exponent of the currencies an invoice may be
// in (BI-4: amounts are integer minor units; JPY has none).
var minorUnits = map[string]int{
	"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0,
	"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2,
	"SGD": 2, "HKD": 2, "TWD": 2, "CNY": 2, "THB": 2, "MYR": 2, "PHP": 2,
	"IDR": 2, "INR": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
	"MXN": 2, "BRL": 2, "ZAR": 2,
	"BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}

// CurrencyExponent answers the ISO 4217 minor-unit exponent of an
// invoice currency (JPY 0, USD 2, KWD 3), and whether the currency is
// one this package knows: an ISO 4217 code outside the list is refused
// rather than guessed.
func CurrencyExponent(code string) (int, bool) {
	e, ok := minorUnits[code]
	return e, ok
}

// FormatAmount writes minor units as the currency's major units with
// thousands separators: 13200 JPY → "13,200", 123456 USD → "1,234.56".
func FormatAmount(minor int64, currency string) string {
	exp, ok := minorUnits[currency]
	if !ok {
		exp = 0
	}
	neg := minor < 0
	if neg {
		minor = -minor
	}
	s := strconv.FormatInt(minor, 10)
	var frac string
	if exp > 0 {
		for len(s) <= exp {
			s = "0" + s
		}
		frac = "." + s[len(s)-exp:]
		s = s[:len(s)-exp]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String() + frac
	if neg {
		out = "-" + out
	}
	return out
}
