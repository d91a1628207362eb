// Package store is the issuer's Postgres state: certificates, recorded
// serials, PKCS#12 files awaiting download and CRLs. Functions take the
// caller's transaction; the transaction boundaries live in package
// issuance.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/db"
)

// Q is a transaction or the pool.
type Q = db.Querier

// ErrNotFound: no such row (or not the caller's).
var ErrNotFound = errors.New("not found")

// Certificate statuses.
const (
	StatusReady = "ready" // approved, waiting for retrieval (PC-15)
	// StatusPending: a server certificate approved and waiting for its
	// issuance (precertificate, CT, signature).
	StatusPending = "pending"
	StatusIssued  = "issued"
	StatusFailed  = "failed" // issuance stopped (e.g. by a lint, IS-3)
)

// Retrieval progress (PC-13).
const (
	RetrievalPending   = "pending"
	RetrievalReady     = "ready"
	RetrievalDelivered = "delivered"
	RetrievalFailed    = "failed"
)

// Certificate is one row of certificates.
type Certificate struct {
	ID                    uuid.UUID
	ApplicationID         string
	ApplicantID           string
	Product               string
	Kind                  string
	PreviousCertificateID *uuid.UUID
	ReissueReason         string
	CorrelationID         string
	NameEn                string
	OrganizationEn        string
	OrganizationID        string // subject:organizationIdentifier, "" when the application had none
	Email                 string
	Language              string
	RecipientName         string // the applicant's name in Language, for mail (NO-2)
	Status                string
	CreatedAt             time.Time

	RetrievalMode        string
	RetrievalStatus      string
	RetrievalRequestedAt *time.Time
	RetrievalFailure     string
	DeliveredAt          *time.Time

	Serial    string
	Issuer    string
	NotBefore *time.Time
	NotAfter  *time.Time
	DER       []byte
	IssuedAt  *time.Time

	RevokedAt        *time.Time
	RevocationReason string
	RevokedBy        string
	CRLNumber        *int64

	// Server certificates: the owning customer, the approved request
	// (JSON of events.ServerApplication) and the issuance attempts.
	CustomerID       string
	Server           []byte
	IssuanceAttempts int
	IssuanceFailure  string
}

// Revoked reports whether the certificate is revoked.
func (c *Certificate) Revoked() bool { return c.RevokedAt != nil }

const columns = `id, application_id, applicant_id, product, kind, previous_certificate_id,
	coalesce(reissue_reason, ''), correlation_id, name_en, organization_en, coalesce(organization_identifier, ''), email, language, status, created_at,
	coalesce(retrieval_mode, ''), coalesce(retrieval_status, ''), retrieval_requested_at, coalesce(retrieval_failure, ''), delivered_at,
	coalesce(serial, ''), coalesce(issuer, ''), not_before, not_after, der, issued_at,
	revoked_at, coalesce(revocation_reason, ''), coalesce(revoked_by, ''), crl_number,
	coalesce(customer_id, ''), server, issuance_attempts, coalesce(issuance_failure, ''), coalesce(recipient_name, '')`

func scan(row pgx.Row) (*Certificate, error) {
	var c Certificate
	err := row.Scan(&c.ID, &c.ApplicationID, &c.ApplicantID, &c.Product, &c.Kind, &c.PreviousCertificateID,
		&c.ReissueReason, &c.CorrelationID, &c.NameEn, &c.OrganizationEn, &c.OrganizationID, &c.Email, &c.Language, &c.Status, &c.CreatedAt,
		&c.RetrievalMode, &c.RetrievalStatus, &c.RetrievalRequestedAt, &c.RetrievalFailure, &c.DeliveredAt,
		&c.Serial, &c.Issuer, &c.NotBefore, &c.NotAfter, &c.DER, &c.IssuedAt,
		&c.RevokedAt, &c.RevocationReason, &c.RevokedBy, &c.CRLNumber,
		&c.CustomerID, &c.Server, &c.IssuanceAttempts, &c.IssuanceFailure, &c.RecipientName)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// InsertReady records an approved application's certificate. It returns
// false when the application already has one (IS-5).
func InsertReady(ctx context.Context, q Q, c *Certificate) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO certificates (id, application_id, applicant_id, product, kind,
		previous_certificate_id, reissue_reason, correlation_id, name_en, organization_en, organization_identifier,
		email, language, status, created_at, recipient_name)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8, $9, $10, nullif($11, ''), $12, $13, 'ready', $14, nullif($15, ''))
		ON CONFLICT (application_id) DO NOTHING`,
		c.ID, c.ApplicationID, c.ApplicantID, c.Product, c.Kind, c.PreviousCertificateID, c.ReissueReason,
		c.CorrelationID, c.NameEn, c.OrganizationEn, c.OrganizationID, c.Email, c.Language, c.CreatedAt, c.RecipientName)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Get reads a certificate.
func Get(ctx context.Context, q Q, id uuid.UUID) (*Certificate, error) {
	return scan(q.QueryRow(ctx, `SELECT `+columns+` FROM certificates WHERE id = $1`, id))
}

// GetOwned reads a certificate of one applicant; another's is ErrNotFound.
func GetOwned(ctx context.Context, q Q, id uuid.UUID, applicantID string) (*Certificate, error) {
	return scan(q.QueryRow(ctx, `SELECT `+columns+` FROM certificates WHERE id = $1 AND applicant_id = $2`, id, applicantID))
}

// LockOwned reads and locks a certificate of one applicant for the rest of
// tx: concurrent retrievals of one certificate run one after the other
// (PC-13). NO KEY UPDATE, so that the serial recorded in another
// transaction can still reference the row.
func LockOwned(ctx context.Context, q Q, id uuid.UUID, applicantID string) (*Certificate, error) {
	return scan(q.QueryRow(ctx, `SELECT `+columns+` FROM certificates WHERE id = $1 AND applicant_id = $2
		FOR NO KEY UPDATE`, id, applicantID))
}

// Lock reads and locks a certificate.
func Lock(ctx context.Context, q Q, id uuid.UUID) (*Certificate, error) {
	return scan(q.QueryRow(ctx, `SELECT `+columns+` FROM certificates WHERE id = $1 FOR NO KEY UPDATE`, id))
}

// LockBySerial reads and locks an issued certificate by serial.
func LockBySerial(ctx context.Context, q Q, serial string) (*Certificate, error) {
	return scan(q.QueryRow(ctx, `SELECT `+columns+` FROM certificates WHERE serial = $1 FOR NO KEY UPDATE`, serial))
}

// Eligibility filters of the applicant's certificate list.
const (
	EligibleRetrieval = "retrieval"
	EligibleRenewal   = "renewal"
	EligibleReissue   = "reissue"
)

// ListEligible lists an applicant's certificates that may be eligible
// for a step:
//   - retrieval: approved and not yet delivered (PC-13, PC-14);
//   - renewal: issued, not revoked and not already renewed;
//   - reissue: issued, not revoked, and no reissue already under way.
//
// For renewal and reissue the caller keeps those inside the step's window
// (domain.Windows, PC-8, PC-11): the window rule is written once, in Go.
// These are the client certificate steps: server certificates are renewed
// through their orders (SV-1), under other windows.
func ListEligible(ctx context.Context, q Q, applicantID, eligibility string) ([]*Certificate, error) {
	var cond string
	switch eligibility {
	case EligibleRetrieval:
		cond = `((status = 'ready' AND retrieval_status IS NULL)
			OR (status IN ('ready', 'issued') AND retrieval_status IN ('pending', 'ready')))`
	case EligibleRenewal:
		cond = `product = 'client' AND status = 'issued' AND revoked_at IS NULL AND not_after IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.previous_certificate_id = c.id AND n.kind = 'renewal')`
	case EligibleReissue:
		cond = `product = 'client' AND status = 'issued' AND revoked_at IS NULL AND not_after IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM certificates n WHERE n.previous_certificate_id = c.id AND n.kind = 'reissue')`
	default:
		return nil, errors.New("store: unknown eligibility " + eligibility)
	}
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM certificates c WHERE applicant_id = $1 AND `+cond+`
		ORDER BY created_at, id`, applicantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Certificate
	for rows.Next() {
		c, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecordSerial commits a drawn serial in its own transaction, before the
// certificate is signed (IS-2). The primary key makes it unique.
func RecordSerial(ctx context.Context, pool *pgxpool.Pool, serial string, certificateID uuid.UUID, at time.Time) error {
	_, err := pool.Exec(ctx, `INSERT INTO serials (serial, certificate_id, recorded_at) VALUES ($1, $2, $3)`,
		serial, certificateID, at)
	return err
}

// StartRetrieval marks the applicant's retrieval request.
func StartRetrieval(ctx context.Context, q Q, id uuid.UUID, mode string, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE certificates SET retrieval_mode = $2, retrieval_status = 'pending',
		retrieval_requested_at = $3 WHERE id = $1`, id, mode, at)
	return err
}

// FailRetrieval records why a retrieval could not be served. With
// stopIssuance the certificate itself is failed (nothing was signed);
// otherwise it stays issued (e.g. its PKCS#12 file expired undownloaded).
func FailRetrieval(ctx context.Context, q Q, id uuid.UUID, failure string, stopIssuance bool) error {
	sql := `UPDATE certificates SET retrieval_status = 'failed', retrieval_failure = $2 WHERE id = $1`
	if stopIssuance {
		sql = `UPDATE certificates SET retrieval_status = 'failed', retrieval_failure = $2, status = 'failed' WHERE id = $1`
	}
	_, err := q.Exec(ctx, sql, id, failure)
	return err
}

// Issued records a signed certificate and the retrieval's new progress.
func Issued(ctx context.Context, q Q, id uuid.UUID, serial, issuer string, notBefore, notAfter time.Time,
	der []byte, at time.Time, retrievalStatus string) error {
	_, err := q.Exec(ctx, `UPDATE certificates SET status = 'issued', serial = $2, issuer = $3,
		not_before = $4, not_after = $5, der = $6, issued_at = $7::timestamptz, retrieval_status = $8::text,
		delivered_at = CASE WHEN $8::text = 'delivered' THEN $7::timestamptz END, spki_sha256 = $9
		WHERE id = $1`, id, serial, issuer, notBefore, notAfter, der, at, retrievalStatus, SPKISHA256(der))
	return err
}

// Delivered marks the retrieval done (PC-14).
func Delivered(ctx context.Context, q Q, id uuid.UUID, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE certificates SET retrieval_status = 'delivered', delivered_at = $2 WHERE id = $1`, id, at)
	return err
}

// Revoke records a revocation; it reports false when the certificate was
// already revoked (IS-6: idempotent, the first revocation stands).
func Revoke(ctx context.Context, q Q, id uuid.UUID, reason string, at time.Time, by string) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE certificates SET revoked_at = $2, revocation_reason = $3, revoked_by = $4
		WHERE id = $1 AND status = 'issued' AND revoked_at IS NULL`, id, at, reason, by)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// PutPKCS12 keeps a sealed PKCS#12 file until downloaded or expired.
func PutPKCS12(ctx context.Context, q Q, id uuid.UUID, sealed []byte, at, expires time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO pkcs12_files (certificate_id, sealed, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		id, sealed, at, expires)
	return err
}

// TakePKCS12 deletes the file and returns it; ErrNotFound when it is gone.
// The delete locks the row, so of two concurrent downloads only one gets it.
func TakePKCS12(ctx context.Context, q Q, id uuid.UUID) ([]byte, error) {
	var sealed []byte
	err := q.QueryRow(ctx, `DELETE FROM pkcs12_files WHERE certificate_id = $1 RETURNING sealed`, id).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sealed, err
}

// DropPKCS12 deletes the file, if any, and reports whether one was there.
func DropPKCS12(ctx context.Context, q Q, id uuid.UUID) (bool, error) {
	tag, err := q.Exec(ctx, `DELETE FROM pkcs12_files WHERE certificate_id = $1`, id)
	return tag.RowsAffected() == 1, err
}
