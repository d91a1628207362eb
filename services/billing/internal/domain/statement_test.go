package domain

import (
	"testing"

	"golang.org/x/text/encoding/japanese"

	"github.com/certlife/platform/pkg/errs"
)

// BI-3: a Japanese bank's Shift_JIS export with full-width digits and
// half-width katakana reads the same as its UTF-8 form.
func TestParseStatement_BI3_ShiftJISNormalised(t *testing.T) {
	ref := PaymentReference(7)
	fullWidth := ""
	for _, r := range ref {
		fullWidth += string(rune('０' + (r - '0')))
	}
	utf := "date,payer_name,amount,reference\n" +
		"2026/11/30,ｶ)ｻﾝﾌﾟﾙﾎｽﾃｨﾝｸﾞ,\"５２,８００\"," + fullWidth + "\n"
	sjis, err := japanese.ShiftJIS.NewEncoder().String(utf)
	if err != nil {
		t.Fatal(err)
	}
	for enc, raw := range map[string]string{"UTF-8": utf, "Shift_JIS": sjis} {
		st, err := ParseStatement([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		if st.Encoding != enc || len(st.Lines) != 1 {
			t.Fatalf("%s: %+v", enc, st)
		}
		l := st.Lines[0]
		if l.Amount != 52800 || l.Reference != ref || l.PayerName != "カ)サンプルホスティング" || l.Date.Format("2006-01-02") != "2026-11-30" {
			t.Errorf("%s: %+v", enc, l)
		}
	}
	a, _ := ParseStatement([]byte(utf))
	b, _ := ParseStatement([]byte(sjis))
	if a.Lines[0].Hash != b.Lines[0].Hash {
		t.Error("the same transfer hashes differently in UTF-8 and Shift_JIS")
	}
}

func TestParseStatement_BI3_ReferenceInPayerName(t *testing.T) {
	ref := PaymentReference(8)
	st, err := ParseStatement([]byte("date,payer_name,amount,reference\n2026-11-30," + ref + " ｻﾝﾌﾟﾙ,1000,\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines[0].Reference != ref {
		t.Errorf("reference %q, want %s", st.Lines[0].Reference, ref)
	}
}

func TestParseStatement_BI3_TwoIdenticalTransfersAreTwo(t *testing.T) {
	st, err := ParseStatement([]byte("date,payer_name,amount,reference\n2026-11-30,A,1000,1\n2026-11-30,A,1000,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Lines[0].Hash == st.Lines[1].Hash {
		t.Error("two transfers in one statement share a hash")
	}
}

func TestParseStatement_BI3_Malformed(t *testing.T) {
	for name, c := range map[string]struct {
		raw  string
		kind errs.Kind
	}{
		"empty":          {"", errs.KindMalformed},
		"wrong header":   {"date,name,amount\n2026-11-30,A,1,2\n", errs.KindInvalid},
		"header only":    {"date,payer_name,amount,reference\n", errs.KindInvalid},
		"bad date":       {"date,payer_name,amount,reference\n30/11/2026,A,1,2\n", errs.KindInvalid},
		"bad amount":     {"date,payer_name,amount,reference\n2026-11-30,A,12.5,2\n", errs.KindInvalid},
		"negative":       {"date,payer_name,amount,reference\n2026-11-30,A,-100,2\n", errs.KindInvalid},
		"no payer":       {"date,payer_name,amount,reference\n2026-11-30,,100,2\n", errs.KindInvalid},
		"fields":         {"date,payer_name,amount,reference\n2026-11-30,A,100\n", errs.KindInvalid},
		"unquoted quote": {"date,payer_name,amount,reference\n2026-11-30,\"A,100,1\n", errs.KindMalformed},
		"not text":       {"\xff\xfe\x00\x01\x80\x81", errs.KindMalformed},
	} {
		_, err := ParseStatement([]byte(c.raw))
		if !errs.Is(err, c.kind) {
			t.Errorf("%s: %v, want kind %v", name, err, c.kind)
		}
	}
}

func TestMatch_BI3(t *testing.T) {
	open := MatchInvoice{Status: InvoiceOpen, Currency: "JPY", Total: 52800}
	for name, c := range map[string]struct {
		amount  int64
		inv     MatchInvoice
		found   bool
		outcome string
		kind    string
	}{
		"exact":       {52800, open, true, OutcomeMatched, ""},
		"partial":     {50000, open, true, OutcomePartial, ExceptionPartial},
		"overpayment": {60000, open, true, OutcomeUnmatched, ExceptionOverpayment},
		"unknown":     {52800, MatchInvoice{}, false, OutcomeUnmatched, ExceptionUnmatched},
		"paid":        {52800, MatchInvoice{Status: InvoicePaid, Currency: "JPY", Total: 52800}, true, OutcomeUnmatched, ExceptionAlreadyPaid},
		"usd":         {52800, MatchInvoice{Status: InvoiceOpen, Currency: "USD", Total: 52800}, true, OutcomeUnmatched, ExceptionCurrencyMismatch},
	} {
		o, k := Match(StatementLine{Amount: c.amount}, c.inv, c.found)
		if o != c.outcome || k != c.kind {
			t.Errorf("%s: %s/%s, want %s/%s", name, o, k, c.outcome, c.kind)
		}
	}
}
