package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/certlife/platform/services/intake/internal/acme"
)

// The ACME server's tables (SPEC §4.10; migration 00005_acme).

// ACMEInsertNonce stores a fresh nonce.
func ACMEInsertNonce(ctx context.Context, q Q, nonce string, expires time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO acme_nonces (nonce, expires_at) VALUES ($1, $2)`, nonce, expires)
	return err
}

// ACMEUseNonce consumes a nonce: true if it existed and had not expired.
func ACMEUseNonce(ctx context.Context, q Q, nonce string, now time.Time) (bool, error) {
	var exp time.Time
	err := q.QueryRow(ctx, `DELETE FROM acme_nonces WHERE nonce = $1 RETURNING expires_at`, nonce).Scan(&exp)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return exp.After(now), nil
}

// ACMEInsertEABKey stores an EAB key.
func ACMEInsertEABKey(ctx context.Context, q Q, k acme.EABKey) error {
	prof, err := json.Marshal(k.Profile)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO acme_eab_keys (kid, customer_id, sealed_key, profile, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, k.KID, k.CustomerID, k.SealedKey, prof, k.CreatedBy, k.CreatedAt)
	return err
}

// ACMEEABKey reads an EAB key (FOR UPDATE when lock).
func ACMEEABKey(ctx context.Context, q Q, kid string, lock bool) (acme.EABKey, error) {
	sql := `SELECT kid, customer_id, sealed_key, profile, created_by, created_at, account_id FROM acme_eab_keys WHERE kid = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var k acme.EABKey
	var prof []byte
	err := q.QueryRow(ctx, sql, kid).Scan(&k.KID, &k.CustomerID, &k.SealedKey, &prof, &k.CreatedBy, &k.CreatedAt, &k.AccountID)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, ErrNotFound
	}
	if err != nil {
		return k, err
	}
	return k, json.Unmarshal(prof, &k.Profile)
}

// ACMEBindEABKey records the account an EAB key was used for.
func ACMEBindEABKey(ctx context.Context, q Q, kid string, account uuid.UUID) error {
	_, err := q.Exec(ctx, `UPDATE acme_eab_keys SET account_id = $2 WHERE kid = $1`, kid, account)
	return err
}

const acmeAccountColumns = `id, thumbprint, jwk, contact, status, customer_id, coalesce(eab_kid, ''), created_at`

func acmeScanAccount(r pgx.Row) (acme.Account, error) {
	var a acme.Account
	var contact []byte
	err := r.Scan(&a.ID, &a.Thumbprint, &a.JWK, &contact, &a.Status, &a.CustomerID, &a.EABKID, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(contact, &a.Contact)
}

// ACMEInsertAccount stores an account; ErrACMEConflict if its key has one.
func ACMEInsertAccount(ctx context.Context, q Q, a acme.Account) error {
	contact, err := json.Marshal(a.Contact)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO acme_accounts (id, thumbprint, jwk, contact, status, customer_id, eab_kid, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8)`, a.ID, a.Thumbprint, a.JWK, contact, a.Status, a.CustomerID, a.EABKID, a.CreatedAt)
	if acmeIsUnique(err) {
		return ErrACMEConflict
	}
	return err
}

// ErrACMEConflict: a unique key is taken.
var ErrACMEConflict = errors.New("conflict")

// ACMEAccountByThumbprint finds the account of a key.
func ACMEAccountByThumbprint(ctx context.Context, q Q, thumb string) (acme.Account, error) {
	return acmeScanAccount(q.QueryRow(ctx, `SELECT `+acmeAccountColumns+` FROM acme_accounts WHERE thumbprint = $1`, thumb))
}

// ACMEAccount reads an account (FOR UPDATE when lock).
func ACMEAccount(ctx context.Context, q Q, id uuid.UUID, lock bool) (acme.Account, error) {
	sql := `SELECT ` + acmeAccountColumns + ` FROM acme_accounts WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	return acmeScanAccount(q.QueryRow(ctx, sql, id))
}

// ACMEUpdateAccount writes an account's key, contact and status.
func ACMEUpdateAccount(ctx context.Context, q Q, a acme.Account) error {
	contact, err := json.Marshal(a.Contact)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `UPDATE acme_accounts SET thumbprint = $2, jwk = $3, contact = $4, status = $5 WHERE id = $1`,
		a.ID, a.Thumbprint, a.JWK, contact, a.Status)
	if acmeIsUnique(err) {
		return ErrACMEConflict
	}
	return err
}

const acmeAuthzColumns = `id, account_id, domain, wildcard, status, expires_at, challenges, created_at`

func acmeScanAuthz(r pgx.Row) (acme.Authz, error) {
	var a acme.Authz
	var ch []byte
	err := r.Scan(&a.ID, &a.AccountID, &a.Domain, &a.Wildcard, &a.Status, &a.ExpiresAt, &ch, &a.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(ch, &a.Challenges)
}

// ACMEInsertAuthz stores an authorization.
func ACMEInsertAuthz(ctx context.Context, q Q, a acme.Authz) error {
	ch, err := json.Marshal(a.Challenges)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO acme_authzs (`+acmeAuthzColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		a.ID, a.AccountID, a.Domain, a.Wildcard, a.Status, a.ExpiresAt, ch, a.CreatedAt)
	return err
}

// ACMEAuthz reads an authorization (FOR UPDATE when lock).
func ACMEAuthz(ctx context.Context, q Q, id uuid.UUID, lock bool) (acme.Authz, error) {
	sql := `SELECT ` + acmeAuthzColumns + ` FROM acme_authzs WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	return acmeScanAuthz(q.QueryRow(ctx, sql, id))
}

// ACMEAuthzs reads authorizations by ID, in the order given.
func ACMEAuthzs(ctx context.Context, q Q, ids []uuid.UUID) ([]acme.Authz, error) {
	rows, err := q.Query(ctx, `SELECT `+acmeAuthzColumns+` FROM acme_authzs WHERE id = ANY($1) ORDER BY array_position($1, id)`, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (acme.Authz, error) { return acmeScanAuthz(r) })
}

// ACMEReusableAuthz finds a valid (or pending) authorization of the account
// for the name that is still good at least until.
func ACMEReusableAuthz(ctx context.Context, q Q, account uuid.UUID, domain string, wildcard bool, until time.Time) (acme.Authz, error) {
	return acmeScanAuthz(q.QueryRow(ctx, `SELECT `+acmeAuthzColumns+` FROM acme_authzs
		WHERE account_id = $1 AND domain = $2 AND wildcard = $3 AND status IN ('valid', 'pending') AND expires_at > $4
		ORDER BY status = 'valid' DESC, expires_at DESC LIMIT 1`, account, domain, wildcard, until))
}

// ACMEUpdateAuthz writes an authorization's status and challenges.
func ACMEUpdateAuthz(ctx context.Context, q Q, a acme.Authz) error {
	ch, err := json.Marshal(a.Challenges)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `UPDATE acme_authzs SET status = $2, expires_at = $3, challenges = $4 WHERE id = $1`,
		a.ID, a.Status, a.ExpiresAt, ch)
	return err
}

const acmeOrderColumns = `id, account_id, status, identifiers, authz_ids, expires_at, coalesce(replaces, ''), error,
	application_id, coalesce(certificate_id, ''), created_at, updated_at`

func acmeScanOrder(r pgx.Row) (acme.Order, error) {
	var o acme.Order
	var ids, prob []byte
	err := r.Scan(&o.ID, &o.AccountID, &o.Status, &ids, &o.AuthzIDs, &o.ExpiresAt, &o.Replaces, &prob,
		&o.ApplicationID, &o.CertificateID, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, err
	}
	if len(prob) > 0 {
		o.Error = &acme.Problem{}
		if err := json.Unmarshal(prob, o.Error); err != nil {
			return o, err
		}
	}
	return o, json.Unmarshal(ids, &o.Identifiers)
}

// ACMEInsertOrder stores an order.
func ACMEInsertOrder(ctx context.Context, q Q, o acme.Order) error {
	ids, err := json.Marshal(o.Identifiers)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO acme_orders (id, account_id, status, identifiers, authz_ids, expires_at, replaces,
		created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8, $8)`,
		o.ID, o.AccountID, o.Status, ids, o.AuthzIDs, o.ExpiresAt, o.Replaces, o.CreatedAt)
	return err
}

// ACMEOrder reads an order (FOR UPDATE when lock).
func ACMEOrder(ctx context.Context, q Q, id uuid.UUID, lock bool) (acme.Order, error) {
	sql := `SELECT ` + acmeOrderColumns + ` FROM acme_orders WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	return acmeScanOrder(q.QueryRow(ctx, sql, id))
}

// ACMEOrdersWithAuthz lists the pending orders that hold an authorization,
// locked.
func ACMEOrdersWithAuthz(ctx context.Context, q Q, authz uuid.UUID) ([]acme.Order, error) {
	rows, err := q.Query(ctx, `SELECT `+acmeOrderColumns+` FROM acme_orders WHERE authz_ids @> ARRAY[$1]::uuid[]
		AND status IN ('pending', 'ready') ORDER BY id FOR UPDATE`, authz)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (acme.Order, error) { return acmeScanOrder(r) })
}

// ACMEAccountOrders lists an account's order IDs, newest first.
func ACMEAccountOrders(ctx context.Context, q Q, account uuid.UUID, limit int) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT id FROM acme_orders WHERE account_id = $1 AND status IN ('pending','ready','processing','valid')
		ORDER BY created_at DESC LIMIT $2`, account, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// ACMEUpdateOrder writes an order's status, error and certificate.
func ACMEUpdateOrder(ctx context.Context, q Q, o acme.Order) error {
	var prob []byte
	if o.Error != nil {
		var err error
		if prob, err = json.Marshal(o.Error); err != nil {
			return err
		}
	}
	_, err := q.Exec(ctx, `UPDATE acme_orders SET status = $2, error = $3, certificate_id = nullif($4, ''), updated_at = $5,
		application_id = $6 WHERE id = $1`,
		o.ID, o.Status, prob, o.CertificateID, o.UpdatedAt, o.ApplicationID)
	return err
}

const acmeCertColumns = `id, order_id, account_id, serial, cert_id, pem_chain, not_before, not_after, revoked_at,
	coalesce(revoked_reason, ''), replace_early, coalesce(replace_reason, ''), replaced_by`

func acmeScanCert(r pgx.Row) (acme.Certificate, error) {
	var c acme.Certificate
	err := r.Scan(&c.ID, &c.OrderID, &c.AccountID, &c.Serial, &c.CertID, &c.PEMChain, &c.NotBefore, &c.NotAfter,
		&c.RevokedAt, &c.RevokedReason, &c.ReplaceEarly, &c.ReplaceReason, &c.ReplacedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// ACMEInsertCertificate records an ACME order's certificate; false if it was
// recorded before.
func ACMEInsertCertificate(ctx context.Context, q Q, c acme.Certificate) (bool, error) {
	t, err := q.Exec(ctx, `INSERT INTO acme_certificates (id, order_id, account_id, serial, cert_id, pem_chain, not_before, not_after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		c.ID, c.OrderID, c.AccountID, c.Serial, c.CertID, c.PEMChain, c.NotBefore, c.NotAfter)
	return t.RowsAffected() == 1, err
}

// ACMECertificateBy reads a certificate by one of its keys: "id", "serial",
// "cert_id" or "order_id".
func ACMECertificateBy(ctx context.Context, q Q, column string, value any, lock bool) (acme.Certificate, error) {
	switch column {
	case "id", "serial", "cert_id", "order_id":
	default:
		return acme.Certificate{}, errors.New("store: no such certificate key " + column)
	}
	sql := `SELECT ` + acmeCertColumns + ` FROM acme_certificates WHERE ` + column + ` = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	return acmeScanCert(q.QueryRow(ctx, sql, value))
}

// ACMEUpdateCertificate writes revocation, early replacement and replacement.
func ACMEUpdateCertificate(ctx context.Context, q Q, c acme.Certificate) error {
	_, err := q.Exec(ctx, `UPDATE acme_certificates SET revoked_at = $2, revoked_reason = nullif($3, ''),
		replace_early = $4, replace_reason = nullif($5, ''), replaced_by = $6 WHERE id = $1`,
		c.ID, c.RevokedAt, c.RevokedReason, c.ReplaceEarly, c.ReplaceReason, c.ReplacedBy)
	return err
}

func acmeIsUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// ACMEOrderByApplication finds the order an application was made for, locked.
func ACMEOrderByApplication(ctx context.Context, q Q, application uuid.UUID) (acme.Order, error) {
	return acmeScanOrder(q.QueryRow(ctx, `SELECT `+acmeOrderColumns+` FROM acme_orders WHERE application_id = $1 FOR UPDATE`, application))
}
