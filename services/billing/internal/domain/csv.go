package domain

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certlife/platform/pkg/errs"
)

// Header is the required first line of an import file (BI-1).
var Header = []string{"number", "product", "expires_at"}

// Line is one importable coupon of a file.
type Line struct {
	Line      int // 1-based line number in the file (the header is line 1)
	Number    string
	Product   string
	ExpiresAt time.Time
}

// Rejection is a line that will not be imported, and why.
type Rejection struct {
	Line  int
	Error string
}

// Parsed is an import file split into good lines and rejected ones.
type Parsed struct {
	Lines    []Line
	Rejected []Rejection
}

// ParseCSV reads an import file. Lines with a bad number, product or
// expiry, an expiry not after now, or a number seen earlier in the file
// are rejected one by one; the rest are returned for import. Whether a
// number already exists is for the store to say, atomically.
//
// A file that cannot be imported at all (nothing is) is an errs error:
// empty or not CSV is malformed; a wrong header, or a header and no coupon
// lines, is invalid (field "header" or "lines").
func ParseCSV(r io.Reader, now time.Time) (Parsed, error) {
	var out Parsed
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // a wrong field count rejects that line only
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return out, errs.Malformed("the file is empty")
	}
	if err != nil {
		return out, errs.Malformed("malformed CSV: " + err.Error())
	}
	if !isHeader(head) {
		return out, errs.InvalidField("header", "the first line must be the header "+strings.Join(Header, ","))
	}
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A broken quote leaves the rest of the file unreadable: refuse
			// the whole file rather than import a guess.
			return Parsed{}, errs.Malformed("malformed CSV: " + err.Error())
		}
		line, _ := cr.FieldPos(0)
		l, msg := parseLine(rec, now)
		if msg == "" {
			if first, dup := seen[l.Number]; dup {
				msg = fmt.Sprintf("duplicate of line %d", first)
			} else {
				seen[l.Number] = line
			}
		}
		if msg != "" {
			out.Rejected = append(out.Rejected, Rejection{Line: line, Error: msg})
			continue
		}
		l.Line = line
		out.Lines = append(out.Lines, l)
	}
	if len(out.Lines) == 0 && len(out.Rejected) == 0 {
		return out, errs.InvalidField("lines", "the file holds a header and no coupon lines")
	}
	return out, nil
}

func isHeader(rec []string) bool {
	if len(rec) != len(Header) {
		return false
	}
	for i, h := range Header {
		f := strings.ToLower(strings.TrimSpace(rec[i]))
		if i == 0 {
			f = strings.TrimPrefix(f, "\ufeff") // a BOM from spreadsheet exports
		}
		if f != h {
			return false
		}
	}
	return true
}

func parseLine(rec []string, now time.Time) (Line, string) {
	if len(rec) != len(Header) {
		return Line{}, fmt.Sprintf("expected %d fields, got %d", len(Header), len(rec))
	}
	l := Line{
		Number:  strings.TrimSpace(rec[0]),
		Product: strings.TrimSpace(rec[1]),
	}
	if !ValidNumber(l.Number) {
		return l, "number must be 8 digits, a hyphen and 8 digits"
	}
	if !ValidProduct(l.Product) {
		return l, "product must be client or server"
	}
	exp, err := ParseExpiry(strings.TrimSpace(rec[2]))
	if err != nil {
		return l, err.Error()
	}
	if !now.Before(exp) {
		return l, "expires_at is in the past"
	}
	l.ExpiresAt = exp
	return l, ""
}
