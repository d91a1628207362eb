package store

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
)

// SPKISHA256 is the SHA-256 of a certificate's SubjectPublicKeyInfo (OP-5),
// nil when der does not parse.
func SPKISHA256(der []byte) []byte {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil
	}
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return h[:]
}

// BackfillSPKI fills spki_sha256 of issued certificates that lack it
// (issued before the column existed), up to limit rows; it returns how
// many it filled.
func BackfillSPKI(ctx context.Context, q Q, limit int) (int, error) {
	rows, err := q.Query(ctx, `SELECT id, der FROM certificates WHERE der IS NOT NULL AND spki_sha256 IS NULL LIMIT $1`, limit)
	if err != nil {
		return 0, err
	}
	type item struct {
		id  uuid.UUID
		der []byte
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (item, error) {
		var it item
		return it, r.Scan(&it.id, &it.der)
	})
	if err != nil {
		return 0, err
	}
	ids := make([]uuid.UUID, 0, len(items))
	hashes := make([][]byte, 0, len(items))
	for _, it := range items {
		h := SPKISHA256(it.der)
		if h == nil {
			h = []byte{} // unparsable: never matches, never looked at again
		}
		ids, hashes = append(ids, it.id), append(hashes, h)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	_, err = q.Exec(ctx, `UPDATE certificates c SET spki_sha256 = v.h
		FROM unnest($1::uuid[], $2::bytea[]) AS v(id, h) WHERE c.id = v.id`, ids, hashes)
	return len(ids), err
}

// MassSelector chooses the certificates of a mass revocation: exactly
// one of its fields is set.
type MassSelector struct {
	Serials         []string `json:"-"`
	Organization    string   `json:"organization,omitempty"`
	PublicKeySHA256 []byte   `json:"-"`
}

// MassRevocation is one row of mass_revocations.
type MassRevocation struct {
	ID               uuid.UUID       `json:"id"`
	Reason           string          `json:"reason"`
	Selector         json.RawMessage `json:"selector"`
	RequestedBy      string          `json:"requested_by"`
	RequestedAt      time.Time       `json:"requested_at"`
	Total            int             `json:"total"`
	Unmatched        int             `json:"unmatched"`
	Revoked          int             `json:"revoked"`
	NoticesQueued    int             `json:"notices_queued"`
	Issuers          []string        `json:"issuers"`
	CRLRegeneratedAt *time.Time      `json:"crl_regenerated_at"`
	CompletedAt      *time.Time      `json:"completed_at"`
}

// revocable is the condition of a certificate a mass revocation takes.
const revocable = `c.status = 'issued' AND c.revoked_at IS NULL`

// CreateMassRevocation records a mass revocation and its items, chosen in
// one statement; it returns the number of items.
func CreateMassRevocation(ctx context.Context, q Q, m *MassRevocation, sel MassSelector) error {
	if _, err := q.Exec(ctx, `INSERT INTO mass_revocations (id, reason, selector, requested_by, requested_at, total)
		VALUES ($1, $2, $3, $4, $5, 0)`, m.ID, m.Reason, m.Selector, m.RequestedBy, m.RequestedAt); err != nil {
		return err
	}
	var (
		cond string
		arg  any
	)
	switch {
	case sel.Serials != nil:
		cond, arg = `c.serial = ANY($2::text[])`, sel.Serials
	case sel.Organization != "":
		cond, arg = `(c.organization_en = $2 OR c.organization_identifier = $2)`, sel.Organization
	case sel.PublicKeySHA256 != nil:
		cond, arg = `c.spki_sha256 = $2`, sel.PublicKeySHA256
	default:
		return errors.New("store: mass revocation without a selector")
	}
	tag, err := q.Exec(ctx, `INSERT INTO mass_revocation_items (mass_revocation_id, certificate_id)
		SELECT $1, c.id FROM certificates c WHERE `+revocable+` AND `+cond, m.ID, arg)
	if err != nil {
		return err
	}
	m.Total = int(tag.RowsAffected())
	if sel.Serials != nil {
		m.Unmatched = len(sel.Serials) - m.Total
	}
	_, err = q.Exec(ctx, `UPDATE mass_revocations SET total = $2, unmatched = $3 WHERE id = $1`, m.ID, m.Total, m.Unmatched)
	return err
}

const massColumns = `id, reason, selector, requested_by, requested_at, total, unmatched, revoked, notices_queued,
	issuers, crl_regenerated_at, completed_at`

func scanMass(row pgx.Row) (*MassRevocation, error) {
	var m MassRevocation
	err := row.Scan(&m.ID, &m.Reason, &m.Selector, &m.RequestedBy, &m.RequestedAt, &m.Total, &m.Unmatched,
		&m.Revoked, &m.NoticesQueued, &m.Issuers, &m.CRLRegeneratedAt, &m.CompletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// GetMassRevocation reads a mass revocation.
func GetMassRevocation(ctx context.Context, q Q, id uuid.UUID) (*MassRevocation, error) {
	return scanMass(q.QueryRow(ctx, `SELECT `+massColumns+` FROM mass_revocations WHERE id = $1`, id))
}

// LockMassRevocation reads and locks a mass revocation for the rest of tx.
func LockMassRevocation(ctx context.Context, q Q, id uuid.UUID) (*MassRevocation, error) {
	return scanMass(q.QueryRow(ctx, `SELECT `+massColumns+` FROM mass_revocations WHERE id = $1 FOR UPDATE`, id))
}

// MassRevoked is a certificate a batch revoked.
type MassRevoked struct {
	ID            uuid.UUID
	ApplicationID string
	Serial        string
	Issuer        string
	Product       string
	Email         string
	Language      string
	RecipientName string
	CorrelationID string
	nameEn        string
	Noticed       bool // this certificate's event carries the subscriber's one notice
	HadPKCS12     bool
	// Listed, on the certificate that carries the notice: every
	// certificate of the subscriber this mass revocation takes — in this
	// batch and in the items still waiting (at most maxListed); ListedTotal
	// counts them all.
	Listed      []ListedCertificate
	ListedTotal int
}

// ListedCertificate is a certificate named in a subscriber's notice.
type ListedCertificate struct {
	Serial, Product, NameEn, Email string
}

// MaxListed bounds the certificates one notice lists.
var MaxListed = events.MaxMassListed

// RevokeMassBatch revokes up to limit items of a mass revocation in one
// statement, drops their waiting PKCS#12 files (no key of a revoked
// certificate is kept) and decides which certificate carries each newly
// seen subscriber's one notice. Items whose certificate was revoked
// meanwhile are dropped without a second revocation.
func RevokeMassBatch(ctx context.Context, q Q, massID uuid.UUID, limit int, reason string, at time.Time, by string) ([]MassRevoked, int, error) {
	rows, err := q.Query(ctx, `WITH batch AS (
			DELETE FROM mass_revocation_items WHERE (mass_revocation_id, certificate_id) IN (
				SELECT mass_revocation_id, certificate_id FROM mass_revocation_items
				WHERE mass_revocation_id = $1 LIMIT $2)
			RETURNING certificate_id)
		UPDATE certificates c SET revoked_at = $3, revocation_reason = $4, revoked_by = $5
		FROM batch WHERE c.id = batch.certificate_id AND `+revocable+`
			RETURNING c.id, c.application_id, c.serial, c.issuer, c.product, c.email, c.language,
			coalesce(c.recipient_name, ''), c.correlation_id, c.name_en`, massID, limit, at, reason, by)
	if err != nil {
		return nil, 0, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MassRevoked, error) {
		var m MassRevoked
		return m, r.Scan(&m.ID, &m.ApplicationID, &m.Serial, &m.Issuer, &m.Product, &m.Email, &m.Language,
			&m.RecipientName, &m.CorrelationID, &m.nameEn)
	})
	if err != nil {
		return nil, 0, err
	}
	var left int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM mass_revocation_items WHERE mass_revocation_id = $1`, massID).Scan(&left); err != nil {
		return nil, 0, err
	}
	if len(out) == 0 {
		return nil, left, nil
	}
	ids := make([]uuid.UUID, len(out))
	emails := make([]string, 0, len(out))
	for i, m := range out {
		ids[i] = m.ID
		if m.Email != "" {
			emails = append(emails, m.Email)
		}
	}
	// PKCS#12 files waiting for download go with the revocation.
	rows, err = q.Query(ctx, `WITH dropped AS (DELETE FROM pkcs12_files WHERE certificate_id = ANY($1) RETURNING certificate_id)
		UPDATE certificates c SET retrieval_status = 'failed', retrieval_failure = 'revoked'
		FROM dropped WHERE c.id = dropped.certificate_id RETURNING c.id`, ids)
	if err != nil {
		return nil, 0, err
	}
	dropped, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, 0, err
	}
	// Each subscriber once per mass revocation (lower-cased e-mail).
	rows, err = q.Query(ctx, `INSERT INTO mass_revocation_notices (mass_revocation_id, email)
		SELECT DISTINCT $1::uuid, lower(e) FROM unnest($2::text[]) AS e
		ON CONFLICT DO NOTHING RETURNING email`, massID, emails)
	if err != nil {
		return nil, 0, err
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, 0, err
	}
	notice := make(map[string]bool, len(fresh))
	for _, e := range fresh {
		notice[e] = true
	}
	had := make(map[uuid.UUID]bool, len(dropped))
	for _, id := range dropped {
		had[id] = true
	}
	lists, err := subscriberLists(ctx, q, massID, out, fresh)
	if err != nil {
		return nil, 0, err
	}
	for i := range out {
		out[i].HadPKCS12 = had[out[i].ID]
		if k := lowerASCII(out[i].Email); notice[k] {
			out[i].Noticed = true
			delete(notice, k)
			all := lists[k]
			out[i].ListedTotal = len(all)
			if len(all) > MaxListed {
				all = all[:MaxListed]
			}
			out[i].Listed = all
		}
	}
	return out, left, nil
}

// subscriberLists gathers, for each subscriber first seen in this batch
// (fresh, lower-cased e-mails), every certificate of theirs the mass
// revocation takes: those of this batch and those still waiting for a
// later batch (one query over the remaining selection), so that the one
// notice names them all even when they span batches. A subscriber seen
// in an earlier batch already had all of theirs listed then.
func subscriberLists(ctx context.Context, q Q, massID uuid.UUID, batch []MassRevoked, fresh []string) (map[string][]ListedCertificate, error) {
	lists := make(map[string][]ListedCertificate, len(fresh))
	if len(fresh) == 0 {
		return lists, nil
	}
	want := make(map[string]bool, len(fresh))
	for _, e := range fresh {
		want[e] = true
	}
	for _, m := range batch {
		if k := lowerASCII(m.Email); want[k] {
			lists[k] = append(lists[k], ListedCertificate{Serial: m.Serial, Product: m.Product, NameEn: m.nameEn, Email: m.Email})
		}
	}
	rows, err := q.Query(ctx, `SELECT lower(c.email), c.serial, c.product, c.name_en, c.email
		FROM mass_revocation_items i JOIN certificates c ON c.id = i.certificate_id
		WHERE i.mass_revocation_id = $1 AND lower(c.email) = ANY($2::text[]) AND `+revocable+`
		ORDER BY c.serial`, massID, fresh)
	if err != nil {
		return nil, err
	}
	var k string
	var l ListedCertificate
	_, err = pgx.ForEachRow(rows, []any{&k, &l.Serial, &l.Product, &l.NameEn, &l.Email}, func() error {
		lists[k] = append(lists[k], l)
		return nil
	})
	return lists, err
}

// lowerASCII lower-cases as Postgres' lower() does for the ASCII e-mail
// addresses the platform accepts.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// MassProgress adds a batch's counts to a mass revocation.
func MassProgress(ctx context.Context, q Q, id uuid.UUID, revoked, notices int, issuers []string) error {
	_, err := q.Exec(ctx, `UPDATE mass_revocations SET revoked = revoked + $2, notices_queued = notices_queued + $3,
		issuers = ARRAY(SELECT DISTINCT unnest(issuers || $4::text[]) ORDER BY 1) WHERE id = $1`, id, revoked, notices, issuers)
	return err
}

// MassCompleted marks a mass revocation done; crl is when the CRLs were
// regenerated (nil when it revoked nothing).
func MassCompleted(ctx context.Context, q Q, id uuid.UUID, at time.Time, crl *time.Time) error {
	_, err := q.Exec(ctx, `UPDATE mass_revocations SET completed_at = $2, crl_regenerated_at = $3 WHERE id = $1`, id, at, crl)
	return err
}

// OutboxRow is one event for EmitMany.
type OutboxRow struct {
	EventID uuid.UUID
	Subject string
	Payload []byte
}

// EmitMany writes many events to the outbox in one statement (the
// set-based form of bus.Emit) and wakes the relay on commit.
func EmitMany(ctx context.Context, tx pgx.Tx, rows []OutboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(rows))
	subjects := make([]string, len(rows))
	payloads := make([][]byte, len(rows))
	for i, r := range rows {
		ids[i], subjects[i], payloads[i] = r.EventID, r.Subject, r.Payload
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, subject, payload)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])`, ids, subjects, payloads); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '_outbox', '')`)
	return err
}

// CancelTimers removes timers of one kind by key, in one statement.
func CancelTimers(ctx context.Context, q Q, kind string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, `DELETE FROM timers WHERE kind = $1 AND key = ANY($2)`, kind, keys)
	return err
}

// KeyCompromised says whether a certificate of this public key (the
// SHA-256 of its DER SubjectPublicKeyInfo) was revoked for key compromise:
// no certificate is issued for such a key again (TLS BR 6.1.1.3, SBR
// 6.1.1.3, 4.9.1.1).
func KeyCompromised(ctx context.Context, q Q, spki []byte) (bool, error) {
	var yes bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM certificates WHERE spki_sha256 = $1 AND revocation_reason = 'keyCompromise')`,
		spki).Scan(&yes)
	return yes, err
}
