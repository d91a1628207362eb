package app

// Payments (SV-3): the card processor's webhook (BI-2) and bank statements
// (BI-3). An invoice is paid only when the money fits it exactly; every
// other payment waits for an operator in payment_exceptions, and a refund
// after payment is listed as well as announced (PaymentRefunded).

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/invoicepdf"
	"github.com/certlife/platform/services/billing/internal/domain"
	"github.com/certlife/platform/services/billing/internal/store"
)

// Webhook outcomes, as answered to the processor and counted.
const (
	WebhookApplied   = "applied"   // paid, failed or refunded as it says
	WebhookListed    = "listed"    // not applied: listed for an operator
	WebhookIgnored   = "ignored"   // nothing to do (a failure of a paid invoice)
	WebhookDuplicate = "duplicate" // a repeated event ID: no second effect
)

// VerifyWebhook checks the Webhook-Signature header over the raw body on
// the injected clock (BI-2).
func (a *App) VerifyWebhook(header string, body []byte) error {
	return domain.VerifySignature(a.WebhookSecret, header, body, a.Clock.Now())
}

// Webhook applies a verified processor event once (BI-2, SV-3) and says
// what it did.
func (a *App) Webhook(ctx context.Context, e domain.WebhookEvent) (string, error) {
	if err := e.Check(); err != nil {
		return "", err
	}
	now := a.Clock.Now()
	var outcome string
	err := db.InTx(ctx, a.Pool, func(tx pgx.Tx) error {
		fresh, err := store.RecordWebhookEvent(ctx, tx, e, now)
		if err != nil {
			return err
		}
		if !fresh {
			outcome = WebhookDuplicate
			return nil
		}
		if outcome, err = a.webhook(ctx, tx, e, now); err != nil {
			return err
		}
		return store.SetWebhookOutcome(ctx, tx, e.ID, outcome)
	})
	if err != nil {
		return "", err
	}
	a.Metrics.Webhooks.WithLabelValues(outcome).Inc()
	return outcome, nil
}

func (a *App) webhook(ctx context.Context, tx pgx.Tx, e domain.WebhookEvent, now time.Time) (string, error) {
	d := e.Data
	exc := store.Exception{Source: "card", Invoice: d.Invoice, Amount: d.Amount, Currency: d.Currency, SourceRef: e.ID, CreatedAt: now}
	inv, err := store.LockInvoiceByNumber(ctx, tx, d.Invoice)
	if errs.Is(err, errs.KindNotFound) {
		if e.Type == domain.PaymentFailed {
			return WebhookIgnored, nil
		}
		exc.Kind, exc.Detail = domain.ExceptionUnknownInvoice, fmt.Sprintf("%s for invoice %s, which does not exist", e.Type, d.Invoice)
		return WebhookListed, a.except(ctx, tx, exc)
	}
	if err != nil {
		return "", err
	}
	exc.InvoiceID = &inv.ID
	o := inv.Ordered
	switch e.Type {
	case domain.PaymentSucceeded:
		switch {
		case inv.Status == domain.InvoicePaid || inv.Status == domain.InvoiceRefunded:
			exc.Kind, exc.Detail = domain.ExceptionAlreadyPaid, fmt.Sprintf("card payment %s of invoice %s, which is already %s", d.PaymentID, inv.Number, inv.Status)
		case inv.Status != domain.InvoiceOpen:
			exc.Kind, exc.Detail = domain.ExceptionVoid, fmt.Sprintf("card payment %s of invoice %s, which is %s (its order was cancelled): refund it", d.PaymentID, inv.Number, inv.Status)
		case d.Currency != inv.Currency:
			exc.Kind, exc.Detail = domain.ExceptionCurrencyMismatch, fmt.Sprintf("paid in %s, the invoice is in %s", d.Currency, inv.Currency)
		case d.Amount != inv.Total:
			exc.Kind, exc.Detail = domain.ExceptionAmountMismatch, fmt.Sprintf("paid %s %s, the invoice's total is %s %s",
				invoicepdf.FormatAmount(d.Amount, d.Currency), d.Currency, invoicepdf.FormatAmount(inv.Total, inv.Currency), inv.Currency)
		default:
			return WebhookApplied, a.paid(ctx, tx, inv, domain.MethodCard, d.PaymentID, now, "payment-processor")
		}
		return WebhookListed, a.except(ctx, tx, exc)
	case domain.PaymentFailed:
		if inv.Status != domain.InvoiceOpen {
			return WebhookIgnored, nil
		}
		reason := d.FailureReason
		if reason == "" {
			reason = "the card payment failed"
		}
		return WebhookApplied, a.emit(ctx, tx, inv, events.PaymentFailed{InvoiceID: inv.ID.String(), OrderID: inv.OrderID,
			CustomerID: inv.CustomerID, Reason: reason, Recipient: o.Recipient}, now)
	default: // refunded
		exc.Kind = domain.ExceptionRefund
		if inv.Status != domain.InvoicePaid {
			exc.Detail = fmt.Sprintf("refund %s of invoice %s, which is %s", d.PaymentID, inv.Number, inv.Status)
			return WebhookListed, a.except(ctx, tx, exc)
		}
		if _, err := store.MarkRefunded(ctx, tx, inv.ID, now); err != nil {
			return "", err
		}
		exc.Detail = fmt.Sprintf("invoice %s was refunded after payment: the order is no longer paid", inv.Number)
		if err := a.except(ctx, tx, exc); err != nil {
			return "", err
		}
		if err := audit.Record(ctx, tx, now, audit.System, "billing.invoice.refunded", inv.ID.String(),
			map[string]any{"number": inv.Number, "amount": d.Amount, "currency": d.Currency, "payment_id": d.PaymentID}); err != nil {
			return "", err
		}
		return WebhookApplied, a.emit(ctx, tx, inv, events.PaymentRefunded{InvoiceID: inv.ID.String(), OrderID: inv.OrderID,
			CustomerID: inv.CustomerID, Amount: d.Amount, Currency: d.Currency}, now)
	}
}

// paid records the payment of an open invoice and emits PaymentConfirmed.
func (a *App) paid(ctx context.Context, tx pgx.Tx, inv store.Invoice, method, reference string, now time.Time, actor string) error {
	ok, err := store.MarkPaid(ctx, tx, inv.ID, method, reference, now)
	if err != nil {
		return err
	}
	if !ok {
		return errs.Conflict("invoice-not-open", "the invoice is not open")
	}
	if err := audit.Record(ctx, tx, now, actor, "billing.invoice.paid", inv.ID.String(),
		map[string]any{"number": inv.Number, "method": method, "reference": reference, "total": inv.Total, "currency": inv.Currency}); err != nil {
		return err
	}
	a.Metrics.Payments.WithLabelValues(method).Inc()
	return a.emit(ctx, tx, inv, events.PaymentConfirmed{Method: method, Reference: reference, OrderID: inv.OrderID,
		InvoiceID: inv.ID.String(), CustomerID: inv.CustomerID, Amount: inv.Total, Currency: inv.Currency,
		Recipient: inv.Ordered.Recipient, PaidAt: now}, now)
}

func (a *App) emit(ctx context.Context, tx pgx.Tx, inv store.Invoice, p events.Payload, now time.Time) error {
	env, err := events.New(p, now, inv.CorrelationID)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}

func (a *App) except(ctx context.Context, tx pgx.Tx, e store.Exception) error {
	var err error
	if e.ID, err = uuid.NewV7(); err != nil {
		return err
	}
	if err := store.AddException(ctx, tx, e); err != nil {
		return err
	}
	a.Metrics.PaymentExceptions.WithLabelValues(e.Kind).Inc()
	a.Log.Warn("payment listed for an operator", "kind", e.Kind, "source", e.Source, "invoice", e.Invoice, "detail", e.Detail)
	return nil
}

// StatementLineResult is one line's outcome (BI-3).
type StatementLineResult struct {
	Line      int    `json:"line"`
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason,omitempty"`
	Reference string `json:"reference,omitempty"`
	Amount    int64  `json:"amount"`
	PayerName string `json:"payer_name"`
	InvoiceID string `json:"invoice_id,omitempty"`
	Invoice   string `json:"invoice,omitempty"` // number
}

// StatementResult is what an upload did.
type StatementResult struct {
	ID       uuid.UUID             `json:"id"`
	Encoding string                `json:"encoding"`
	Counts   map[string]int        `json:"counts"`
	Lines    []StatementLineResult `json:"lines"`
}

// UploadStatement applies a bank statement (BI-3) for the operator actor,
// whole, in one transaction audited with it: each line is matched (the
// invoice is paid, PaymentConfirmed method bank_transfer), unmatched or
// partial (listed for an operator), or a duplicate of a line seen before
// (nothing happens).
func (a *App) UploadStatement(ctx context.Context, actor string, raw []byte) (StatementResult, error) {
	st, err := domain.ParseStatement(raw)
	if err != nil {
		return StatementResult{}, err
	}
	now := a.Clock.Now()
	id, err := uuid.NewV7()
	if err != nil {
		return StatementResult{}, err
	}
	var res StatementResult
	err = db.InTx(ctx, a.Pool, func(tx pgx.Tx) error {
		res = StatementResult{ID: id, Encoding: st.Encoding, Counts: map[string]int{
			domain.OutcomeMatched: 0, domain.OutcomeUnmatched: 0, domain.OutcomePartial: 0, domain.OutcomeDuplicate: 0}}
		if err := store.NewStatement(ctx, tx, id, actor, st.Encoding, len(st.Lines), now); err != nil {
			return err
		}
		for _, l := range st.Lines {
			r, err := a.statementLine(ctx, tx, id, l, now, actor)
			if err != nil {
				return err
			}
			res.Counts[r.Outcome]++
			res.Lines = append(res.Lines, r)
		}
		return audit.Record(ctx, tx, now, actor, "billing.bank_statement.uploaded", id.String(),
			map[string]any{"encoding": st.Encoding, "lines": len(st.Lines), "counts": res.Counts})
	})
	if err != nil {
		return StatementResult{}, err
	}
	a.Log.Info("bank statement applied", "statement", id, "by", actor, "counts", res.Counts)
	return res, nil
}

func (a *App) statementLine(ctx context.Context, tx pgx.Tx, statement uuid.UUID, l domain.StatementLine, now time.Time, actor string) (StatementLineResult, error) {
	r := StatementLineResult{Line: l.Line, Reference: l.Reference, Amount: l.Amount, PayerName: l.PayerName}
	fresh, err := store.ClaimStatementLine(ctx, tx, statement, l)
	if err != nil {
		return r, err
	}
	if !fresh {
		r.Outcome, r.Reason = domain.OutcomeDuplicate, "this transfer was in an earlier statement"
		return r, nil
	}
	var inv store.Invoice
	found := false
	if domain.ValidPaymentReference(l.Reference) {
		inv, err = store.LockInvoiceByReference(ctx, tx, l.Reference)
		switch {
		case err == nil:
			found = true
		case !errs.Is(err, errs.KindNotFound):
			return r, err
		}
	}
	outcome, kind := domain.Match(l, domain.MatchInvoice{Status: inv.Status, Currency: inv.Currency, Total: inv.Total}, found)
	r.Outcome = outcome
	var invID *uuid.UUID
	if found {
		invID = &inv.ID
		r.InvoiceID, r.Invoice = inv.ID.String(), inv.Number
	}
	if outcome == domain.OutcomeMatched {
		if err := a.paid(ctx, tx, inv, domain.MethodBankTransfer, l.Reference, now, actor); err != nil {
			return r, err
		}
	} else {
		r.Reason = exceptionDetail(kind, l, inv)
		exc := store.Exception{Source: "bank_transfer", Kind: kind, InvoiceID: invID, Invoice: l.Reference, Amount: l.Amount,
			Currency: "JPY", PayerName: l.PayerName, SourceRef: l.Hash, Detail: r.Reason, CreatedAt: now}
		if err := a.except(ctx, tx, exc); err != nil {
			return r, err
		}
	}
	return r, store.SetLineOutcome(ctx, tx, l.Hash, outcome, invID)
}

func exceptionDetail(kind string, l domain.StatementLine, inv store.Invoice) string {
	yen := func(v int64) string { return invoicepdf.FormatAmount(v, "JPY") + " JPY" }
	switch kind {
	case domain.ExceptionUnmatched:
		if l.Reference == "" {
			return "no payment reference in the line"
		}
		return "no invoice has the payment reference " + l.Reference
	case domain.ExceptionPartial:
		return fmt.Sprintf("%s paid of %s for invoice %s", yen(l.Amount), yen(inv.Total), inv.Number)
	case domain.ExceptionOverpayment:
		return fmt.Sprintf("%s paid, more than the %s of invoice %s", yen(l.Amount), yen(inv.Total), inv.Number)
	case domain.ExceptionAlreadyPaid:
		return fmt.Sprintf("invoice %s is already %s", inv.Number, inv.Status)
	case domain.ExceptionCurrencyMismatch:
		return fmt.Sprintf("invoice %s is in %s, the transfer in JPY", inv.Number, inv.Currency)
	case domain.ExceptionNotIssued:
		return "the invoice is not issued yet (awaiting its price)"
	case domain.ExceptionVoid:
		return fmt.Sprintf("invoice %s is void: its order was cancelled; refund the transfer", inv.Number)
	}
	return kind
}

// Exceptions lists the payments waiting for an operator (all: resolved too).
func (a *App) Exceptions(ctx context.Context, all bool) ([]store.Exception, error) {
	return store.Exceptions(ctx, a.Pool, all, 1000)
}

// Resolutions of a payment exception.
const (
	ResolutionApply   = "apply"   // the operator confirmed the money pays the invoice
	ResolutionDismiss = "dismiss" // handled outside (refunded, returned, written off)
)

// ResolveException closes a payment exception for the operator actor,
// audited: "apply" pays the open invoice it names (the operator decided
// the money covers it), "dismiss" closes it with a note.
func (a *App) ResolveException(ctx context.Context, actor string, id uuid.UUID, resolution, note string) (store.Exception, error) {
	if resolution != ResolutionApply && resolution != ResolutionDismiss {
		return store.Exception{}, errs.InvalidField("resolution", "apply or dismiss")
	}
	if len(note) > 2000 {
		return store.Exception{}, errs.InvalidField("note", "at most 2000 characters")
	}
	now := a.Clock.Now()
	var out store.Exception
	err := db.InTx(ctx, a.Pool, func(tx pgx.Tx) error {
		e, err := store.LockException(ctx, tx, id)
		if err != nil {
			return err
		}
		if e.ResolvedAt != nil {
			return errs.Conflict("already-resolved", "the payment exception is already resolved")
		}
		if resolution == ResolutionApply {
			if e.InvoiceID == nil {
				return errs.Conflict("no-invoice", "the payment names no invoice: dismiss it, or apply the payment by hand")
			}
			inv, err := store.LockInvoice(ctx, tx, *e.InvoiceID)
			if err != nil {
				return err
			}
			if inv.Status != domain.InvoiceOpen {
				return errs.Conflict("invoice-not-open", "invoice "+inv.Number+" is "+inv.Status)
			}
			method := domain.MethodCard
			if e.Source == "bank_transfer" {
				method = domain.MethodBankTransfer
			}
			if err := a.paid(ctx, tx, inv, method, e.Invoice, now, actor); err != nil {
				return err
			}
		}
		if err := store.ResolveException(ctx, tx, id, actor, resolution, note, now); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, actor, "billing.payment_exception.resolved", id.String(),
			map[string]any{"resolution": resolution, "note": note, "kind": e.Kind}); err != nil {
			return err
		}
		out, err = store.LockException(ctx, tx, id)
		return err
	})
	return out, err
}
