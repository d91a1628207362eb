// Package store is intake's Postgres access: every query of the service's
// own schema, run on the querier (usually the transaction) the use case
// opened. It reads and writes domain types.
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
	"github.com/certlife/platform/services/intake/internal/domain"
)

// Q is a transaction or a pool.
type Q = db.Querier

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrCouponInUse: another live application holds the coupon.
var ErrCouponInUse = errors.New("coupon already in a live application")

// InsertApplicant stores a new applicant.
func InsertApplicant(ctx context.Context, q Q, a domain.Applicant, now time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO applicants (id, email, password_hash, language, created_at) VALUES ($1, $2, $3, $4, $5)`,
		a.ID, a.Email, a.PasswordHash, a.Language, now)
	return err
}

const applicantColumns = `id, email, password_hash, code_mac, code_hash, code_issued_at, code_email,
	mailbox_validated_at, mailbox_validated_email, language`

func scanApplicant(r pgx.Row) (domain.Applicant, error) {
	var a domain.Applicant
	err := r.Scan(&a.ID, &a.Email, &a.PasswordHash, &a.CodeMAC, &a.LegacyCodeHash, &a.CodeIssuedAt, &a.CodeEmail,
		&a.MailboxValidatedAt, &a.MailboxEmail, &a.Language)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// ApplicantsByEmail returns every applicant with that e-mail, newest first.
func ApplicantsByEmail(ctx context.Context, q Q, email string) ([]domain.Applicant, error) {
	rows, err := q.Query(ctx, `SELECT `+applicantColumns+` FROM applicants WHERE email = $1 ORDER BY created_at DESC, id DESC`, email)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Applicant, error) { return scanApplicant(r) })
}

// GetApplicant returns one applicant.
func GetApplicant(ctx context.Context, q Q, id uuid.UUID) (domain.Applicant, error) {
	return scanApplicant(q.QueryRow(ctx, `SELECT `+applicantColumns+` FROM applicants WHERE id = $1`, id))
}

// SetCode replaces the applicant's certificate code, sent to email: the
// previous code (MAC or legacy hash) stops working at once (PC-7, PC-10).
func SetCode(ctx context.Context, q Q, applicant uuid.UUID, mac []byte, email string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE applicants SET code_mac = $2, code_hash = NULL, code_issued_at = $3, code_email = $4 WHERE id = $1`,
		applicant, mac, now, email)
	return err
}

// RecordMailboxValidation records that the applicant controlled the
// mailbox at v.At (PC-16); it replaces an older validation.
func RecordMailboxValidation(ctx context.Context, q Q, applicant uuid.UUID, v domain.MailboxValidation) error {
	_, err := q.Exec(ctx, `UPDATE applicants SET mailbox_validated_at = $2, mailbox_validated_email = $3 WHERE id = $1`,
		applicant, v.At, v.Email)
	return err
}

// CountCodeRequests returns the e-mail's requests for a fresh code since
// `since`, and the oldest of them.
func CountCodeRequests(ctx context.Context, q Q, email string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest *time.Time
	err := q.QueryRow(ctx, `SELECT count(*), min(at) FROM code_requests WHERE email = $1 AND at > $2`, email, since).Scan(&n, &oldest)
	if oldest == nil {
		return n, time.Time{}, err
	}
	return n, *oldest, err
}

// AddCodeRequest records a request for a fresh code.
func AddCodeRequest(ctx context.Context, q Q, email string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO code_requests (email, at) VALUES ($1, $2)`, email, at)
	return err
}

// LatestApplication is the applicant's newest application.
func LatestApplication(ctx context.Context, q Q, applicant uuid.UUID) (domain.Application, error) {
	return scanApplication(q.QueryRow(ctx, `SELECT `+appColumns+` FROM applications WHERE applicant_id = $1
		ORDER BY accepted_at DESC, id DESC LIMIT 1`, applicant))
}

// UpgradeCode stores the MAC of a code that was verified against its
// legacy argon2id hash, unless a newer code replaced it meanwhile.
func UpgradeCode(ctx context.Context, q Q, applicant uuid.UUID, legacyHash string, mac []byte) error {
	_, err := q.Exec(ctx, `UPDATE applicants SET code_mac = $3, code_hash = NULL WHERE id = $1 AND code_hash = $2`,
		applicant, legacyHash, mac)
	return err
}

// UpdateApplicantContact records changed contact data of a renewal or reissue.
func UpdateApplicantContact(ctx context.Context, q Q, applicant uuid.UUID, email, language string) error {
	_, err := q.Exec(ctx, `UPDATE applicants SET email = $2, language = $3 WHERE id = $1`, applicant, email, language)
	return err
}

const appColumns = `id, applicant_id, product, kind, status, language, coupon, organization, applicant,
	previous_certificate_id, reissue_reason, accepted_at, cancel_deadline, closed_at, certificate_id, rejection_reason, server`

func scanApplication(row pgx.Row) (domain.Application, error) {
	var a domain.Application
	var org, appl, srv []byte
	err := row.Scan(&a.ID, &a.ApplicantID, &a.Product, &a.Kind, &a.Status, &a.Language, &a.Coupon, &org, &appl,
		&a.PreviousCertificateID, &a.ReissueReason, &a.AcceptedAt, &a.CancelDeadline, &a.ClosedAt, &a.CertificateID, &a.RejectionReason, &srv)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(org, &a.Organization); err != nil {
		return a, err
	}
	if srv != nil {
		a.Server = new(events.ServerApplication)
		if err := json.Unmarshal(srv, a.Server); err != nil {
			return a, err
		}
	}
	return a, json.Unmarshal(appl, &a.Applicant)
}

// InsertApplication stores a new application.
func InsertApplication(ctx context.Context, q Q, a domain.Application) error {
	org, _ := json.Marshal(a.Organization)
	appl, _ := json.Marshal(a.Applicant)
	var srv []byte
	if a.Server != nil {
		srv, _ = json.Marshal(a.Server)
	}
	_, err := q.Exec(ctx, `INSERT INTO applications (`+appColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		a.ID, a.ApplicantID, a.Product, a.Kind, a.Status, a.Language, a.Coupon, org, appl,
		a.PreviousCertificateID, a.ReissueReason, a.AcceptedAt, a.CancelDeadline, a.ClosedAt, a.CertificateID, a.RejectionReason, srv)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "applications_live_coupon" {
		return ErrCouponInUse
	}
	return err
}

// GetApplication reads an application.
func GetApplication(ctx context.Context, q Q, id uuid.UUID) (domain.Application, error) {
	return scanApplication(q.QueryRow(ctx, `SELECT `+appColumns+` FROM applications WHERE id = $1`, id))
}

// UpdateApplication locks the application for the rest of q's
// transaction, lets fn change it, and writes it back. An error from fn
// writes nothing and is returned as is.
func UpdateApplication(ctx context.Context, q Q, id uuid.UUID, fn func(*domain.Application) error) (domain.Application, error) {
	a, err := scanApplication(q.QueryRow(ctx, `SELECT `+appColumns+` FROM applications WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return a, err
	}
	if err := fn(&a); err != nil {
		return a, err
	}
	_, err = q.Exec(ctx, `UPDATE applications SET status = $2, cancel_deadline = $3, closed_at = $4,
		certificate_id = $5, rejection_reason = $6 WHERE id = $1`,
		a.ID, a.Status, a.CancelDeadline, a.ClosedAt, a.CertificateID, a.RejectionReason)
	return a, err
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

// AddTimeline appends to an application's timeline.
func AddTimeline(ctx context.Context, q Q, app uuid.UUID, at time.Time, event string, eventID *uuid.UUID) error {
	_, err := q.Exec(ctx, `INSERT INTO timeline (application_id, at, event, event_id) VALUES ($1, $2, $3, $4)`, app, at, event, eventID)
	return err
}

// Timeline returns the application's timeline, oldest first.
func Timeline(ctx context.Context, q Q, app uuid.UUID) ([]domain.TimelineEntry, error) {
	rows, err := q.Query(ctx, `SELECT at, event FROM timeline WHERE application_id = $1 ORDER BY seq`, app)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[domain.TimelineEntry])
}

// UpsertCertificate records what an issuer event says of a certificate.
// Status only moves forward: ready → issued → revoked; facts once known stay.
func UpsertCertificate(ctx context.Context, q Q, c domain.Certificate) error {
	var from, until, reissue *time.Time
	if c.Windows != nil {
		from, until, reissue = &c.Windows.RenewalFrom, &c.Windows.RenewalUntil, &c.Windows.ReissueUntil
	}
	_, err := q.Exec(ctx, `INSERT INTO certificates (id, application_id, applicant_id, status, not_after, retrieved_at,
			renewal_from, renewal_until, reissue_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET
			status = CASE WHEN certificates.status = 'revoked' THEN 'revoked'
			              WHEN certificates.status = 'issued' AND EXCLUDED.status = 'ready' THEN 'issued'
			              ELSE EXCLUDED.status END,
			not_after = coalesce(EXCLUDED.not_after, certificates.not_after),
			retrieved_at = coalesce(certificates.retrieved_at, EXCLUDED.retrieved_at),
			renewal_from = coalesce(EXCLUDED.renewal_from, certificates.renewal_from),
			renewal_until = coalesce(EXCLUDED.renewal_until, certificates.renewal_until),
			reissue_until = coalesce(EXCLUDED.reissue_until, certificates.reissue_until)`,
		c.ID, c.ApplicationID, c.ApplicantID, c.Status, c.NotAfter, c.RetrievedAt, from, until, reissue)
	return err
}

// GetCertificate reads one certificate; forUpdate locks it, so that
// follow-ups of one certificate are accepted one at a time.
func GetCertificate(ctx context.Context, q Q, id uuid.UUID, forUpdate bool) (domain.Certificate, error) {
	sql := `SELECT id, application_id, applicant_id, status, not_after, retrieved_at,
		renewal_from, renewal_until, reissue_until FROM certificates WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	var c domain.Certificate
	var from, until, reissue *time.Time
	err := q.QueryRow(ctx, sql, id).Scan(&c.ID, &c.ApplicationID, &c.ApplicantID, &c.Status, &c.NotAfter, &c.RetrievedAt,
		&from, &until, &reissue)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	if from != nil && until != nil && reissue != nil {
		c.Windows = &events.Windows{RenewalFrom: *from, RenewalUntil: *until, ReissueUntil: *reissue}
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

// InsertWindow stores a maintenance window.
func InsertWindow(ctx context.Context, q Q, w domain.MaintenanceWindow) error {
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
func Windows(ctx context.Context, q Q, t time.Time) ([]domain.MaintenanceWindow, error) {
	rows, err := q.Query(ctx, `SELECT id, starts_at, ends_at, created_by, created_at FROM maintenance_windows
		WHERE ends_at > $1 ORDER BY starts_at`, t)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[domain.MaintenanceWindow])
}

// SearchApplications lists applications newest first. The e-mail matches
// the application's own address or its applicant's current one (a
// renewal may have changed it).
func SearchApplications(ctx context.Context, q Q, s domain.ApplicationSearch) ([]domain.Application, error) {
	rows, err := q.Query(ctx, `SELECT `+appColumns+` FROM applications
		WHERE ($1 = '' OR strpos(lower(applicant->>'email'), lower($1)) > 0
		                OR applicant_id IN (SELECT id FROM applicants WHERE strpos(lower(email), lower($1)) > 0))
		  AND ($2 = '' OR status = $2)
		  AND ($3::uuid IS NULL OR id = $3)
		  AND ($4::uuid IS NULL OR id < $4)
		ORDER BY id DESC LIMIT $5`, s.Email, s.Status, s.ID, s.Before, s.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Application, error) { return scanApplication(r) })
}
