// Package store is the notifier's Postgres: the delivery queue and log,
// the certificates it tracks for reminders, and the reminder log. Every
// function that changes state takes the use case's transaction;
// UpdateDelivery hides the row lock and the write.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// InsertDelivery queues a message unless one with its Message-ID exists.
// It reports whether the row is new.
func InsertDelivery(ctx context.Context, tx pgx.Tx, r domain.Request, now time.Time) (bool, error) {
	data, err := json.Marshal(r.Data)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO deliveries
		(message_id, reason, recipient, language, subject_id, caused_by, correlation_id, data, sealed_code,
		 sealed_links, sealed_setup, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
		ON CONFLICT (message_id) DO NOTHING`,
		r.MessageID(), r.Reason, domain.NormalizeRecipient(r.Recipient), domain.Language(r.Language),
		r.SubjectID, r.CausedBy, r.Correlation, data, nonEmpty(r.SealedCode), nonEmpty(r.SealedLinks),
		nonEmpty(r.SealedSetup), now)
	if err != nil {
		return false, fmt.Errorf("insert delivery: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

const deliveryColumns = `id, message_id, reason, recipient, language, subject_id, caused_by::text, correlation_id,
	data, sealed_code, sealed_links, sealed_setup, status, attempts, last_error, next_attempt_at, created_at, sent_at, failed_at`

// nonEmpty is b, or NULL when empty.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func scanDelivery(row pgx.Row) (domain.Delivery, error) {
	var d domain.Delivery
	var data []byte
	err := row.Scan(&d.ID, &d.MessageID, &d.Reason, &d.Recipient, &d.Language, &d.SubjectID, &d.CausedBy,
		&d.CorrelationID, &data, &d.SealedCode, &d.SealedLinks, &d.SealedSetup, &d.Status, &d.Attempts, &d.LastError, &d.NextAttemptAt,
		&d.CreatedAt, &d.SentAt, &d.FailedAt)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(data, &d.Data); err != nil {
		return d, fmt.Errorf("delivery %s data: %w", d.MessageID, err)
	}
	return d, nil
}

// UpdateDelivery is the repository update of a queued message: it reads
// the delivery by Message-ID and locks it until tx ends (replicas never
// work on one message at once), lets fn act on it, and writes back what
// fn changed of its state. A missing delivery is a not-found error.
func UpdateDelivery(ctx context.Context, tx pgx.Tx, messageID string, fn func(*domain.Delivery) error) error {
	d, err := scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE message_id = $1 FOR UPDATE`, messageID))
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.NotFound("no such delivery")
	}
	if err != nil {
		return err
	}
	before := stateOf(d)
	if err := fn(&d); err != nil {
		return err
	}
	if stateOf(d) == before {
		return nil
	}
	_, err = tx.Exec(ctx, `UPDATE deliveries SET status = $2, attempts = $3, last_error = $4, next_attempt_at = $5,
		sent_at = $6, failed_at = $7, sealed_code = $8, sealed_links = $9, sealed_setup = $10 WHERE id = $1`,
		d.ID, d.Status, d.Attempts, d.LastError, d.NextAttemptAt, d.SentAt, d.FailedAt, d.SealedCode,
		d.SealedLinks, d.SealedSetup)
	if err != nil {
		return fmt.Errorf("update delivery: %w", err)
	}
	return nil
}

// state is what a send changes of a delivery, in a comparable form. The
// sealed secrets only ever go, together, so whether the code or the links
// are there says enough.
type state struct {
	status, lastError  string
	attempts           int
	next, sent, failed time.Time
	sealed             bool
	sealedLinks        bool
}

func stateOf(d domain.Delivery) state {
	return state{
		status: d.Status, lastError: deref(d.LastError), attempts: d.Attempts,
		next: tval(d.NextAttemptAt), sent: tval(d.SentAt), failed: tval(d.FailedAt), sealed: d.SealedCode != nil,
		sealedLinks: d.SealedLinks != nil || d.SealedSetup != nil,
	}
}

func tval(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// Filter selects deliveries for the ops listing.
type Filter struct {
	Recipient string
	Reason    string
	Status    string
	Limit     int
}

// ListDeliveries returns the newest deliveries matching f.
func ListDeliveries(ctx context.Context, q db.Querier, f Filter) ([]domain.Delivery, error) {
	rows, err := q.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE ($1 = '' OR recipient = $1) AND ($2 = '' OR reason = $2) AND ($3 = '' OR status = $3)
		ORDER BY id DESC LIMIT $4`, domain.NormalizeRecipient(f.Recipient), f.Reason, f.Status, f.Limit)
	if err != nil {
		return nil, err
	}
	out := []domain.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		d.SealedCode, d.SealedLinks, d.SealedSetup = nil, nil, nil
		out = append(out, d)
	}
	return out, rows.Err()
}

// PruneDeliveries deletes at most limit deliveries that were sent or
// given up before before, oldest first, and reports how many it deleted.
// Pending messages are never pruned. A pruned message can no longer stop
// a duplicate: before must be older than anything the bus may still
// redeliver or republish (the inbox keeps that longer).
func PruneDeliveries(ctx context.Context, q db.Querier, before time.Time, limit int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM deliveries WHERE id IN (
		SELECT id FROM deliveries WHERE status <> 'pending' AND coalesce(sent_at, failed_at) < $1
		ORDER BY coalesce(sent_at, failed_at) LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Offsets returns the reminder offsets of a product, largest first.
func Offsets(ctx context.Context, tx pgx.Tx, product string) ([]int, error) {
	rows, err := tx.Query(ctx, `SELECT days_before FROM reminder_offsets WHERE product = $1 ORDER BY days_before DESC`, product)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// UpsertIssued records what CertificateIssued says of a certificate,
// keeping facts (revocation, renewal) that may have arrived before it.
// CertificateImported uses it too (Imported set). A sealed setup link is
// kept only when given (it rides with the first notice).
func UpsertIssued(ctx context.Context, tx pgx.Tx, c domain.Certificate, sealedSetup []byte, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO certificates
		(certificate_id, applicant_id, product, email, language, not_after, correlation_id, updated_at,
		 customer_id, common_name, imported, sealed_setup_link)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (certificate_id) DO UPDATE SET applicant_id = EXCLUDED.applicant_id, product = EXCLUDED.product,
			email = EXCLUDED.email, language = EXCLUDED.language, not_after = EXCLUDED.not_after,
			correlation_id = EXCLUDED.correlation_id, updated_at = EXCLUDED.updated_at,
			customer_id = EXCLUDED.customer_id, common_name = EXCLUDED.common_name, imported = EXCLUDED.imported,
			sealed_setup_link = coalesce(EXCLUDED.sealed_setup_link, certificates.sealed_setup_link)`,
		c.ID, c.ApplicantID, c.Product, c.Email, c.Language, c.NotAfter, c.CorrelationID, now,
		c.CustomerID, c.CommonName, c.Imported, nonEmpty(sealedSetup))
	return err
}

// MarkDeclined records that the customer declined the renewal (SV-2;
// idempotent, the first time is kept).
func MarkDeclined(ctx context.Context, tx pgx.Tx, certificateID string, at, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO certificates (certificate_id, declined_at, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (certificate_id) DO UPDATE SET declined_at = coalesce(certificates.declined_at, EXCLUDED.declined_at),
			updated_at = EXCLUDED.updated_at`, certificateID, at, now)
	return err
}

// SetupLink is the sealed password setup link recorded with an imported
// certificate, nil when none rides with its notice.
func SetupLink(ctx context.Context, tx pgx.Tx, certificateID string) ([]byte, error) {
	var sealed []byte
	err := tx.QueryRow(ctx, `SELECT sealed_setup_link FROM certificates WHERE certificate_id = $1`, certificateID).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return sealed, err
}

// ClearSetupLink forgets the sealed setup link of a certificate once a
// notice carries it.
func ClearSetupLink(ctx context.Context, tx pgx.Tx, certificateID string) error {
	_, err := tx.Exec(ctx, `UPDATE certificates SET sealed_setup_link = NULL WHERE certificate_id = $1`, certificateID)
	return err
}

// CertificateFacts reads a certificate without locking it (mails about
// it); a certificate never seen is the zero value with its ID.
func CertificateFacts(ctx context.Context, tx pgx.Tx, certificateID string) (domain.Certificate, error) {
	c, err := readCertificate(ctx, tx, certificateID, "")
	if errs.Is(err, errs.KindNotFound) {
		return domain.Certificate{ID: certificateID}, nil
	}
	return c, err
}

// MarkRevoked records a revocation (idempotent; the first time is kept).
func MarkRevoked(ctx context.Context, tx pgx.Tx, certificateID string, at, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO certificates (certificate_id, revoked_at, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (certificate_id) DO UPDATE SET revoked_at = coalesce(certificates.revoked_at, EXCLUDED.revoked_at),
			updated_at = EXCLUDED.updated_at`, certificateID, at, now)
	return err
}

// MarkRenewed records that a renewal of certificateID was retrieved.
func MarkRenewed(ctx context.Context, tx pgx.Tx, certificateID, renewalID string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO certificates (certificate_id, renewed_by, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (certificate_id) DO UPDATE SET renewed_by = coalesce(certificates.renewed_by, EXCLUDED.renewed_by),
			updated_at = EXCLUDED.updated_at`, certificateID, renewalID, now)
	return err
}

// LockCertificate reads a certificate and locks it until tx ends, so that
// a reminder decision and a concurrent revocation or renewal serialize.
func LockCertificate(ctx context.Context, tx pgx.Tx, certificateID string) (domain.Certificate, error) {
	return readCertificate(ctx, tx, certificateID, " FOR UPDATE")
}

func readCertificate(ctx context.Context, tx pgx.Tx, certificateID, lock string) (domain.Certificate, error) {
	var c domain.Certificate
	var applicant, product, email, lang, corr, renewed, customer, cn *string
	var notAfter, revoked, declined *time.Time
	err := tx.QueryRow(ctx, `SELECT certificate_id, applicant_id, product, email, language, not_after, correlation_id,
		revoked_at, renewed_by, customer_id, common_name, imported, declined_at
		FROM certificates WHERE certificate_id = $1`+lock, certificateID).
		Scan(&c.ID, &applicant, &product, &email, &lang, &notAfter, &corr, &revoked, &renewed,
			&customer, &cn, &c.Imported, &declined)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, errs.NotFound("no such certificate")
	}
	if err != nil {
		return c, err
	}
	c.ApplicantID, c.Product, c.Email, c.Language = deref(applicant), deref(product), deref(email), deref(lang)
	c.CorrelationID, c.RenewedBy = deref(corr), deref(renewed)
	if notAfter != nil {
		c.NotAfter = *notAfter
	}
	if revoked != nil {
		c.RevokedAt = *revoked
	}
	if declined != nil {
		c.DeclinedAt = *declined
	}
	c.CustomerID, c.CommonName = deref(customer), deref(cn)
	return c, nil
}

// CertificateProduct is the product of a certificate, "" while unknown.
func CertificateProduct(ctx context.Context, tx pgx.Tx, certificateID string) (string, error) {
	var product string
	err := tx.QueryRow(ctx, `SELECT coalesce(product, '') FROM certificates WHERE certificate_id = $1`, certificateID).Scan(&product)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return product, err
}

// ReminderSent reports whether the reminder already went out: a certificate
// seen again (a republished CertificateIssued) must not get it twice, each
// RenewalDue making intake replace the applicant's code.
func ReminderSent(ctx context.Context, tx pgx.Tx, certificateID string, daysBefore int) (bool, error) {
	var sent bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reminders WHERE certificate_id = $1 AND days_before = $2
		AND outcome = 'sent')`, certificateID, daysBefore).Scan(&sent)
	return sent, err
}

// RecordReminder logs a fired reminder, sent or suppressed with why.
func RecordReminder(ctx context.Context, tx pgx.Tx, certificateID string, daysBefore int, due, fired time.Time, why string) error {
	outcome, whyArg := "sent", any(nil)
	if why != "" {
		outcome, whyArg = "suppressed", why
	}
	_, err := tx.Exec(ctx, `INSERT INTO reminders (certificate_id, days_before, due_at, fired_at, outcome, why)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (certificate_id, days_before) DO UPDATE SET due_at = EXCLUDED.due_at, fired_at = EXCLUDED.fired_at,
			outcome = EXCLUDED.outcome, why = EXCLUDED.why`,
		certificateID, daysBefore, due, fired, outcome, whyArg)
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// RecordOrder keeps what the mails need of an order (idempotent; an
// application named later fills the gap).
func RecordOrder(ctx context.Context, tx pgx.Tx, orderID, applicationID, kind, source string, placedAt time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO orders (order_id, application_id, kind, source, placed_at)
		VALUES ($1, nullif($2, ''), $3, $4, $5)
		ON CONFLICT (order_id) DO UPDATE SET application_id = coalesce(orders.application_id, EXCLUDED.application_id)`,
		orderID, applicationID, kind, source, placedAt)
	return err
}

// OrderApplication is the application an order was placed with, "" when
// none (or the order was never seen).
func OrderApplication(ctx context.Context, tx pgx.Tx, orderID string) (string, error) {
	var app *string
	err := tx.QueryRow(ctx, `SELECT application_id FROM orders WHERE order_id = $1`, orderID).Scan(&app)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return deref(app), err
}
