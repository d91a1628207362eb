package billing

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/services/billing/internal/api"
)

type importResult struct {
	BatchID  string          `json:"batch_id"`
	Imported int             `json:"imported"`
	Rejected []api.Rejection `json:"rejected"`
}

// BI-1: good lines are imported in one batch even when other lines are
// rejected, and every kind of bad line is named with its line number.
func TestImportRejectsBadLinesAndKeepsGoodOnes_BI1(t *testing.T) {
	t.Parallel()
	p := start(t)
	existing := newCoupon()
	mustImport(t, p, existing+",client,"+rfc(p, 24*time.Hour))

	good1, good2, good3, dup := newCoupon(), newCoupon(), newCoupon(), newCoupon()
	file := strings.Join([]string{
		"number,product,expires_at",                      // 1
		good1 + ",client," + rfc(p, 48*time.Hour),        // 2
		"1234567-123456789,client," + rfc(p, time.Hour),  // 3 bad number
		newCoupon() + ",mobile," + rfc(p, time.Hour),     // 4 bad product
		newCoupon() + ",server,next tuesday",             // 5 bad expiry
		newCoupon() + ",server," + rfc(p, -time.Hour),    // 6 past
		dup + ",server," + rfc(p, time.Hour),             // 7
		dup + ",server," + rfc(p, time.Hour),             // 8 duplicate in file
		existing + ",client," + rfc(p, time.Hour),        // 9 already exists
		good2 + ",server,2999-12-31",                     // 10 date = end of day JST
		newCoupon() + ",client",                          // 11 missing field
		" " + good3 + " , server , " + rfc(p, time.Hour), // 12 spaces are trimmed
	}, "\r\n")
	resp := importCSV(t, p, file)
	if resp.Status != 200 {
		t.Fatalf("import: %d %s", resp.Status, resp.Body)
	}
	var res importResult
	resp.JSON(t, &res)
	if res.Imported != 4 {
		t.Errorf("imported = %d, want 4 (%s)", res.Imported, resp.Body)
	}
	want := map[int]string{3: "number", 4: "product", 5: "expires_at", 6: "past", 8: "duplicate of line 7", 9: "already exists", 11: "fields"}
	if len(res.Rejected) != len(want) {
		t.Fatalf("rejected = %+v, want lines %v", res.Rejected, want)
	}
	for _, r := range res.Rejected {
		if w, ok := want[r.Line]; !ok || !strings.Contains(r.Error, w) {
			t.Errorf("line %d rejected with %q, want it to mention %q", r.Line, r.Error, w)
		}
	}
	// Imported coupons are stored under the batch, with who imported them.
	if n := count(t, p, `SELECT count(*) FROM coupons WHERE batch_id = $1`, res.BatchID); n != 4 {
		t.Errorf("coupons in batch = %d, want 4", n)
	}
	if n := count(t, p, `SELECT count(*) FROM coupon_batches WHERE id = $1 AND imported = 4 AND rejected = 7 AND imported_by LIKE 'ops:%'`, res.BatchID); n != 1 {
		t.Errorf("batch record missing or wrong")
	}
	// A date-only expiry lasts to the end of that day in Japan.
	if n := count(t, p, `SELECT count(*) FROM coupons WHERE number = $1 AND expires_at = '3000-01-01T00:00:00+09:00'`, good2); n != 1 {
		t.Errorf("date expiry not stored as the end of the day JST")
	}
	if r := check(t, p, good1, "client"); !r.OK {
		t.Errorf("imported coupon not usable: %+v", r)
	}
}

// BI-1, SE-5: importing needs an ops token with the billing role.
func TestImportRequiresBillingRole_BI1_SE5(t *testing.T) {
	t.Parallel()
	p := start(t)
	body := "number,product,expires_at\n" + newCoupon() + ",client," + rfc(p, time.Hour) + "\n"
	if r := p.Do("POST", "/ops/v1/coupons", body, "Content-Type", "text/csv"); r.Status != 401 {
		t.Errorf("without token: %d, want 401", r.Status)
	}
	if r := p.Do("POST", "/ops/v1/coupons", body, "Content-Type", "text/csv", "Authorization", "Bearer not-a-known-token-at-all"); r.Status != 401 {
		t.Errorf("unknown token: %d, want 401", r.Status)
	}
	if r := p.Do("POST", "/ops/v1/coupons", body, "Content-Type", "text/csv", "Authorization", "Bearer "+reviewerToken); r.Status != 403 {
		t.Errorf("reviewer token: %d, want 403", r.Status)
	}
	if n := count(t, p, `SELECT count(*) FROM coupons`); n != 0 {
		t.Fatalf("unauthorised import stored %d coupons", n)
	}
	if r := importCSV(t, p, body); r.Status != 200 {
		t.Errorf("billing token: %d %s", r.Status, r.Body)
	}
}

// BI-1, SE-4: a file that cannot be imported is a problem document and
// stores nothing.
func TestImportBadFilesAreProblems_BI1_SE4(t *testing.T) {
	t.Parallel()
	p := start(t)
	line := newCoupon() + ",client," + rfc(p, time.Hour)
	cases := []struct {
		name, ct, body string
		status         int
	}{
		{"json content type", "application/json", "number,product,expires_at\n" + line, 415},
		{"no content type", "", "number,product,expires_at\n" + line, 415},
		{"empty", "text/csv", "", 400},
		{"blank lines", "text/csv", "\n\n", 400},
		{"headerless", "text/csv", line + "\n", 422},
		{"bad header", "text/csv", "number,product,expiry\n" + line, 422},
		{"header only", "text/csv", "number,product,expires_at\n", 422},
		{"broken quote", "text/csv", "number,product,expires_at\n" + line + "\n\"1234,client\n", 400},
		{"too large", "text/csv", "number,product,expires_at\n" + strings.Repeat(line+"\n", 6<<20/len(line)), 413},
	}
	for _, c := range cases {
		headers := []string{"Authorization", "Bearer " + billingToken, "Content-Type", c.ct}
		r := p.Do("POST", "/ops/v1/coupons", c.body, headers...)
		if r.Status != c.status || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem", c.name, r.Status, r.Body, c.status)
		}
	}
	// A charset parameter is fine; a BOM from a spreadsheet too.
	if r := p.Do("POST", "/ops/v1/coupons", "\ufeffnumber,product,expires_at\n"+line, "Authorization", "Bearer "+billingToken,
		"Content-Type", "text/csv; charset=utf-8"); r.Status != 200 {
		t.Errorf("csv with charset and BOM: %d %s", r.Status, r.Body)
	}
	if n := count(t, p, `SELECT count(*) FROM coupon_batches`); n != 1 {
		t.Errorf("batches = %d, want only the good one", n)
	}
}
