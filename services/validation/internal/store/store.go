// Package store is validation's Postgres access: reviews and the history
// of approvals per organization. Writes run on the use case's
// transaction; Update and UpdateForApplication hide the row lock and the
// write.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// Querier is a pool, a connection or a transaction.
type Querier = db.Querier

const columns = `id, application_id, correlation_id, application, final_at, paid_at, payment_method,
	payment_reference, status, pending_at, decided_by, decided_at, reject_reason, created_at, checks_at, refunded_at`

func scan(row pgx.Row) (domain.Review, error) {
	var (
		r                       domain.Review
		app                     []byte
		paidAt                  *time.Time
		method, ref, by, reason *string
	)
	err := row.Scan(&r.ID, &r.ApplicationID, &r.CorrelationID, &app, &r.FinalAt, &paidAt, &method,
		&ref, &r.Status, &r.PendingAt, &by, &r.DecidedAt, &reason, &r.CreatedAt, &r.ChecksAt, &r.RefundedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errs.NotFound("")
	}
	if err != nil {
		return r, err
	}
	if app != nil {
		var a events.Application
		if err := json.Unmarshal(app, &a); err != nil {
			return r, fmt.Errorf("review %s: application: %w", r.ID, err)
		}
		r.Application = &a
	}
	if paidAt != nil {
		r.Payment = &domain.Payment{At: *paidAt, Method: deref(method), Reference: deref(ref)}
	}
	r.DecidedBy, r.Reason = deref(by), deref(reason)
	return r, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// UpdateForApplication is the repository update of the application's
// review: it creates a waiting review first if there is none, locks the
// row (concurrent handlers of one application queue up on it), lets fn
// change it, and saves it, all on tx.
func UpdateForApplication(ctx context.Context, tx pgx.Tx, applicationID string, now time.Time, fn func(*domain.Review) error) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO reviews (id, application_id, status, created_at, updated_at)
		VALUES ($1, $2, 'waiting', $3, $3) ON CONFLICT (application_id) DO NOTHING`, id, applicationID, now); err != nil {
		return fmt.Errorf("create review: %w", err)
	}
	r, err := scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM reviews WHERE application_id = $1 FOR UPDATE`, applicationID))
	if err != nil {
		return err
	}
	if err := fn(&r); err != nil {
		return err
	}
	return save(ctx, tx, r, now)
}

// Update is the repository update of a review by ID: SELECT … FOR
// UPDATE, fn, and the write, on tx. A missing review is a not-found
// error. It returns the review as saved.
func Update(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time, fn func(*domain.Review) error) (domain.Review, error) {
	r, err := scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM reviews WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return r, err
	}
	if err := fn(&r); err != nil {
		return r, err
	}
	return r, save(ctx, tx, r, now)
}

// GetForApplication reads the review of an application.
func GetForApplication(ctx context.Context, q Querier, applicationID string) (domain.Review, error) {
	return scan(q.QueryRow(ctx, `SELECT `+columns+` FROM reviews WHERE application_id = $1`, applicationID))
}

// Get reads a review.
func Get(ctx context.Context, q Querier, id uuid.UUID) (domain.Review, error) {
	return scan(q.QueryRow(ctx, `SELECT `+columns+` FROM reviews WHERE id = $1`, id))
}

// List returns reviews of a status: the queue oldest first, decided
// reviews most recent first.
func List(ctx context.Context, q Querier, status string, limit int) ([]domain.Review, error) {
	order := `pending_at, id`
	if status == domain.StatusApproved || status == domain.StatusRejected {
		order = `decided_at DESC, id`
	}
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM reviews WHERE status = $1 ORDER BY `+order+` LIMIT $2`, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Review
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// save writes a review's state back.
func save(ctx context.Context, tx pgx.Tx, r domain.Review, now time.Time) error {
	var app []byte
	var companyCode *string
	if r.Application != nil {
		var err error
		if app, err = json.Marshal(r.Application); err != nil {
			return err
		}
		companyCode = &r.Application.Organization.CompanyCode
	}
	var paidAt *time.Time
	var method, ref *string
	if r.Payment != nil {
		paidAt, method, ref = &r.Payment.At, &r.Payment.Method, &r.Payment.Reference
	}
	_, err := tx.Exec(ctx, `UPDATE reviews SET correlation_id = $2, application = $3, company_code = $4,
		final_at = $5, paid_at = $6, payment_method = $7, payment_reference = $8, status = $9, pending_at = $10,
		decided_by = NULLIF($11, ''), decided_at = $12, reject_reason = NULLIF($13, ''), updated_at = $14,
		checks_at = $15, refunded_at = $16
		WHERE id = $1`,
		r.ID, r.CorrelationID, app, companyCode, r.FinalAt, paidAt, method, ref, r.Status, r.PendingAt,
		r.DecidedBy, r.DecidedAt, r.Reason, now, r.ChecksAt, r.RefundedAt)
	if err != nil {
		return fmt.Errorf("save review: %w", err)
	}
	return nil
}

// RecordApproval adds an approved review to its organization's history.
func RecordApproval(ctx context.Context, tx pgx.Tx, r domain.Review) error {
	a := r.Application
	_, err := tx.Exec(ctx, `INSERT INTO organization_history (review_id, company_code, application_id, product, kind,
		applicant_name_en, applicant_email, previous_certificate_id, approved_by, approved_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), $9, $10)`,
		r.ID, a.Organization.CompanyCode, r.ApplicationID, a.Product, a.Kind, a.Applicant.NameEn, a.Applicant.Email,
		a.PreviousCertificateID, r.DecidedBy, *r.DecidedAt)
	if err != nil {
		return fmt.Errorf("record approval: %w", err)
	}
	return nil
}

// History returns, per company code, the most recent approvals: one more
// than a review shows, since the review itself may be among them.
func History(ctx context.Context, q Querier, companyCodes []string) (map[string][]domain.Approval, error) {
	out := map[string][]domain.Approval{}
	if len(companyCodes) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `
		SELECT company_code, review_id, application_id, product, kind, applicant_name_en, applicant_email,
			COALESCE(previous_certificate_id, ''), approved_by, approved_at
		FROM (SELECT *, row_number() OVER (PARTITION BY company_code ORDER BY approved_at DESC) AS n
		      FROM organization_history WHERE company_code = ANY($1)) h
		WHERE n <= $2 ORDER BY company_code, approved_at DESC`, companyCodes, domain.MaxPreviousApprovals+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		var a domain.Approval
		if err := rows.Scan(&code, &a.ReviewID, &a.ApplicationID, &a.Product, &a.Kind, &a.ApplicantNameEn,
			&a.ApplicantEmail, &a.PreviousCertificateID, &a.ApprovedBy, &a.ApprovedAt); err != nil {
			return nil, err
		}
		out[code] = append(out[code], a)
	}
	return out, rows.Err()
}
