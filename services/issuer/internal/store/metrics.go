package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Expiring is the count of valid certificates (issued, not revoked, not
// expired at now) of a product expiring within each window, split by
// whether a renewal certificate already follows them.
type Expiring struct {
	Product string
	Renewed bool
	Within  []int64 // one count per window, in the order asked
}

// CountExpiring counts the certificates valid at now that expire within
// each of windows (ascending); the scan is bounded by the longest window
// (certificates_expiry index).
func CountExpiring(ctx context.Context, q Q, now time.Time, windows []time.Duration) ([]Expiring, error) {
	// One count per window, each a FILTER on the same bounded scan.
	args := []any{now}
	var counts strings.Builder
	for _, w := range windows {
		args = append(args, now.Add(w))
		fmt.Fprintf(&counts, ", count(*) FILTER (WHERE c.not_after <= $%d)", len(args))
	}
	rows, err := q.Query(ctx, `SELECT c.product,
		EXISTS (SELECT 1 FROM certificates n WHERE n.previous_certificate_id = c.id
			AND n.kind = 'renewal' AND n.status <> 'failed') AS renewed`+counts.String()+`
		FROM certificates c
		WHERE c.status = 'issued' AND c.revoked_at IS NULL AND c.not_after > $1 AND c.not_after <= $`+fmt.Sprint(len(args))+`
		GROUP BY 1, 2`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Expiring
	for rows.Next() {
		e := Expiring{Within: make([]int64, len(windows))}
		dest := []any{&e.Product, &e.Renewed}
		for i := range e.Within {
			dest = append(dest, &e.Within[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CRLTimes are the thisUpdate and nextUpdate of an issuer's newest CRL.
type CRLTimes struct {
	Issuer     string
	ThisUpdate time.Time
	NextUpdate time.Time
}

// NewestCRLs lists the newest CRL of every issuer that has one.
func NewestCRLs(ctx context.Context, q Q) ([]CRLTimes, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (issuer) issuer, this_update, next_update
		FROM crls ORDER BY issuer, number DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CRLTimes
	for rows.Next() {
		var c CRLTimes
		if err := rows.Scan(&c.Issuer, &c.ThisUpdate, &c.NextUpdate); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
