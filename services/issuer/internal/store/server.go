package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// InsertPending records an approved server application's certificate,
// waiting for its issuance. It returns false when the application already
// has a certificate (IS-5: the unique constraint on application_id).
func InsertPending(ctx context.Context, q Q, c *Certificate) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO certificates (id, application_id, applicant_id, product, kind,
		previous_certificate_id, correlation_id, name_en, organization_en, email, language, status, created_at,
		customer_id, server)
		VALUES ($1, $2, $3, 'server', $4, $5, $6, $7, $8, $9, $10, 'pending', $11, nullif($12, ''), $13)
		ON CONFLICT (application_id) DO NOTHING`,
		c.ID, c.ApplicationID, c.ApplicantID, c.Kind, c.PreviousCertificateID, c.CorrelationID, c.NameEn,
		c.OrganizationEn, c.Email, c.Language, c.CreatedAt, c.CustomerID, c.Server)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Precert is a stored precertificate.
type Precert struct {
	Serial    string
	DER       []byte
	NotBefore time.Time
	NotAfter  time.Time
	CreatedAt time.Time
}

// SavePrecert commits a precertificate in its own transaction, before it
// is submitted to a log: like its serial (IS-2), it stays on record even
// if the issuing transaction never commits.
func SavePrecert(ctx context.Context, pool *pgxpool.Pool, certificateID uuid.UUID, p Precert) error {
	_, err := pool.Exec(ctx, `INSERT INTO precertificates (serial, certificate_id, der, not_before, not_after, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, p.Serial, certificateID, p.DER, p.NotBefore, p.NotAfter, p.CreatedAt)
	return err
}

// LatestPrecert is the certificate's newest precertificate; ErrNotFound
// when it has none.
func LatestPrecert(ctx context.Context, q Q, certificateID uuid.UUID) (*Precert, error) {
	var p Precert
	err := q.QueryRow(ctx, `SELECT serial, der, not_before, not_after, created_at FROM precertificates
		WHERE certificate_id = $1 ORDER BY created_at DESC, serial LIMIT 1`, certificateID).
		Scan(&p.Serial, &p.DER, &p.NotBefore, &p.NotAfter, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &p, err
}

// StoredSCT is an SCT as kept: TLS-encoded, with its log.
type StoredSCT struct {
	LogID  []byte
	LogURL string
	SCT    []byte
}

// SaveSCT commits a verified SCT in its own transaction as soon as it
// arrives, so that a later attempt does not ask that log again.
func SaveSCT(ctx context.Context, pool *pgxpool.Pool, serial string, s StoredSCT, at time.Time) error {
	_, err := pool.Exec(ctx, `INSERT INTO scts (serial, log_id, log_url, sct, received_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (serial, log_id) DO NOTHING`, serial, s.LogID, s.LogURL, s.SCT, at)
	return err
}

// SCTs are the SCTs kept for a precertificate, in the order received.
func SCTs(ctx context.Context, q Q, serial string) ([]StoredSCT, error) {
	rows, err := q.Query(ctx, `SELECT log_id, log_url, sct FROM scts WHERE serial = $1 ORDER BY received_at, log_id`, serial)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredSCT, error) {
		var s StoredSCT
		err := r.Scan(&s.LogID, &s.LogURL, &s.SCT)
		return s, err
	})
}

// IssuedServer records a signed server certificate.
func IssuedServer(ctx context.Context, q Q, id uuid.UUID, serial, issuer string, notBefore, notAfter time.Time,
	der []byte, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE certificates SET status = 'issued', serial = $2, issuer = $3,
		not_before = $4, not_after = $5, der = $6, issued_at = $7, issuance_attempts = issuance_attempts + 1,
		issuance_failure = NULL, spki_sha256 = $8 WHERE id = $1`, id, serial, issuer, notBefore, notAfter, der, at, SPKISHA256(der))
	return err
}

// Failure is one failed issuance attempt.
type Failure struct {
	ID            int64           `json:"id"`
	CertificateID uuid.UUID       `json:"certificate_id"`
	ApplicationID string          `json:"application_id"`
	At            time.Time       `json:"at"`
	Stage         string          `json:"stage"`
	Detail        string          `json:"detail"`
	Attempt       int             `json:"attempt"`
	Final         bool            `json:"final"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	Serial        string          `json:"serial,omitempty"`
	Logs          json.RawMessage `json:"logs,omitempty"`
}

// RecordFailure stores a failed attempt and the certificate's new state:
// still pending when another attempt follows, failed when it is final.
func RecordFailure(ctx context.Context, q Q, f Failure) error {
	var logs []byte
	if len(f.Logs) > 0 {
		logs = f.Logs
	}
	if _, err := q.Exec(ctx, `INSERT INTO issuance_failures (certificate_id, application_id, at, stage, detail, attempt,
		final, next_attempt_at, serial, logs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, nullif($9, ''), $10)`,
		f.CertificateID, f.ApplicationID, f.At, f.Stage, f.Detail, f.Attempt, f.Final, f.NextAttemptAt, f.Serial, logs); err != nil {
		return err
	}
	status := StatusPending
	if f.Final {
		status = StatusFailed
	}
	_, err := q.Exec(ctx, `UPDATE certificates SET status = $2, issuance_attempts = $3, issuance_failure = $4 WHERE id = $1`,
		f.CertificateID, status, f.Attempt, f.Stage+": "+f.Detail)
	return err
}

// FailureFilter selects failures for ListFailures.
type FailureFilter struct {
	CertificateID *uuid.UUID
	ApplicationID string
	FinalOnly     bool
	Before        int64 // id < Before (paging, newest first); 0 = from the newest
	Limit         int
}

// ListFailures lists failed attempts, newest first.
func ListFailures(ctx context.Context, q Q, f FailureFilter) ([]Failure, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	rows, err := q.Query(ctx, `SELECT id, certificate_id, application_id, at, stage, detail, attempt, final,
		next_attempt_at, coalesce(serial, ''), logs FROM issuance_failures
		WHERE ($1::uuid IS NULL OR certificate_id = $1) AND ($2 = '' OR application_id = $2)
		  AND (NOT $3 OR final) AND ($4 = 0 OR id < $4)
		ORDER BY id DESC LIMIT $5`, f.CertificateID, f.ApplicationID, f.FinalOnly, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		var v Failure
		var logs []byte
		err := r.Scan(&v.ID, &v.CertificateID, &v.ApplicationID, &v.At, &v.Stage, &v.Detail, &v.Attempt, &v.Final,
			&v.NextAttemptAt, &v.Serial, &logs)
		v.Logs = logs
		return v, err
	})
}

// Reopen puts a failed server certificate back to pending for an
// operator's retry, with its automatic attempts counted afresh; false
// when it is not a failed server certificate.
func Reopen(ctx context.Context, q Q, id uuid.UUID) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE certificates SET status = 'pending', issuance_attempts = 0 WHERE id = $1 AND product = 'server' AND status = 'failed'`, id)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// HasSuccessor reports whether a renewal or reissue of the certificate is
// recorded and not failed (IS-4: a coverage reissue is announced once).
func HasSuccessor(ctx context.Context, q Q, id uuid.UUID) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM certificates WHERE previous_certificate_id = $1
		AND status <> 'failed')`, id).Scan(&ok)
	return ok, err
}
