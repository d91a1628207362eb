package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CRL is one stored CRL.
type CRL struct {
	Issuer     string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	DER        []byte
}

// NextCRLNumber takes the issuer's next CRL number and holds the row lock
// until tx ends: CRLs of one issuer are made one at a time, with strictly
// increasing numbers (IS-7).
func NextCRLNumber(ctx context.Context, q Q, issuer string) (int64, error) {
	if _, err := q.Exec(ctx, `INSERT INTO crl_numbers (issuer, last_number) VALUES ($1, 0) ON CONFLICT DO NOTHING`, issuer); err != nil {
		return 0, err
	}
	var n int64
	err := q.QueryRow(ctx, `UPDATE crl_numbers SET last_number = last_number + 1 WHERE issuer = $1 RETURNING last_number`, issuer).Scan(&n)
	return n, err
}

// Revoked is an entry of a CRL.
type Revoked struct {
	ID        uuid.UUID
	Serial    string
	RevokedAt time.Time
	Reason    string
}

// RevokedUnexpired lists the issuer's revoked certificates that have not
// expired at now: entries stay on the CRL until the certificate expires.
func RevokedUnexpired(ctx context.Context, q Q, issuer string, now time.Time) ([]Revoked, error) {
	rows, err := q.Query(ctx, `SELECT id, serial, revoked_at, revocation_reason FROM certificates
		WHERE issuer = $1 AND revoked_at IS NOT NULL AND not_after >= $2 ORDER BY revoked_at, serial`, issuer, now)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Revoked, error) {
		var v Revoked
		err := r.Scan(&v.ID, &v.Serial, &v.RevokedAt, &v.Reason)
		return v, err
	})
}

// SaveCRL stores a CRL, marks the revocations it lists for the first time,
// and keeps only the latest few CRLs of the issuer.
func SaveCRL(ctx context.Context, q Q, c CRL, listed []uuid.UUID) error {
	if _, err := q.Exec(ctx, `INSERT INTO crls (issuer, number, this_update, next_update, entries, der)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.Issuer, c.Number, c.ThisUpdate, c.NextUpdate, c.Entries, c.DER); err != nil {
		return err
	}
	if _, err := q.Exec(ctx, `UPDATE certificates SET crl_number = $2 WHERE id = ANY($1) AND crl_number IS NULL`,
		listed, c.Number); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `DELETE FROM crls WHERE issuer = $1 AND number <= $2 - 10`, c.Issuer, c.Number)
	return err
}

// LatestCRL is the issuer's newest CRL.
func LatestCRL(ctx context.Context, q Q, issuer string) (*CRL, error) {
	c := CRL{Issuer: issuer}
	err := q.QueryRow(ctx, `SELECT number, this_update, next_update, entries, der FROM crls
		WHERE issuer = $1 ORDER BY number DESC LIMIT 1`, issuer).Scan(&c.Number, &c.ThisUpdate, &c.NextUpdate, &c.Entries, &c.DER)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}
