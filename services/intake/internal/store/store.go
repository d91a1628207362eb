// Package store is intake's Postgres access: every query of the service's
// own schema, run on the transaction the caller opened.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
)

// Q is a transaction or a pool.
type Q = db.Querier

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrCouponInUse: another live application holds the coupon.
var ErrCouponInUse = errors.New("coupon already in a live application")

// Applicant is a row of applicants.
type Applicant struct {
	ID           uuid.UUID
	Email        string
	PasswordHash string
	CodeHash     *string
	Language     string
}

// Application is a row of applications.
type Application struct {
	ID                    uuid.UUID
	ApplicantID           uuid.UUID
	Product               string
	Kind                  string
	Status                string
	Language              string
	Coupon                *string
	Organization          events.Organization
	Applicant             events.Applicant
	PreviousCertificateID *uuid.UUID
	ReissueReason         *string
	AcceptedAt            time.Time
	CancelDeadline        time.Time
	ClosedAt              *time.Time
	CertificateID         *uuid.UUID
	RejectionReason       *string
}

// Event is the snapshot other services receive.
func (a Application) Event() events.Application {
	out := events.Application{
		ID: a.ID.String(), ApplicantID: a.ApplicantID.String(), Product: a.Product, Kind: a.Kind,
		Language: a.Language, Organization: a.Organization, Applicant: a.Applicant,
	}
	if a.Coupon != nil {
		out.Coupon = *a.Coupon
	}
	if a.PreviousCertificateID != nil {
		out.PreviousCertificateID = a.PreviousCertificateID.String()
	}
	if a.ReissueReason != nil {
		out.ReissueReason = *a.ReissueReason
	}
	return out
}

// InsertApplicant stores a new applicant.
func InsertApplicant(ctx context.Context, q Q, a Applicant, now time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO applicants (id, email, password_hash, language, created_at) VALUES ($1, $2, $3, $4, $5)`,
		a.ID, a.Email, a.PasswordHash, a.Language, now)
	return err
}

// ApplicantsByEmail returns every applicant with that e-mail.
func ApplicantsByEmail(ctx context.Context, q Q, email string) ([]Applicant, error) {
	rows, err := q.Query(ctx, `SELECT id, email, password_hash, code_hash, language FROM applicants WHERE email = $1 ORDER BY created_at`, email)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Applicant, error) {
		var a Applicant
		err := r.Scan(&a.ID, &a.Email, &a.PasswordHash, &a.CodeHash, &a.Language)
		return a, err
	})
}

// GetApplicant returns one applicant.
func GetApplicant(ctx context.Context, q Q, id uuid.UUID) (Applicant, error) {
	var a Applicant
	err := q.QueryRow(ctx, `SELECT id, email, password_hash, code_hash, language FROM applicants WHERE id = $1`, id).
		Scan(&a.ID, &a.Email, &a.PasswordHash, &a.CodeHash, &a.Language)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// SetCode replaces the applicant's certificate code hash: the previous
// code stops working at once.
func SetCode(ctx context.Context, q Q, applicant uuid.UUID, hash string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE applicants SET code_hash = $2, code_issued_at = $3 WHERE id = $1`, applicant, hash, now)
	return err
}

// UpdateApplicantContact records changed contact data of a renewal or reissue.
func UpdateApplicantContact(ctx context.Context, q Q, applicant uuid.UUID, email, language string) error {
	_, err := q.Exec(ctx, `UPDATE applicants SET email = $2, language = $3 WHERE id = $1`, applicant, email, language)
	return err
}

const appColumns = `id, applicant_id, product, kind, status, language, coupon, organization, applicant,
	previous_certificate_id, reissue_reason, accepted_at, cancel_deadline, closed_at, certificate_id, rejection_reason`

func scanApplication(row pgx.Row) (Application, error) {
	var a Application
	var org, appl []byte
	err := row.Scan(&a.ID, &a.ApplicantID, &a.Product, &a.Kind, &a.Status, &a.Language, &a.Coupon, &org, &appl,
		&a.PreviousCertificateID, &a.ReissueReason, &a.AcceptedAt, &a.CancelDeadline, &a.ClosedAt, &a.CertificateID, &a.RejectionReason)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(org, &a.Organization); err != nil {
		return a, err
	}
	return a, json.Unmarshal(appl, &a.Applicant)
}

// InsertApplication stores a new application.
func InsertApplication(ctx context.Context, q Q, a Application) error {
	org, _ := json.Marshal(a.Organization)
	appl, _ := json.Marshal(a.Applicant)
	_, err := q.Exec(ctx, `INSERT INTO applications (`+appColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		a.ID, a.ApplicantID, a.Product, a.Kind, a.Status, a.Language, a.Coupon, org, appl,
		a.PreviousCertificateID, a.ReissueReason, a.AcceptedAt, a.CancelDeadline, a.ClosedAt, a.CertificateID, a.RejectionReason)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "applications_live_coupon" {
		return ErrCouponInUse
	}
	return err
}

// GetApplication reads an application; forUpdate locks its row.
func GetApplication(ctx context.Context, q Q, id uuid.UUID, forUpdate bool) (Application, error) {
	sql := `SELECT ` + appColumns + ` FROM applications WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	return scanApplication(q.QueryRow(ctx, sql, id))
}

// ApplicationByCertificate finds the application a certificate came from.
func ApplicationByCertificate(ctx context.Context, q Q, certificateID uuid.UUID) (Application, error) {
	return scanApplication(q.QueryRow(ctx, `SELECT `+appColumns+` FROM applications WHERE certificate_id = $1`, certificateID))
}

// UpdateApplication writes the mutable columns back.
func UpdateApplication(ctx context.Context, q Q, a Application) error {
	_, err := q.Exec(ctx, `UPDATE applications SET status = $2, cancel_deadline = $3, closed_at = $4,
		certificate_id = $5, rejection_reason = $6 WHERE id = $1`,
		a.ID, a.Status, a.CancelDeadline, a.ClosedAt, a.CertificateID, a.RejectionReason)
	return err
}

// ProvisionalDeadlineAfter lists provisional applications whose cancel
// deadline lies after t (maintenance pulls them forward, PC-5).
func ProvisionalDeadlineAfter(ctx context.Context, q Q, t time.Time) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT id FROM applications WHERE status = 'provisional' AND cancel_deadline > $1 FOR UPDATE`, t)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// TimelineEntry is one line of an application's timeline.
type TimelineEntry struct {
	At    time.Time `json:"at"`
	Event string    `json:"event"`
}

// AddTimeline appends to an application's timeline.
func AddTimeline(ctx context.Context, q Q, app uuid.UUID, at time.Time, event string, eventID *uuid.UUID) error {
	_, err := q.Exec(ctx, `INSERT INTO timeline (application_id, at, event, event_id) VALUES ($1, $2, $3, $4)`, app, at, event, eventID)
	return err
}

// Timeline returns the application's timeline, oldest first.
func Timeline(ctx context.Context, q Q, app uuid.UUID) ([]TimelineEntry, error) {
	rows, err := q.Query(ctx, `SELECT at, event FROM timeline WHERE application_id = $1 ORDER BY seq`, app)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[TimelineEntry])
}

// Certificate is intake's view of a certificate.
type Certificate struct {
	ID            uuid.UUID
	ApplicationID uuid.UUID
	ApplicantID   uuid.UUID
	Status        string
	NotAfter      *time.Time
	RetrievedAt   *time.Time
}

// UpsertCertificate records what an issuer event says of a certificate.
// Status only moves forward: ready → issued → revoked.
func UpsertCertificate(ctx context.Context, q Q, c Certificate) error {
	_, err := q.Exec(ctx, `INSERT INTO certificates (id, application_id, applicant_id, status, not_after, retrieved_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET
			status = CASE WHEN certificates.status = 'revoked' THEN 'revoked'
			              WHEN certificates.status = 'issued' AND EXCLUDED.status = 'ready' THEN 'issued'
			              ELSE EXCLUDED.status END,
			not_after = coalesce(EXCLUDED.not_after, certificates.not_after),
			retrieved_at = coalesce(certificates.retrieved_at, EXCLUDED.retrieved_at)`,
		c.ID, c.ApplicationID, c.ApplicantID, c.Status, c.NotAfter, c.RetrievedAt)
	return err
}

// GetCertificate reads one certificate.
func GetCertificate(ctx context.Context, q Q, id uuid.UUID) (Certificate, error) {
	var c Certificate
	err := q.QueryRow(ctx, `SELECT id, application_id, applicant_id, status, not_after, retrieved_at FROM certificates WHERE id = $1`, id).
		Scan(&c.ID, &c.ApplicationID, &c.ApplicantID, &c.Status, &c.NotAfter, &c.RetrievedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// LiveFollowUp reports whether a renewal or reissue of the certificate is
// already under way (one at a time).
func LiveFollowUp(ctx context.Context, q Q, certificateID uuid.UUID, kind string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM applications WHERE previous_certificate_id = $1 AND kind = $2
		AND status NOT IN ('cancelled', 'rejected')`, certificateID, kind).Scan(&n)
	return n > 0, err
}

// InsertSession stores a session by its token hash.
func InsertSession(ctx context.Context, q Q, hash []byte, applicant uuid.UUID, now, expires time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO sessions (token_hash, applicant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		hash, applicant, now, expires)
	return err
}

// SessionApplicant returns the applicant of a live session.
func SessionApplicant(ctx context.Context, q Q, hash []byte, now time.Time) (uuid.UUID, time.Time, error) {
	var id uuid.UUID
	var exp time.Time
	err := q.QueryRow(ctx, `SELECT applicant_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2`, hash, now).Scan(&id, &exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, exp, ErrNotFound
	}
	return id, exp, err
}

// RecordFailure notes a failed login for each key (e-mail, address).
func RecordFailure(ctx context.Context, q Q, now time.Time, keys ...string) error {
	for _, k := range keys {
		if _, err := q.Exec(ctx, `INSERT INTO login_failures (key, at) VALUES ($1, $2)`, k, now); err != nil {
			return err
		}
	}
	return nil
}

// Failures counts failures of key since t and returns the oldest of them.
func Failures(ctx context.Context, q Q, key string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest *time.Time
	err := q.QueryRow(ctx, `SELECT count(*), min(at) FROM login_failures WHERE key = $1 AND at > $2`, key, since).Scan(&n, &oldest)
	if oldest == nil {
		return n, time.Time{}, err
	}
	return n, *oldest, err
}

// ClearFailures forgets a key's failures after a successful login.
func ClearFailures(ctx context.Context, q Q, key string) error {
	_, err := q.Exec(ctx, `DELETE FROM login_failures WHERE key = $1`, key)
	return err
}

// MaintenanceWindow is a planned outage of the application service (PC-5).
type MaintenanceWindow struct {
	ID        uuid.UUID `json:"id"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// InsertWindow stores a maintenance window.
func InsertWindow(ctx context.Context, q Q, w MaintenanceWindow) error {
	_, err := q.Exec(ctx, `INSERT INTO maintenance_windows (id, starts_at, ends_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5)`,
		w.ID, w.StartsAt, w.EndsAt, w.CreatedBy, w.CreatedAt)
	return err
}

// DeleteWindow removes a maintenance window.
func DeleteWindow(ctx context.Context, q Q, id uuid.UUID) (bool, error) {
	tag, err := q.Exec(ctx, `DELETE FROM maintenance_windows WHERE id = $1`, id)
	return tag.RowsAffected() > 0, err
}

// Windows lists windows that have not ended by t, soonest first.
func Windows(ctx context.Context, q Q, t time.Time) ([]MaintenanceWindow, error) {
	rows, err := q.Query(ctx, `SELECT id, starts_at, ends_at, created_by, created_at FROM maintenance_windows
		WHERE ends_at > $1 ORDER BY starts_at`, t)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[MaintenanceWindow])
}
