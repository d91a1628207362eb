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

const dvColumns = `id, application_id, customer_id, account_uri, domain, method, approver_email, value, value_sha256,
	file_name, language, correlation_id, status, created_at, expires_at, validated_at, reused_from, last_failure, updated_at`

func scanValidation(row pgx.Row) (domain.DomainValidation, error) {
	var (
		v                         domain.DomainValidation
		approver, value, fileName *string
		failure                   []byte
	)
	err := row.Scan(&v.ID, &v.ApplicationID, &v.CustomerID, &v.AccountURI, &v.Domain, &v.Method, &approver, &value,
		&v.ValueHash, &fileName, &v.Language, &v.CorrelationID, &v.Status, &v.CreatedAt, &v.ExpiresAt, &v.ValidatedAt,
		&v.ReusedFrom, &failure, &v.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, errs.NotFound("")
	}
	if err != nil {
		return v, err
	}
	v.ApproverEmail, v.Value, v.FileName = deref(approver), deref(value), deref(fileName)
	if failure != nil {
		v.LastFailure = &domain.Failure{}
		if err := json.Unmarshal(failure, v.LastFailure); err != nil {
			return v, fmt.Errorf("domain validation %s: last_failure: %w", v.ID, err)
		}
	}
	return v, nil
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// InsertValidation stores a new validation unless the application already
// has one for the domain; inserted says which.
func InsertValidation(ctx context.Context, tx pgx.Tx, v domain.DomainValidation) (inserted bool, err error) {
	failure, err := failureJSON(v.LastFailure)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO domain_validations (`+dvColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $14)
		ON CONFLICT (application_id, domain) DO NOTHING`,
		v.ID, v.ApplicationID, v.CustomerID, v.AccountURI, v.Domain, v.Method, nullIfEmpty(v.ApproverEmail),
		nullIfEmpty(v.Value), v.ValueHash, nullIfEmpty(v.FileName), v.Language, v.CorrelationID, v.Status,
		v.CreatedAt, v.ExpiresAt, v.ValidatedAt, v.ReusedFrom, failure)
	if err != nil {
		return false, fmt.Errorf("insert domain validation: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func failureJSON(f *domain.Failure) ([]byte, error) {
	if f == nil {
		return nil, nil
	}
	return json.Marshal(f)
}

// GetValidation reads a validation; a not-found error if none.
func GetValidation(ctx context.Context, q Querier, id uuid.UUID) (domain.DomainValidation, error) {
	return scanValidation(q.QueryRow(ctx, `SELECT `+dvColumns+` FROM domain_validations WHERE id = $1`, id))
}

// ValidationFor reads the application's validation of a domain.
func ValidationFor(ctx context.Context, q Querier, applicationID, d string) (domain.DomainValidation, error) {
	return scanValidation(q.QueryRow(ctx, `SELECT `+dvColumns+` FROM domain_validations
		WHERE application_id = $1 AND domain = $2`, applicationID, d))
}

// ValidationsOf lists an application's validations by domain.
func ValidationsOf(ctx context.Context, q Querier, applicationID string) ([]domain.DomainValidation, error) {
	rows, err := q.Query(ctx, `SELECT `+dvColumns+` FROM domain_validations WHERE application_id = $1 ORDER BY domain`, applicationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.DomainValidation
	for rows.Next() {
		v, err := scanValidation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// PendingEmailByHash finds, locked, the pending e-mail validation whose
// random value has this hash.
func PendingEmailByHash(ctx context.Context, tx pgx.Tx, hash string) (domain.DomainValidation, error) {
	return scanValidation(tx.QueryRow(ctx, `SELECT `+dvColumns+` FROM domain_validations
		WHERE value_sha256 = $1 AND method = 'email' AND status = 'pending' FOR UPDATE`, hash))
}

// LatestValidated is the customer's most recent validated validation of
// a domain validated at or after since, if any (VA-5).
func LatestValidated(ctx context.Context, q Querier, customerID, d string, since time.Time) (*domain.DomainValidation, error) {
	v, err := scanValidation(q.QueryRow(ctx, `SELECT `+dvColumns+` FROM domain_validations
		WHERE customer_id = $1 AND domain = $2 AND status = 'validated' AND validated_at >= $3
		ORDER BY validated_at DESC LIMIT 1`, customerID, d, since))
	if errs.Is(err, errs.KindNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// UpdateValidation is the repository update of a validation: SELECT …
// FOR UPDATE, fn, and the write, on tx. It returns the validation as
// saved.
func UpdateValidation(ctx context.Context, tx pgx.Tx, id uuid.UUID, now time.Time, fn func(*domain.DomainValidation) error) (domain.DomainValidation, error) {
	v, err := scanValidation(tx.QueryRow(ctx, `SELECT `+dvColumns+` FROM domain_validations WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return v, err
	}
	if err := fn(&v); err != nil {
		return v, err
	}
	return v, saveValidation(ctx, tx, v, now)
}

func saveValidation(ctx context.Context, tx pgx.Tx, v domain.DomainValidation, now time.Time) error {
	failure, err := failureJSON(v.LastFailure)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE domain_validations SET method = $2, approver_email = $3, value = $4, value_sha256 = $5,
		file_name = $6, status = $7, expires_at = $8, validated_at = $9, reused_from = $10, last_failure = $11, updated_at = $12
		WHERE id = $1`,
		v.ID, v.Method, nullIfEmpty(v.ApproverEmail), nullIfEmpty(v.Value), v.ValueHash, nullIfEmpty(v.FileName),
		v.Status, v.ExpiresAt, v.ValidatedAt, v.ReusedFrom, failure, now)
	if err != nil {
		return fmt.Errorf("save domain validation: %w", err)
	}
	return nil
}

// InsertAttempt appends an attempt to the validation record (VA-9).
func InsertAttempt(ctx context.Context, tx pgx.Tx, a domain.Attempt) error {
	perspectives, err := json.Marshal(a.Perspectives)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO validation_attempts (id, at, kind, subject, application_id, validation_id, method,
		br_section, br_version, value_sha256, result, detail, perspectives, actor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		a.ID, a.At, a.Kind, a.Subject, nullIfEmpty(a.ApplicationID), a.ValidationID, a.Method, nullIfEmpty(a.BRSection),
		nullIfEmpty(a.BRVersion), nullIfEmpty(a.ValueSHA256), a.Result, a.Detail, perspectives, a.Actor)
	if err != nil {
		return fmt.Errorf("insert validation attempt: %w", err)
	}
	return nil
}

// AttemptFilter selects attempts: by subject (a domain or a registry
// number; empty = all), newest first, before a cursor.
type AttemptFilter struct {
	Subject string
	// Before is the last attempt of the previous page (zero = the newest).
	Before uuid.UUID
	Limit  int
}

// ListAttempts lists attempts newest first.
func ListAttempts(ctx context.Context, q Querier, f AttemptFilter) ([]domain.Attempt, error) {
	var before *uuid.UUID
	if f.Before != uuid.Nil {
		before = &f.Before
	}
	rows, err := q.Query(ctx, `SELECT id, at, kind, subject, COALESCE(application_id, ''), validation_id, method,
			COALESCE(br_section, ''), COALESCE(br_version, ''), COALESCE(value_sha256, ''), result, detail, perspectives, actor
		FROM validation_attempts a
		WHERE ($1 = '' OR subject = $1)
		  AND ($2::uuid IS NULL OR (at, id) < (SELECT at, id FROM validation_attempts WHERE id = $2))
		ORDER BY at DESC, id DESC LIMIT $3`, f.Subject, before, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Attempt
	for rows.Next() {
		var a domain.Attempt
		var perspectives []byte
		if err := rows.Scan(&a.ID, &a.At, &a.Kind, &a.Subject, &a.ApplicationID, &a.ValidationID, &a.Method, &a.BRSection,
			&a.BRVersion, &a.ValueSHA256, &a.Result, &a.Detail, &perspectives, &a.Actor); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(perspectives, &a.Perspectives); err != nil {
			return nil, fmt.Errorf("attempt %s: perspectives: %w", a.ID, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AttemptExists reports whether an attempt with this ID exists.
func AttemptExists(ctx context.Context, q Querier, id uuid.UUID) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM validation_attempts WHERE id = $1)`, id).Scan(&ok)
	return ok, err
}
