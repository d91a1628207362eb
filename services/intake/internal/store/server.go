package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/certlife/platform/services/intake/internal/domain"
)

// ErrExists: a unique row (a customer's e-mail, an imported serial, a
// notice's order) already exists.
var ErrExists = errors.New("already exists")

func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// --- customers ---

const customerColumns = `id, email, name, language, password_hash`

func scanCustomer(r pgx.Row) (domain.Customer, error) {
	var c domain.Customer
	err := r.Scan(&c.ID, &c.Email, &c.Name, &c.Language, &c.PasswordHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	return c, err
}

// InsertCustomer stores a new customer; ErrExists when the e-mail is taken.
func InsertCustomer(ctx context.Context, q Q, c domain.Customer, now time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO customers (id, email, name, language, password_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.ID, c.Email, c.Name, c.Language, c.PasswordHash, now)
	if uniqueViolation(err) {
		return ErrExists
	}
	return err
}

// CustomerByEmail reads the customer with that e-mail.
func CustomerByEmail(ctx context.Context, q Q, email string) (domain.Customer, error) {
	return scanCustomer(q.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE email = $1`, email))
}

// GetCustomer reads one customer.
func GetCustomer(ctx context.Context, q Q, id uuid.UUID) (domain.Customer, error) {
	return scanCustomer(q.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, id))
}

// SetCustomerPassword stores the customer's password hash.
func SetCustomerPassword(ctx context.Context, q Q, id uuid.UUID, hash string) error {
	_, err := q.Exec(ctx, `UPDATE customers SET password_hash = $2 WHERE id = $1`, id, hash)
	return err
}

// InsertSetupToken stores the hash of a one-time password-setup token.
func InsertSetupToken(ctx context.Context, q Q, hash []byte, customer uuid.UUID, expires time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO customer_setup_tokens (token_hash, customer_id, expires_at) VALUES ($1, $2, $3)`,
		hash, customer, expires)
	return err
}

// UseSetupToken consumes a live token and returns its customer; every
// other token of the customer stops working too.
func UseSetupToken(ctx context.Context, q Q, hash []byte, now time.Time) (uuid.UUID, error) {
	var id uuid.UUID
	err := q.QueryRow(ctx, `UPDATE customer_setup_tokens SET used_at = $2
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING customer_id`, hash, now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, ErrNotFound
	}
	if err != nil {
		return id, err
	}
	_, err = q.Exec(ctx, `UPDATE customer_setup_tokens SET used_at = $2 WHERE customer_id = $1 AND used_at IS NULL`, id, now)
	return id, err
}

// --- server certificates ---

const serverCertColumns = `id, customer_id, imported, application_id, order_id, common_name, organization, locality,
	state, country, dns_names, serial, issuer_dn, not_before, not_after, coverage_end, registry_org,
	renew_intent_at, declined_at, created_at`

func scanServerCert(r pgx.Row) (domain.ServerCertificate, error) {
	var c domain.ServerCertificate
	var names, org []byte
	err := r.Scan(&c.ID, &c.CustomerID, &c.Imported, &c.ApplicationID, &c.OrderID, &c.DN.CommonName, &c.DN.Organization,
		&c.DN.Locality, &c.DN.State, &c.DN.Country, &names, &c.Serial, &c.IssuerDN, &c.NotBefore, &c.NotAfter,
		&c.CoverageEnd, &org, &c.RenewIntentAt, &c.DeclinedAt, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(names, &c.DNSNames); err != nil {
		return c, err
	}
	return c, json.Unmarshal(org, &c.Organization)
}

// InsertServerCertificate records a server certificate; ErrExists when
// its issuer and serial are known (an import made twice), false when
// the ID was already recorded (a redelivered CertificateIssued).
func InsertServerCertificate(ctx context.Context, q Q, c domain.ServerCertificate) (bool, error) {
	names, _ := json.Marshal(c.DNSNames)
	if c.DNSNames == nil {
		names = []byte("[]")
	}
	org, _ := json.Marshal(c.Organization)
	tag, err := q.Exec(ctx, `INSERT INTO server_certificates (`+serverCertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		ON CONFLICT (id) DO NOTHING`,
		c.ID, c.CustomerID, c.Imported, c.ApplicationID, c.OrderID, c.DN.CommonName, c.DN.Organization, c.DN.Locality,
		c.DN.State, c.DN.Country, names, c.Serial, c.IssuerDN, c.NotBefore, c.NotAfter, c.CoverageEnd, org,
		c.RenewIntentAt, c.DeclinedAt, c.CreatedAt)
	if uniqueViolation(err) {
		return false, ErrExists
	}
	return tag.RowsAffected() == 1, err
}

// GetServerCertificate reads one server certificate; forUpdate locks it.
func GetServerCertificate(ctx context.Context, q Q, id uuid.UUID, forUpdate bool) (domain.ServerCertificate, error) {
	sql := `SELECT ` + serverCertColumns + ` FROM server_certificates WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	return scanServerCert(q.QueryRow(ctx, sql, id))
}

// ServerCertificateBySerial finds an imported certificate by issuer and serial.
func ServerCertificateBySerial(ctx context.Context, q Q, issuerDN, serial string) (domain.ServerCertificate, error) {
	return scanServerCert(q.QueryRow(ctx, `SELECT `+serverCertColumns+` FROM server_certificates
		WHERE issuer_dn = $1 AND serial = $2`, issuerDN, serial))
}

// LatestServerCertificate is the customer's newest certificate for the
// common name, if any.
func LatestServerCertificate(ctx context.Context, q Q, customer uuid.UUID, cn string) (domain.ServerCertificate, error) {
	return scanServerCert(q.QueryRow(ctx, `SELECT `+serverCertColumns+` FROM server_certificates
		WHERE customer_id = $1 AND common_name = $2 ORDER BY not_after DESC, id DESC LIMIT 1`, customer, cn))
}

// SetRenewalIntent records the customer's intent for the certificate.
func SetRenewalIntent(ctx context.Context, q Q, id uuid.UUID, renew bool, at time.Time) error {
	col := "declined_at"
	if renew {
		col = "renew_intent_at"
	}
	other := "renew_intent_at"
	if renew {
		other = "declined_at"
	}
	_, err := q.Exec(ctx, `UPDATE server_certificates SET `+col+` = $2, `+other+` = NULL WHERE id = $1`, id, at)
	return err
}

// --- orders ---

const orderColumns = `id, customer_id, kind, source, term_months, renewal_of, cycle, application_id, certificate_id,
	invoice_id, invoice_number, decision, carry_over_days, coverage_end, paid_at, refunded_at, cancelled_at, created_at`

func scanOrder(r pgx.Row) (domain.Order, error) {
	var o domain.Order
	err := r.Scan(&o.ID, &o.CustomerID, &o.Kind, &o.Source, &o.TermMonths, &o.RenewalOf, &o.Cycle, &o.ApplicationID,
		&o.CertificateID, &o.InvoiceID, &o.InvoiceNumber, &o.Decision, &o.CarryOverDays, &o.CoverageEnd, &o.PaidAt,
		&o.RefundedAt, &o.CancelledAt, &o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNotFound
	}
	return o, err
}

// InsertOrder stores a new order; ErrExists for a second notice order of
// one certificate and cycle.
func InsertOrder(ctx context.Context, q Q, o domain.Order) error {
	_, err := q.Exec(ctx, `INSERT INTO orders (`+orderColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		o.ID, o.CustomerID, o.Kind, o.Source, o.TermMonths, o.RenewalOf, o.Cycle, o.ApplicationID, o.CertificateID,
		o.InvoiceID, o.InvoiceNumber, o.Decision, o.CarryOverDays, o.CoverageEnd, o.PaidAt, o.RefundedAt, o.CancelledAt, o.CreatedAt)
	if uniqueViolation(err) {
		return ErrExists
	}
	return err
}

// GetOrder reads one order.
func GetOrder(ctx context.Context, q Q, id uuid.UUID) (domain.Order, error) {
	return scanOrder(q.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1`, id))
}

// UpdateOrder locks the order, lets fn change it and writes it back.
func UpdateOrder(ctx context.Context, q Q, id uuid.UUID, fn func(*domain.Order) error) (domain.Order, error) {
	o, err := scanOrder(q.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return o, err
	}
	if err := fn(&o); err != nil {
		return o, err
	}
	_, err = q.Exec(ctx, `UPDATE orders SET kind = $2, application_id = $3, certificate_id = $4, invoice_id = $5,
		invoice_number = $6, decision = $7, carry_over_days = $8, coverage_end = $9, paid_at = $10, refunded_at = $11,
		cancelled_at = $12, renewal_of = $13 WHERE id = $1`,
		o.ID, o.Kind, o.ApplicationID, o.CertificateID, o.InvoiceID, o.InvoiceNumber, o.Decision, o.CarryOverDays,
		o.CoverageEnd, o.PaidAt, o.RefundedAt, o.CancelledAt, o.RenewalOf)
	return o, err
}

// CustomerOrders lists the customer's orders, newest first.
func CustomerOrders(ctx context.Context, q Q, customer uuid.UUID, limit int) ([]domain.Order, error) {
	rows, err := q.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE customer_id = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, customer, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Order, error) { return scanOrder(r) })
}

// OpenRenewalOrders lists the orders renewing the certificate that are
// neither cancelled nor issued.
func OpenRenewalOrders(ctx context.Context, q Q, certificate uuid.UUID) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT id FROM orders WHERE renewal_of = $1 AND cancelled_at IS NULL
		AND certificate_id IS NULL ORDER BY created_at FOR UPDATE`, certificate)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// Renewed reports whether a certificate issued for an order renewing
// this one exists.
func Renewed(ctx context.Context, q Q, certificate uuid.UUID) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM orders WHERE renewal_of = $1 AND certificate_id IS NOT NULL`, certificate).Scan(&n)
	return n > 0, err
}

// SetStep records a step's status (the latest report wins, unless a done
// step would be overwritten by an older report).
func SetStep(ctx context.Context, q Q, order uuid.UUID, r domain.StepRow) error {
	_, err := q.Exec(ctx, `INSERT INTO order_steps (order_id, name, key, status, at, detail) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (order_id, name, key) DO UPDATE SET status = EXCLUDED.status, at = EXCLUDED.at, detail = EXCLUDED.detail
		WHERE order_steps.at <= EXCLUDED.at`, order, r.Name, r.Key, r.Status, r.At, r.Detail)
	return err
}

// Steps lists an order's reported steps.
func Steps(ctx context.Context, q Q, order uuid.UUID) ([]domain.StepRow, error) {
	rows, err := q.Query(ctx, `SELECT name, key, status, detail, at FROM order_steps WHERE order_id = $1`, order)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[domain.StepRow])
}

// InsertNoticeOrder stores the renewal order of a notice unless the
// certificate's cycle has one already (false).
func InsertNoticeOrder(ctx context.Context, q Q, o domain.Order) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO orders (`+orderColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (renewal_of, cycle) WHERE source = 'notice' DO NOTHING`,
		o.ID, o.CustomerID, o.Kind, o.Source, o.TermMonths, o.RenewalOf, o.Cycle, o.ApplicationID, o.CertificateID,
		o.InvoiceID, o.InvoiceNumber, o.Decision, o.CarryOverDays, o.CoverageEnd, o.PaidAt, o.RefundedAt, o.CancelledAt, o.CreatedAt)
	return tag.RowsAffected() == 1, err
}
