package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CoverageReissue is a reissue inside a coverage (IS-4), table coverage_reissues.
type CoverageReissue struct {
	CertificateID       uuid.UUID
	ApplicationID       uuid.UUID
	PreviousApplication uuid.UUID
	CustomerID          uuid.UUID
	OrderID             *uuid.UUID
	ReuseKey            bool
	Deadline            time.Time
	RequestedAt         time.Time
	CSRReceivedAt       *time.Time
	// The replacement of a certificate a mass revocation took (OP-5).
	MassRevocationID string
	RevocationReason string
}

// InsertCoverageReissue records a reissue; false when the certificate
// already has one (a redelivered CoverageReissueDue).
func InsertCoverageReissue(ctx context.Context, q Q, r CoverageReissue) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO coverage_reissues (certificate_id, application_id, previous_application,
		customer_id, order_id, reuse_key, deadline, requested_at, csr_received_at, mass_revocation_id, revocation_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, nullif($10, ''), nullif($11, ''))
		ON CONFLICT (certificate_id) DO NOTHING`,
		r.CertificateID, r.ApplicationID, r.PreviousApplication, r.CustomerID, r.OrderID, r.ReuseKey, r.Deadline, r.RequestedAt,
		r.CSRReceivedAt, r.MassRevocationID, r.RevocationReason)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// LockCoverageReissue reads and locks the reissue of a customer's certificate.
func LockCoverageReissue(ctx context.Context, q Q, certificateID, customerID uuid.UUID) (CoverageReissue, error) {
	return scanCoverageReissue(q.QueryRow(ctx, `SELECT `+coverageColumns+` FROM coverage_reissues
		WHERE certificate_id = $1 AND customer_id = $2 FOR UPDATE`, certificateID, customerID))
}

// LatestCoverageReissue is the newest reissue of an order's coverage.
func LatestCoverageReissue(ctx context.Context, q Q, orderID uuid.UUID) (CoverageReissue, error) {
	return scanCoverageReissue(q.QueryRow(ctx, `SELECT `+coverageColumns+` FROM coverage_reissues
		WHERE order_id = $1 ORDER BY requested_at DESC LIMIT 1`, orderID))
}

const coverageColumns = `certificate_id, application_id, previous_application, customer_id, order_id, reuse_key,
	deadline, requested_at, csr_received_at, coalesce(mass_revocation_id, ''), coalesce(revocation_reason, '')`

func scanCoverageReissue(row pgx.Row) (CoverageReissue, error) {
	var r CoverageReissue
	err := row.Scan(&r.CertificateID, &r.ApplicationID, &r.PreviousApplication, &r.CustomerID, &r.OrderID,
		&r.ReuseKey, &r.Deadline, &r.RequestedAt, &r.CSRReceivedAt, &r.MassRevocationID, &r.RevocationReason)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// CoverageCSRReceived marks the reissue's CSR received.
func CoverageCSRReceived(ctx context.Context, q Q, certificateID uuid.UUID, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE coverage_reissues SET csr_received_at = $2 WHERE certificate_id = $1`, certificateID, at)
	return err
}
