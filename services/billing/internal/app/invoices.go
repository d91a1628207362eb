package app

// Invoices (BI-4): the "billing-orders" consumer makes one invoice per
// OrderPlaced, priced from the operators' price list; an order without a
// price waits in an operator list (never a silent 0) and is issued when
// the price list gets its price.

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/billing/internal/domain"
	"github.com/certlife/platform/services/billing/internal/store"
)

// ConsumerOrders is the durable consumer that invoices orders.
const ConsumerOrders = "billing-orders"

// Issuer is who issues the invoices: the qualified invoice issuer.
type Issuer struct {
	Name               string
	RegistrationNumber string // "T" + 13 digits, checked at start
	BankAccount        string
	PaymentTerm        time.Duration // issue → due
}

// OrdersConsumer invoices orders.
func (a *App) OrdersConsumer() bus.Consumer {
	return bus.Consumer{
		Name:     ConsumerOrders,
		Handlers: map[string]bus.Handler{events.TypeOrderPlaced: a.OrderPlaced, events.TypeOrderCancelled: a.OrderCancelled},
	}
}

// OrderPlaced makes the order's invoice, once: a redelivered event finds
// the order's row and does nothing (BI-4).
func (a *App) OrderPlaced(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	o, err := events.Decode[events.OrderPlaced](env)
	if err != nil {
		return err
	}
	if o.Source == events.OrderSourceACME {
		// An ACME order draws on the customer's paid subscription (AC-2,
		// AC-4): intake marks it paid; there is nothing to invoice.
		return nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	now := a.Clock.Now()
	inv := store.Invoice{ID: id, OrderID: o.OrderID, CustomerID: o.CustomerID, Product: o.Product,
		TermMonths: o.TermMonths, Ordered: o, CorrelationID: env.CorrelationID, CreatedAt: now}
	created, err := store.NewInvoice(ctx, tx, inv)
	if err != nil || !created {
		return err
	}
	if err := store.LockPrices(ctx, tx, false); err != nil {
		return err
	}
	price, ok, err := store.PriceOf(ctx, tx, o.Product, o.TermMonths)
	if err != nil {
		return err
	}
	if !ok {
		a.Metrics.InvoicesWaiting.Inc()
		a.Log.Warn("no price for an order: its invoice waits for the price list", "order", o.OrderID,
			"product", o.Product, "term_months", o.TermMonths)
		return audit.Record(ctx, tx, now, audit.System, "billing.invoice.awaiting_price", id.String(),
			map[string]any{"order_id": o.OrderID, "product": o.Product, "term_months": o.TermMonths})
	}
	return a.issue(ctx, tx, inv, price, now)
}

// OrderCancelled voids the order's invoice: nothing is to be paid, and a
// payment that arrives for it later waits for an operator. A paid order
// that is cancelled is listed for an operator (a refund is due). A
// cancellation that overtakes its OrderPlaced leaves a void row, so the
// late order is never invoiced.
func (a *App) OrderCancelled(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	c, err := events.Decode[events.OrderCancelled](env)
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	now := a.Clock.Now()
	before, invID, err := store.VoidInvoice(ctx, tx, id, c.OrderID, c.CustomerID, now)
	if err != nil {
		return err
	}
	switch before {
	case domain.InvoicePaid:
		inv, err := store.InvoiceByID(ctx, tx, invID)
		if err != nil {
			return err
		}
		return a.except(ctx, tx, store.Exception{Source: exceptionSource(inv.PaidMethod), Kind: domain.ExceptionCancelledPaid,
			InvoiceID: &invID, Invoice: inv.Number, Amount: inv.Total, Currency: inv.Currency, SourceRef: env.ID.String(),
			Detail: "order " + c.OrderID + " was cancelled (" + c.Reason + ") after invoice " + inv.Number + " was paid: refund it", CreatedAt: now})
	case domain.InvoiceVoid, domain.InvoiceRefunded:
		return nil
	}
	return audit.Record(ctx, tx, now, audit.System, "billing.invoice.voided", invID.String(),
		map[string]any{"order_id": c.OrderID, "reason": c.Reason, "status_before": before})
}

func exceptionSource(method string) string {
	if method == domain.MethodBankTransfer {
		return "bank_transfer"
	}
	return "card"
}

// issue prices a waiting invoice, gives it its number and payment
// reference, and emits InvoiceIssued in tx.
func (a *App) issue(ctx context.Context, tx pgx.Tx, inv store.Invoice, price domain.Price, now time.Time) error {
	seq, err := store.NextInvoiceSeq(ctx, tx)
	if err != nil {
		return err
	}
	o := inv.Ordered
	lang := o.Recipient.Language
	lines := []events.InvoiceLine{domain.OrderLine(o, price, lang)}
	taxes, subtotal, tax := domain.Taxes(lines)
	iss := events.InvoiceIssued{
		InvoiceID: inv.ID.String(), Number: domain.InvoiceNumber(now, seq), PaymentReference: domain.PaymentReference(seq),
		OrderID: o.OrderID, CustomerID: o.CustomerID, Recipient: o.Recipient, OrganizationName: o.OrganizationName,
		Currency: price.Currency, Lines: lines, Taxes: taxes, Subtotal: subtotal, Tax: tax, Total: subtotal + tax,
		RegistrationNumber: a.Issuer.RegistrationNumber, IssuerName: a.Issuer.Name, BankAccount: a.Issuer.BankAccount,
		IssuedAt: now, DueAt: now.Add(a.Issuer.PaymentTerm), Notice: o.Notice,
	}
	if err := store.MarkIssued(ctx, tx, iss); err != nil {
		return err
	}
	env, err := events.New(iss, now, inv.CorrelationID)
	if err != nil {
		return err
	}
	if err := bus.Emit(ctx, tx, env); err != nil {
		return err
	}
	a.Metrics.InvoicesIssued.Inc()
	return audit.Record(ctx, tx, now, audit.System, "billing.invoice.issued", inv.ID.String(),
		map[string]any{"order_id": o.OrderID, "number": iss.Number, "total": iss.Total, "currency": iss.Currency})
}

// PricesResult is what a price list change did.
type PricesResult struct {
	Prices []domain.Price
	// Issued counts the waiting invoices the new list priced and issued.
	Issued int
}

// PutPrices replaces the price list (BI-4) for the operator actor, audited
// in the same transaction, and issues the waiting invoices it now prices.
func (a *App) PutPrices(ctx context.Context, actor string, prices []domain.Price) (PricesResult, error) {
	if err := domain.CheckPrices(prices); err != nil {
		return PricesResult{}, err
	}
	now := a.Clock.Now()
	var issued int
	err := db.InTx(ctx, a.Pool, func(tx pgx.Tx) error {
		issued = 0
		if err := store.LockPrices(ctx, tx, true); err != nil {
			return err
		}
		if err := store.ReplacePrices(ctx, tx, prices, actor, now); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, actor, "billing.prices.replaced", "prices", map[string]any{"prices": prices}); err != nil {
			return err
		}
		waiting, err := store.AwaitingPrice(ctx, tx, 1000, true)
		if err != nil {
			return err
		}
		for _, inv := range waiting {
			price, ok, err := store.PriceOf(ctx, tx, inv.Product, inv.TermMonths)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := a.issue(ctx, tx, inv, price, now); err != nil {
				return err
			}
			issued++
		}
		return nil
	})
	if err != nil {
		return PricesResult{}, err
	}
	a.Log.Info("price list replaced", "by", actor, "entries", len(prices), "invoices_issued", issued)
	return PricesResult{Prices: prices, Issued: issued}, nil
}

// Prices reads the price list.
func (a *App) Prices(ctx context.Context) ([]domain.Price, error) {
	return store.Prices(ctx, a.Pool)
}

// AwaitingPrice lists the orders whose invoice waits for a price.
func (a *App) AwaitingPrice(ctx context.Context) ([]store.Invoice, error) {
	return store.AwaitingPrice(ctx, a.Pool, 500, false)
}

// CustomerInvoice is an issued invoice as its customer sees it.
type CustomerInvoice struct {
	events.InvoiceIssued
	Status     string
	PaidAt     *time.Time
	PaidMethod string
}

// Invoice reads an issued invoice of the customer. Another customer's
// invoice, or one not issued yet, is not found.
func (a *App) Invoice(ctx context.Context, customerID string, id uuid.UUID) (CustomerInvoice, error) {
	inv, err := store.InvoiceByID(ctx, a.Pool, id)
	if err != nil {
		return CustomerInvoice{}, err
	}
	if inv.CustomerID != customerID || inv.Issued == nil {
		return CustomerInvoice{}, errs.NotFound("no such invoice")
	}
	return CustomerInvoice{InvoiceIssued: *inv.Issued, Status: inv.Status, PaidAt: inv.PaidAt, PaidMethod: inv.PaidMethod}, nil
}
