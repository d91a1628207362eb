package domain

// Bank statements (BI-3): an operator uploads the bank's export as CSV
// date,payer_name,amount,reference. Japanese banks export Shift_JIS as
// often as UTF-8, with full-width digits and half-width katakana: the file
// is decoded and every field normalised (NFKC) before anything is
// compared. Each line is matched to an open invoice by reference and
// amount, or waits for an operator; nothing is applied blindly.

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/unicode/norm"

	"github.com/certlife/platform/pkg/errs"
)

// StatementHeader is the required first line of a statement.
var StatementHeader = []string{"date", "payer_name", "amount", "reference"}

// MaxStatementLines bounds one statement.
const MaxStatementLines = 20000

// Line outcomes (BI-3).
const (
	OutcomeMatched   = "matched"   // applied: the invoice is paid
	OutcomeUnmatched = "unmatched" // no open invoice fits: listed for an operator
	OutcomePartial   = "partial"   // the invoice's reference, less than its total: listed
	OutcomeDuplicate = "duplicate" // a line seen in an earlier statement: nothing done
)

// Exception kinds: why a payment waits for an operator (BI-2, BI-3).
const (
	ExceptionUnmatched        = "unmatched"               // no invoice for the reference
	ExceptionPartial          = "partial"                 // less than the total
	ExceptionOverpayment      = "overpayment"             // more than the total
	ExceptionAlreadyPaid      = "already_paid"            // a second payment of a paid invoice
	ExceptionAmountMismatch   = "amount_mismatch"         // card: not the invoice's amount
	ExceptionCurrencyMismatch = "currency_mismatch"       // card: not the invoice's currency
	ExceptionUnknownInvoice   = "unknown_invoice"         // card: no such invoice number
	ExceptionRefund           = "refund"                  // card: a refund after payment
	ExceptionNotIssued        = "not_issued"              // the invoice is not issued yet (awaiting price)
	ExceptionVoid             = "void"                    // the invoice was voided: its order was cancelled
	ExceptionCancelledPaid    = "cancelled_after_payment" // a paid order was cancelled: refund it
)

// StatementLine is one normalised line of a statement.
type StatementLine struct {
	Line      int // 1-based line of the file (the header is line 1)
	Date      time.Time
	PayerName string // NFKC: full-width katakana, ASCII digits and letters
	Amount    int64  // yen (the statement's currency is the account's, JPY)
	Reference string // the payment reference, digits only, when one is found
	// Hash identifies the line across statements: the same transfer in
	// two uploads (or in overlapping exports) is a duplicate, not paid twice.
	Hash string
}

// Statement is a decoded statement.
type Statement struct {
	Encoding string // "UTF-8" or "Shift_JIS"
	Lines    []StatementLine
}

// DecodeStatement turns raw bytes into UTF-8: UTF-8 (a BOM is dropped)
// when the bytes are valid UTF-8, else Shift_JIS; bytes that are neither
// are malformed.
func DecodeStatement(raw []byte) (string, string, error) {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if utf8.Valid(raw) {
		return string(raw), "UTF-8", nil
	}
	out, err := japanese.ShiftJIS.NewDecoder().Bytes(raw)
	if err != nil || !utf8.Valid(out) || bytes.ContainsRune(out, utf8.RuneError) {
		return "", "", errs.Malformed("the statement is neither UTF-8 nor Shift_JIS")
	}
	return string(out), "Shift_JIS", nil
}

// Normalize folds a field to NFKC (full-width digits and letters to ASCII,
// half-width katakana to full-width, compatibility characters to their
// plain form) and trims and collapses spaces.
func Normalize(s string) string {
	s = norm.NFKC.String(s)
	return strings.Join(strings.Fields(s), " ")
}

// ParseStatement reads a statement. Any bad line makes the whole file a
// 422 naming each bad line ("lines[N]"), and then nothing is applied: a
// statement is applied whole or not at all.
func ParseStatement(raw []byte) (Statement, error) {
	text, enc, err := DecodeStatement(raw)
	if err != nil {
		return Statement{}, err
	}
	st := Statement{Encoding: enc}
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return st, errs.Malformed("the statement is empty")
	}
	if err != nil {
		return st, errs.Malformed("malformed CSV: " + err.Error())
	}
	if !statementHeader(head) {
		return st, errs.InvalidField("header", "the first line must be the header "+strings.Join(StatementHeader, ","))
	}
	var bad []errs.Field
	seen := map[string]int{}
	for n := 2; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, errs.Malformed(fmt.Sprintf("malformed CSV at line %d: %v", n, err))
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(st.Lines)+len(bad) >= MaxStatementLines {
			return st, errs.InvalidField("lines", fmt.Sprintf("at most %d lines", MaxStatementLines))
		}
		l, err := parseStatementLine(n, rec)
		if err != nil {
			bad = append(bad, errs.Field{Name: fmt.Sprintf("lines[%d]", n), Message: err.Error()})
			continue
		}
		// Two identical transfers in one statement are two payments: the
		// occurrence number is part of the line's identity.
		key := l.Date.Format(time.DateOnly) + "\x00" + l.PayerName + "\x00" + strconv.FormatInt(l.Amount, 10) + "\x00" + l.Reference
		seen[key]++
		sum := sha256.Sum256([]byte(key + "\x00" + strconv.Itoa(seen[key])))
		l.Hash = hex.EncodeToString(sum[:])
		st.Lines = append(st.Lines, l)
	}
	if len(bad) > 0 {
		return st, errs.Invalid(bad...)
	}
	if len(st.Lines) == 0 {
		return st, errs.InvalidField("lines", "the statement has a header and no lines")
	}
	return st, nil
}

func statementHeader(rec []string) bool {
	if len(rec) != len(StatementHeader) {
		return false
	}
	for i, h := range StatementHeader {
		if strings.ToLower(Normalize(rec[i])) != h {
			return false
		}
	}
	return true
}

var dateLayouts = []string{"2006-01-02", "2006/01/02", "2006/1/2", "20060102", "2006.01.02"}

func parseStatementLine(n int, rec []string) (StatementLine, error) {
	if len(rec) != 4 {
		return StatementLine{}, fmt.Errorf("%d fields, want 4: date,payer_name,amount,reference", len(rec))
	}
	l := StatementLine{Line: n}
	date := Normalize(rec[0])
	var err error
	for _, layout := range dateLayouts {
		if l.Date, err = time.ParseInLocation(layout, date, jst); err == nil {
			break
		}
	}
	if err != nil {
		return l, fmt.Errorf("date %q is not YYYY-MM-DD", date)
	}
	l.PayerName = Normalize(rec[1])
	if l.PayerName == "" || utf8.RuneCountInString(l.PayerName) > 200 {
		return l, errors.New("payer_name is required (at most 200 characters)")
	}
	amount := strings.NewReplacer(",", "", "円", "", "¥", "", "\\", "", " ", "").Replace(Normalize(rec[2]))
	if l.Amount, err = strconv.ParseInt(amount, 10, 64); err != nil || l.Amount <= 0 || l.Amount > 1_000_000_000_000 {
		return l, fmt.Errorf("amount %q is not a positive whole number of yen", Normalize(rec[2]))
	}
	l.Reference = findReference(Normalize(rec[3]))
	if l.Reference == "" {
		// Many transfers carry the reference before the payer's name
		// (the invoice asks for it there).
		l.Reference = findReference(l.PayerName)
	}
	if len(rec[3]) > 200 {
		return l, errors.New("reference is longer than 200 characters")
	}
	return l, nil
}

// findReference picks the first run of digits (spaces and hyphens inside
// allowed) that is a valid payment reference; else the first run of
// digits at all, so that the line still names what it quoted.
func findReference(s string) string {
	var runs []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			runs = append(runs, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			cur.WriteRune(r)
		case (r == '-' || r == ' ') && cur.Len() > 0:
		case unicode.IsSpace(r):
			flush()
		default:
			flush()
		}
	}
	flush()
	for _, r := range runs {
		if ValidPaymentReference(r) {
			return r
		}
	}
	if len(runs) > 0 && len(runs[0]) <= 32 {
		return runs[0]
	}
	return ""
}

// Match decides a statement line against the invoice its reference names
// (found false when none): matched only when the invoice is open, in yen
// and the amount is its total.
func Match(l StatementLine, inv MatchInvoice, found bool) (outcome, exception string) {
	switch {
	case !found:
		return OutcomeUnmatched, ExceptionUnmatched
	case inv.Status == InvoicePaid || inv.Status == InvoiceRefunded:
		return OutcomeUnmatched, ExceptionAlreadyPaid
	case inv.Status == InvoiceVoid:
		return OutcomeUnmatched, ExceptionVoid
	case inv.Status != InvoiceOpen:
		return OutcomeUnmatched, ExceptionNotIssued
	case inv.Currency != "JPY":
		return OutcomeUnmatched, ExceptionCurrencyMismatch
	case l.Amount < inv.Total:
		return OutcomePartial, ExceptionPartial
	case l.Amount > inv.Total:
		return OutcomeUnmatched, ExceptionOverpayment
	}
	return OutcomeMatched, ""
}

// MatchInvoice is what matching needs of an invoice.
type MatchInvoice struct {
	Status   string
	Currency string
	Total    int64
}
