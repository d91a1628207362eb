// Package store is billing's Postgres access: coupons, their import
// batches and the per-application reservation records. Every function
// runs on the caller's transaction (or pool, for reads); the use case
// owns the transaction boundary.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/billing/internal/domain"
)

// Querier is a pool, a connection or a transaction.
type Querier = db.Querier

// --- coupons ---------------------------------------------------------------

// Batch is one import of coupons (BI-1).
type Batch struct {
	ID         uuid.UUID
	ImportedBy string
	ImportedAt time.Time
	Lines      []domain.Line
}

// ImportBatch records the batch and inserts its coupons. It returns the
// file lines whose number already existed: ON CONFLICT DO NOTHING decides
// that atomically, so two concurrent imports of one number cannot both
// succeed and neither fails as a whole.
func ImportBatch(ctx context.Context, tx pgx.Tx, b Batch) (existing []int, err error) {
	if _, err := tx.Exec(ctx, `INSERT INTO coupon_batches (id, imported_by, imported_at, lines) VALUES ($1, $2, $3, $4)`,
		b.ID, b.ImportedBy, b.ImportedAt, len(b.Lines)); err != nil {
		return nil, fmt.Errorf("insert batch: %w", err)
	}
	numbers := make([]string, len(b.Lines))
	products := make([]string, len(b.Lines))
	expiries := make([]time.Time, len(b.Lines))
	for i, l := range b.Lines {
		numbers[i], products[i], expiries[i] = l.Number, l.Product, l.ExpiresAt
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO coupons (number, product, expires_at, batch_id, imported_at)
		SELECT n, p, e, $4, $5 FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS t(n, p, e)
		ON CONFLICT (number) DO NOTHING
		RETURNING number`, numbers, products, expiries, b.ID, b.ImportedAt)
	if err != nil {
		return nil, fmt.Errorf("insert coupons: %w", err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert coupons: %w", err)
	}
	ok := make(map[string]bool, len(inserted))
	for _, n := range inserted {
		ok[n] = true
	}
	for _, l := range b.Lines {
		if !ok[l.Number] {
			existing = append(existing, l.Line)
		}
	}
	return existing, nil
}

// FinishBatch records the outcome counts of a batch.
func FinishBatch(ctx context.Context, tx pgx.Tx, id uuid.UUID, imported, rejected int) error {
	_, err := tx.Exec(ctx, `UPDATE coupon_batches SET imported = $2, rejected = $3 WHERE id = $1`, id, imported, rejected)
	return err
}

// Coupon reads one coupon; an errs.KindNotFound error when there is none.
func Coupon(ctx context.Context, q Querier, number string) (domain.Coupon, error) {
	var c domain.Coupon
	err := q.QueryRow(ctx, `SELECT number, product, expires_at, status FROM coupons WHERE number = $1`, number).
		Scan(&c.Number, &c.Product, &c.ExpiresAt, &c.Status)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, errs.NotFound("no such coupon")
	}
	return c, err
}

// Take moves an available coupon straight to status (reserved, or
// consumed when the final acceptance came first) for the application, if
// it is for product and unexpired at validAt. The conditional UPDATE is
// the whole check: of two transactions racing for one coupon, the second
// waits on the row lock, re-reads the row and matches nothing.
func Take(ctx context.Context, tx pgx.Tx, number, product, applicationID, status string, validAt, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `
		UPDATE coupons SET status = $4::text, application_id = $3,
			reserved_at = $6::timestamptz, consumed_at = CASE WHEN $4::text = 'consumed' THEN $6::timestamptz END
		WHERE number = $1 AND product = $2 AND status = 'available' AND expires_at > $5`,
		number, product, applicationID, status, validAt, now)
	if err != nil {
		return false, fmt.Errorf("take coupon: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Consume turns the application's reservation of the coupon into its
// consumption. It matches nothing unless that application holds it.
func Consume(ctx context.Context, tx pgx.Tx, number, applicationID string, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE coupons SET status = 'consumed', consumed_at = $3
		WHERE number = $1 AND application_id = $2 AND status = 'reserved'`, number, applicationID, now)
	if err != nil {
		return false, fmt.Errorf("consume coupon: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release makes a coupon reserved by the application available again.
func Release(ctx context.Context, tx pgx.Tx, number, applicationID string) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE coupons SET status = 'available', application_id = NULL, reserved_at = NULL
		WHERE number = $1 AND application_id = $2 AND status = 'reserved'`, number, applicationID)
	if err != nil {
		return false, fmt.Errorf("release coupon: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// --- reservation records ---------------------------------------------------

// UpdateReservation is the repository update of an application's record:
// it serialises, until tx ends, every handler working on that application
// (whatever order its events arrive in and however many replicas consume
// them), reads the record (zero State when there is none), lets fn decide
// on it, and writes it back if fn changed it. fn runs on tx, so what it
// does to coupons commits or rolls back with the record.
func UpdateReservation(ctx context.Context, tx pgx.Tx, applicationID string, now time.Time, fn func(*domain.Reservation) error) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('billing.application:' || $1, 0))`, applicationID); err != nil {
		return fmt.Errorf("lock application: %w", err)
	}
	r, err := getReservation(ctx, tx, applicationID)
	if err != nil {
		return err
	}
	before := r
	if err := fn(&r); err != nil {
		return err
	}
	if r == before {
		return nil
	}
	return putReservation(ctx, tx, r, now)
}

func getReservation(ctx context.Context, tx pgx.Tx, applicationID string) (domain.Reservation, error) {
	r := domain.Reservation{ApplicationID: applicationID}
	var coupon, reason *string
	err := tx.QueryRow(ctx, `SELECT state, coupon, reason FROM coupon_reservations WHERE application_id = $1`,
		applicationID).Scan(&r.State, &coupon, &reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read reservation: %w", err)
	}
	if coupon != nil {
		r.Coupon = *coupon
	}
	if reason != nil {
		r.Reason = *reason
	}
	return r, nil
}

// putReservation creates or moves an application's record. A final state
// is never left: the UPDATE only applies from reserved.
func putReservation(ctx context.Context, tx pgx.Tx, r domain.Reservation, now time.Time) error {
	tag, err := tx.Exec(ctx, `
		INSERT INTO coupon_reservations (application_id, coupon, state, reason, created_at, updated_at)
		VALUES ($1, NULLIF($2, ''), $3, NULLIF($4, ''), $5, $5)
		ON CONFLICT (application_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at
		WHERE coupon_reservations.state = 'reserved'`,
		r.ApplicationID, r.Coupon, r.State, r.Reason, now)
	if err != nil {
		return fmt.Errorf("put reservation: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("reservation of %s is already final", r.ApplicationID)
	}
	return nil
}
