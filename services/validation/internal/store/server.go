package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/validation/internal/domain"
)

const scColumns = `application_id, customer_id, order_id, duns, correlation_id, org_status, org_verified_at,
	org_valid_until, org_reused_from, org_registry, org_mismatches, org_detail, phone_status, phone_confirmed_at, created_at`

func scanServerCheck(row pgx.Row) (domain.ServerCheck, error) {
	var (
		c                    domain.ServerCheck
		reused               *string
		registry, mismatches []byte
	)
	err := row.Scan(&c.ApplicationID, &c.CustomerID, &c.OrderID, &c.DUNS, &c.CorrelationID, &c.OrgStatus, &c.OrgVerifiedAt,
		&c.OrgValidUntil, &reused, &registry, &mismatches, &c.OrgDetail, &c.PhoneStatus, &c.PhoneConfirmedAt, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, errs.NotFound("")
	}
	if err != nil {
		return c, err
	}
	c.OrgReusedFrom = deref(reused)
	if registry != nil {
		c.Registry = &domain.Organization{}
		if err := json.Unmarshal(registry, c.Registry); err != nil {
			return c, fmt.Errorf("server check %s: registry: %w", c.ApplicationID, err)
		}
	}
	if mismatches != nil {
		if err := json.Unmarshal(mismatches, &c.Mismatches); err != nil {
			return c, fmt.Errorf("server check %s: mismatches: %w", c.ApplicationID, err)
		}
	}
	return c, nil
}

func jsonOrNil(v any, isNil bool) ([]byte, error) {
	if isNil {
		return nil, nil
	}
	return json.Marshal(v)
}

// InsertServerCheck stores a server application's checks unless they
// exist; inserted says which.
func InsertServerCheck(ctx context.Context, tx pgx.Tx, c domain.ServerCheck) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO server_checks (application_id, customer_id, order_id, duns, correlation_id,
		org_status, phone_status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
		ON CONFLICT (application_id) DO NOTHING`,
		c.ApplicationID, c.CustomerID, c.OrderID, c.DUNS, c.CorrelationID, c.OrgStatus, c.PhoneStatus, c.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("insert server check: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// GetServerCheck reads a server application's checks.
func GetServerCheck(ctx context.Context, q Querier, applicationID string) (domain.ServerCheck, error) {
	return scanServerCheck(q.QueryRow(ctx, `SELECT `+scColumns+` FROM server_checks WHERE application_id = $1`, applicationID))
}

// UpdateServerCheck locks, changes (fn) and saves a server application's
// checks on tx.
func UpdateServerCheck(ctx context.Context, tx pgx.Tx, applicationID string, now time.Time, fn func(*domain.ServerCheck) error) (domain.ServerCheck, error) {
	c, err := scanServerCheck(tx.QueryRow(ctx, `SELECT `+scColumns+` FROM server_checks WHERE application_id = $1 FOR UPDATE`, applicationID))
	if err != nil {
		return c, err
	}
	if err := fn(&c); err != nil {
		return c, err
	}
	registry, err := jsonOrNil(c.Registry, c.Registry == nil)
	if err != nil {
		return c, err
	}
	mismatches, err := jsonOrNil(c.Mismatches, len(c.Mismatches) == 0)
	if err != nil {
		return c, err
	}
	_, err = tx.Exec(ctx, `UPDATE server_checks SET org_status = $2, org_verified_at = $3, org_valid_until = $4,
		org_reused_from = NULLIF($5, ''), org_registry = $6, org_mismatches = $7, org_detail = $8, phone_status = $9,
		phone_confirmed_at = $10, updated_at = $11 WHERE application_id = $1`,
		c.ApplicationID, c.OrgStatus, c.OrgVerifiedAt, c.OrgValidUntil, c.OrgReusedFrom, registry, mismatches,
		c.OrgDetail, c.PhoneStatus, c.PhoneConfirmedAt, now)
	if err != nil {
		return c, fmt.Errorf("save server check: %w", err)
	}
	return c, nil
}

// ApplicationsOfOrder lists the server applications of an order.
func ApplicationsOfOrder(ctx context.Context, q Querier, orderID string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT application_id FROM server_checks WHERE order_id = $1 ORDER BY created_at`, orderID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ReusableOrganization is the latest application of the organization
// (registry number) whose organization was verified and phone check
// confirmed at or after since (VA-5), other than exclude; nil if none.
func ReusableOrganization(ctx context.Context, q Querier, duns, exclude string, since time.Time) (*domain.ServerCheck, error) {
	c, err := scanServerCheck(q.QueryRow(ctx, `SELECT `+scColumns+` FROM server_checks
		WHERE duns = $1 AND application_id <> $2 AND phone_status = 'confirmed' AND org_status = 'verified'
			AND phone_confirmed_at >= $3
		ORDER BY phone_confirmed_at DESC LIMIT 1`, duns, exclude, since))
	if errs.Is(err, errs.KindNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

const pcColumns = `id, application_id, duns, organization, phone, status, note, decided_by, decided_at, created_at`

func scanPhoneCheck(row pgx.Row) (domain.PhoneCheck, error) {
	var p domain.PhoneCheck
	var by *string
	err := row.Scan(&p.ID, &p.ApplicationID, &p.DUNS, &p.Organization, &p.Phone, &p.Status, &p.Note, &by, &p.DecidedAt, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, errs.NotFound("")
	}
	p.DecidedBy = deref(by)
	return p, err
}

// InsertPhoneCheck stores a phone check task unless the application has
// one; inserted says which.
func InsertPhoneCheck(ctx context.Context, tx pgx.Tx, p domain.PhoneCheck) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO phone_checks (id, application_id, duns, organization, phone, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (application_id) DO NOTHING`,
		p.ID, p.ApplicationID, p.DUNS, p.Organization, p.Phone, p.Status, p.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("insert phone check: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// PhoneCheckOf reads the phone check of an application.
func PhoneCheckOf(ctx context.Context, q Querier, applicationID string) (domain.PhoneCheck, error) {
	return scanPhoneCheck(q.QueryRow(ctx, `SELECT `+pcColumns+` FROM phone_checks WHERE application_id = $1`, applicationID))
}

// UpdatePhoneCheck locks, changes (fn) and saves a phone check on tx.
func UpdatePhoneCheck(ctx context.Context, tx pgx.Tx, id uuid.UUID, fn func(*domain.PhoneCheck) error) (domain.PhoneCheck, error) {
	p, err := scanPhoneCheck(tx.QueryRow(ctx, `SELECT `+pcColumns+` FROM phone_checks WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return p, err
	}
	if err := fn(&p); err != nil {
		return p, err
	}
	_, err = tx.Exec(ctx, `UPDATE phone_checks SET status = $2, note = $3, decided_by = NULLIF($4, ''), decided_at = $5
		WHERE id = $1`, p.ID, p.Status, p.Note, p.DecidedBy, p.DecidedAt)
	if err != nil {
		return p, fmt.Errorf("save phone check: %w", err)
	}
	return p, nil
}

// ListPhoneChecks lists phone checks of a status: pending ones oldest
// first, decided ones newest first.
func ListPhoneChecks(ctx context.Context, q Querier, status string, limit int) ([]domain.PhoneCheck, error) {
	order := `created_at, id`
	if status != domain.PhonePending {
		order = `decided_at DESC, id`
	}
	rows, err := q.Query(ctx, `SELECT `+pcColumns+` FROM phone_checks WHERE status = $1 ORDER BY `+order+` LIMIT $2`, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []domain.PhoneCheck{}
	for rows.Next() {
		p, err := scanPhoneCheck(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RecordOrderPayment records a payment of a server order; the latest
// payment is kept (an earlier one delivered late changes nothing).
func RecordOrderPayment(ctx context.Context, tx pgx.Tx, orderID string, p domain.Payment) error {
	_, err := tx.Exec(ctx, `INSERT INTO order_payments (order_id, method, reference, paid_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (order_id) DO UPDATE SET method = excluded.method, reference = excluded.reference, paid_at = excluded.paid_at
		WHERE order_payments.paid_at IS NULL OR excluded.paid_at > order_payments.paid_at`, orderID, p.Method, p.Reference, p.At)
	return err
}

// RecordOrderRefund records a refund of a server order's payment at at
// (BI-2); the latest refund is kept.
func RecordOrderRefund(ctx context.Context, tx pgx.Tx, orderID string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO order_payments (order_id, refunded_at) VALUES ($1, $2)
		ON CONFLICT (order_id) DO UPDATE SET refunded_at = GREATEST(order_payments.refunded_at, excluded.refunded_at)`, orderID, at)
	return err
}

// OrderPayment reads the payment of an order; nil if unpaid: no payment,
// or none after the latest refund (the latest fact wins; a refund at the
// very time of the payment undoes it).
func OrderPayment(ctx context.Context, q Querier, orderID string) (*domain.Payment, error) {
	var (
		method, ref      *string
		paidAt, refunded *time.Time
	)
	err := q.QueryRow(ctx, `SELECT method, reference, paid_at, refunded_at FROM order_payments WHERE order_id = $1`, orderID).
		Scan(&method, &ref, &paidAt, &refunded)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if paidAt == nil || (refunded != nil && !paidAt.After(*refunded)) {
		return nil, nil
	}
	return &domain.Payment{Method: deref(method), Reference: deref(ref), At: *paidAt}, nil
}

// LastPassedCAA is when the last passed CAA check of a name for an
// application was made; nil if none.
func LastPassedCAA(ctx context.Context, q Querier, applicationID, name string) (*time.Time, error) {
	var at *time.Time
	err := q.QueryRow(ctx, `SELECT max(at) FROM validation_attempts
		WHERE kind = 'caa' AND result = 'passed' AND application_id = $1 AND subject = $2`, applicationID, name).Scan(&at)
	return at, err
}
