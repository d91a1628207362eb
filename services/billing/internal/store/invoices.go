package store

// Invoices, prices, webhook events, bank statements and payment
// exceptions (BI-2, BI-3, BI-4). Every function runs on the caller's
// transaction or pool.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/billing/internal/domain"
)

// --- prices ----------------------------------------------------------------

// LockPrices serialises a price list change with the invoicing of
// orders: the change takes it exclusively, each invoicing shared, so an
// order is either priced by the list it saw or seen waiting by the change
// that prices it — never left waiting by a change that committed in between.
func LockPrices(ctx context.Context, tx pgx.Tx, exclusive bool) error {
	sql := `SELECT pg_advisory_xact_lock_shared(hashtextextended('billing.prices', 0))`
	if exclusive {
		sql = `SELECT pg_advisory_xact_lock(hashtextextended('billing.prices', 0))`
	}
	_, err := tx.Exec(ctx, sql)
	return err
}

// ReplacePrices replaces the whole price list.
func ReplacePrices(ctx context.Context, tx pgx.Tx, prices []domain.Price, by string, now time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM prices`); err != nil {
		return fmt.Errorf("clear prices: %w", err)
	}
	for _, p := range prices {
		if _, err := tx.Exec(ctx, `INSERT INTO prices (product, term_months, currency, amount, tax_rate, updated_at, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, p.Product, p.TermMonths, p.Currency, p.Amount, p.TaxRate, now, by); err != nil {
			return fmt.Errorf("insert price: %w", err)
		}
	}
	return nil
}

// Prices lists the price list by product and term.
func Prices(ctx context.Context, q Querier) ([]domain.Price, error) {
	rows, err := q.Query(ctx, `SELECT product, term_months, currency, amount, tax_rate FROM prices ORDER BY product, term_months`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Price, error) {
		var p domain.Price
		err := r.Scan(&p.Product, &p.TermMonths, &p.Currency, &p.Amount, &p.TaxRate)
		return p, err
	})
}

// PriceOf reads the price of a product for a term; found false when the
// list has none.
func PriceOf(ctx context.Context, q Querier, product string, term int) (domain.Price, bool, error) {
	p := domain.Price{Product: product, TermMonths: term}
	err := q.QueryRow(ctx, `SELECT currency, amount, tax_rate FROM prices WHERE product = $1 AND term_months = $2`,
		product, term).Scan(&p.Currency, &p.Amount, &p.TaxRate)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	return p, err == nil, err
}

// --- invoices --------------------------------------------------------------

// Invoice is billing's record of an order's invoice.
type Invoice struct {
	ID            uuid.UUID
	OrderID       string
	CustomerID    string
	Status        string
	Product       string
	TermMonths    int
	Ordered       events.OrderPlaced
	CorrelationID string
	Number        string
	Reference     string
	Currency      string
	Total         int64
	Issued        *events.InvoiceIssued
	CreatedAt     time.Time
	PaidAt        *time.Time
	PaidMethod    string
}

// NewInvoice records an order's invoice, awaiting its price; created
// false when the order already has one (a redelivered OrderPlaced).
func NewInvoice(ctx context.Context, tx pgx.Tx, inv Invoice) (bool, error) {
	ordered, err := json.Marshal(inv.Ordered)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO invoices (id, order_id, customer_id, status, product, term_months, ordered, correlation_id, created_at)
		VALUES ($1, $2, $3, 'awaiting_price', $4, $5, $6, $7, $8) ON CONFLICT (order_id) DO NOTHING`,
		inv.ID, inv.OrderID, inv.CustomerID, inv.Product, inv.TermMonths, ordered, inv.CorrelationID, inv.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("insert invoice: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// VoidInvoice voids the order's invoice if it is open or awaiting its
// price, or leaves a void row when the order has none yet (the
// cancellation overtook OrderPlaced: that row makes the late order
// invoice nothing). It answers the invoice's status before, "" when
// there was no row.
func VoidInvoice(ctx context.Context, tx pgx.Tx, id uuid.UUID, orderID, customerID string, now time.Time) (string, uuid.UUID, error) {
	var before string
	var invID uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id, status FROM invoices WHERE order_id = $1 FOR UPDATE`, orderID).Scan(&invID, &before)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = tx.Exec(ctx, `INSERT INTO invoices (id, order_id, customer_id, status, product, term_months, ordered, created_at, voided_at)
			VALUES ($1, $2, $3, 'void', '', 0, '{}', $4, $4) ON CONFLICT (order_id) DO NOTHING`, id, orderID, customerID, now)
		return "", id, err
	}
	if err != nil {
		return "", invID, err
	}
	if before == "open" || before == "awaiting_price" {
		_, err = tx.Exec(ctx, `UPDATE invoices SET status = 'void', voided_at = $2 WHERE id = $1`, invID, now)
	}
	return before, invID, err
}

// NextInvoiceSeq draws the next invoice sequence number.
func NextInvoiceSeq(ctx context.Context, tx pgx.Tx) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, `SELECT nextval('invoice_seq')`).Scan(&n)
	return n, err
}

// MarkIssued stores the issued invoice on a waiting one.
func MarkIssued(ctx context.Context, tx pgx.Tx, iss events.InvoiceIssued) error {
	raw, err := json.Marshal(iss)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE invoices SET status = 'open', number = $2, payment_reference = $3, currency = $4,
		total = $5, issued = $6, issued_at = $7, due_at = $8 WHERE id = $1 AND status = 'awaiting_price'`,
		iss.InvoiceID, iss.Number, iss.PaymentReference, iss.Currency, iss.Total, raw, iss.IssuedAt, iss.DueAt)
	if err != nil {
		return fmt.Errorf("issue invoice: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("invoice %s is not awaiting its price", iss.InvoiceID)
	}
	return nil
}

const invoiceCols = `id, order_id, customer_id, status, product, term_months, ordered, correlation_id,
	coalesce(number, ''), coalesce(payment_reference, ''), coalesce(currency, ''), coalesce(total, 0), issued, created_at, paid_at, coalesce(paid_method, '')`

func scanInvoice(row pgx.Row) (Invoice, error) {
	var inv Invoice
	var ordered, issued []byte
	err := row.Scan(&inv.ID, &inv.OrderID, &inv.CustomerID, &inv.Status, &inv.Product, &inv.TermMonths, &ordered, &inv.CorrelationID,
		&inv.Number, &inv.Reference, &inv.Currency, &inv.Total, &issued, &inv.CreatedAt, &inv.PaidAt, &inv.PaidMethod)
	if errors.Is(err, pgx.ErrNoRows) {
		return inv, errs.NotFound("no such invoice")
	}
	if err != nil {
		return inv, err
	}
	if err := json.Unmarshal(ordered, &inv.Ordered); err != nil {
		return inv, err
	}
	if issued != nil {
		inv.Issued = new(events.InvoiceIssued)
		if err := json.Unmarshal(issued, inv.Issued); err != nil {
			return inv, err
		}
	}
	return inv, nil
}

// InvoiceByID reads an invoice.
func InvoiceByID(ctx context.Context, q Querier, id uuid.UUID) (Invoice, error) {
	return scanInvoice(q.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE id = $1`, id))
}

// LockInvoiceByNumber reads an invoice by its number, locked until tx ends.
func LockInvoiceByNumber(ctx context.Context, tx pgx.Tx, number string) (Invoice, error) {
	return scanInvoice(tx.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE number = $1 FOR UPDATE`, number))
}

// LockInvoiceByReference reads an invoice by its payment reference, locked.
func LockInvoiceByReference(ctx context.Context, tx pgx.Tx, ref string) (Invoice, error) {
	return scanInvoice(tx.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE payment_reference = $1 FOR UPDATE`, ref))
}

// LockInvoice reads an invoice by ID, locked.
func LockInvoice(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Invoice, error) {
	return scanInvoice(tx.QueryRow(ctx, `SELECT `+invoiceCols+` FROM invoices WHERE id = $1 FOR UPDATE`, id))
}

// AwaitingPrice lists the invoices waiting for a price, oldest first;
// lock takes them FOR UPDATE SKIP LOCKED (the issuing pass after a price
// change).
func AwaitingPrice(ctx context.Context, q Querier, limit int, lock bool) ([]Invoice, error) {
	sql := `SELECT ` + invoiceCols + ` FROM invoices WHERE status = 'awaiting_price' ORDER BY created_at, id LIMIT $1`
	if lock {
		sql += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := q.Query(ctx, sql, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Invoice, error) { return scanInvoice(r) })
}

// MarkPaid records the payment of an open invoice; false when it was not open.
func MarkPaid(ctx context.Context, tx pgx.Tx, id uuid.UUID, method, reference string, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE invoices SET status = 'paid', paid_at = $2, paid_method = $3, paid_reference = $4
		WHERE id = $1 AND status = 'open'`, id, at, method, reference)
	if err != nil {
		return false, fmt.Errorf("mark paid: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// MarkRefunded records the refund of a paid invoice.
func MarkRefunded(ctx context.Context, tx pgx.Tx, id uuid.UUID, at time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE invoices SET status = 'refunded', refunded_at = $2 WHERE id = $1 AND status = 'paid'`, id, at)
	if err != nil {
		return false, fmt.Errorf("mark refunded: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// --- webhook events --------------------------------------------------------

// RecordWebhookEvent stores a processor event by its ID; false when the ID
// was seen before (BI-2: no second effect).
func RecordWebhookEvent(ctx context.Context, tx pgx.Tx, e domain.WebhookEvent, now time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO webhook_events (id, type, invoice, amount, currency, payment_id, outcome, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, '', $7) ON CONFLICT (id) DO NOTHING`,
		e.ID, e.Type, e.Data.Invoice, e.Data.Amount, e.Data.Currency, e.Data.PaymentID, now)
	if err != nil {
		return false, fmt.Errorf("record webhook event: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetWebhookOutcome records what an event did.
func SetWebhookOutcome(ctx context.Context, tx pgx.Tx, id, outcome string) error {
	_, err := tx.Exec(ctx, `UPDATE webhook_events SET outcome = $2 WHERE id = $1`, id, outcome)
	return err
}

// WebhookOutcome reads what an earlier event did.
func WebhookOutcome(ctx context.Context, q Querier, id string) (string, error) {
	var o string
	err := q.QueryRow(ctx, `SELECT outcome FROM webhook_events WHERE id = $1`, id).Scan(&o)
	return o, err
}

// --- payment exceptions ----------------------------------------------------

// Exception is a payment waiting for an operator.
type Exception struct {
	ID         uuid.UUID  `json:"id"`
	Source     string     `json:"source"`
	Kind       string     `json:"kind"`
	InvoiceID  *uuid.UUID `json:"invoice_id,omitempty"`
	Invoice    string     `json:"invoice,omitempty"`
	Amount     int64      `json:"amount"`
	Currency   string     `json:"currency"`
	PayerName  string     `json:"payer_name,omitempty"`
	SourceRef  string     `json:"source_ref"`
	Detail     string     `json:"detail"`
	CreatedAt  time.Time  `json:"created_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	ResolvedBy string     `json:"resolved_by,omitempty"`
	Resolution string     `json:"resolution,omitempty"`
	Note       string     `json:"note,omitempty"`
}

// AddException lists a payment for an operator.
func AddException(ctx context.Context, tx pgx.Tx, e Exception) error {
	_, err := tx.Exec(ctx, `INSERT INTO payment_exceptions (id, source, kind, invoice_id, invoice, amount, currency, payer_name, source_ref, detail, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		e.ID, e.Source, e.Kind, e.InvoiceID, e.Invoice, e.Amount, e.Currency, e.PayerName, e.SourceRef, e.Detail, e.CreatedAt)
	if err != nil {
		return fmt.Errorf("add payment exception: %w", err)
	}
	return nil
}

const exceptionCols = `id, source, kind, invoice_id, invoice, amount, currency, payer_name, source_ref, detail, created_at,
	resolved_at, coalesce(resolved_by, ''), coalesce(resolution, ''), coalesce(note, '')`

func scanException(r pgx.Row) (Exception, error) {
	var e Exception
	err := r.Scan(&e.ID, &e.Source, &e.Kind, &e.InvoiceID, &e.Invoice, &e.Amount, &e.Currency, &e.PayerName, &e.SourceRef,
		&e.Detail, &e.CreatedAt, &e.ResolvedAt, &e.ResolvedBy, &e.Resolution, &e.Note)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, errs.NotFound("no such payment exception")
	}
	return e, err
}

// Exceptions lists payment exceptions, open ones only unless all.
func Exceptions(ctx context.Context, q Querier, all bool, limit int) ([]Exception, error) {
	sql := `SELECT ` + exceptionCols + ` FROM payment_exceptions`
	if !all {
		sql += ` WHERE resolved_at IS NULL`
	}
	sql += ` ORDER BY created_at, id LIMIT $1`
	rows, err := q.Query(ctx, sql, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Exception, error) { return scanException(r) })
}

// LockException reads one exception, locked until tx ends.
func LockException(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Exception, error) {
	return scanException(tx.QueryRow(ctx, `SELECT `+exceptionCols+` FROM payment_exceptions WHERE id = $1 FOR UPDATE`, id))
}

// ResolveException closes an exception.
func ResolveException(ctx context.Context, tx pgx.Tx, id uuid.UUID, by, resolution, note string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE payment_exceptions SET resolved_at = $2, resolved_by = $3, resolution = $4, note = $5 WHERE id = $1`,
		id, now, by, resolution, note)
	return err
}

// --- bank statements -------------------------------------------------------

// NewStatement records an upload.
func NewStatement(ctx context.Context, tx pgx.Tx, id uuid.UUID, by, encoding string, lines int, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO bank_statements (id, uploaded_by, uploaded_at, encoding, lines) VALUES ($1, $2, $3, $4, $5)`,
		id, by, now, encoding, lines)
	return err
}

// ClaimStatementLine records a line by its hash; false when the hash was
// seen in an earlier statement (a duplicate).
func ClaimStatementLine(ctx context.Context, tx pgx.Tx, statement uuid.UUID, l domain.StatementLine) (bool, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO bank_statement_lines (hash, statement_id, line, value_date, payer_name, amount, reference, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'unmatched') ON CONFLICT (hash) DO NOTHING`,
		l.Hash, statement, l.Line, l.Date, l.PayerName, l.Amount, l.Reference)
	if err != nil {
		return false, fmt.Errorf("claim statement line: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetLineOutcome records a line's outcome and invoice.
func SetLineOutcome(ctx context.Context, tx pgx.Tx, hash, outcome string, invoice *uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE bank_statement_lines SET outcome = $2, invoice_id = $3 WHERE hash = $1`, hash, outcome, invoice)
	return err
}
