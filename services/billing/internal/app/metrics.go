package app

import "github.com/prometheus/client_golang/prometheus"

// Metrics are billing's business counters (OP-3): coupon outcomes. Counters move when the handler's work
// is done; a transaction that then fails to commit is retried, so a
// counter can run ahead of the database by the rare rolled-back attempt.
type Metrics struct {
	Imported       prometheus.Counter
	ImportRejected prometheus.Counter
	Reserved       prometheus.Counter
	Consumed       prometheus.Counter
	Released       prometheus.Counter
	Rejected       *prometheus.CounterVec
	Checks         *prometheus.CounterVec
	// Invoices and payments (BI-2, BI-3, BI-4).
	InvoicesIssued    prometheus.Counter
	InvoicesWaiting   prometheus.Counter
	Payments          *prometheus.CounterVec
	PaymentExceptions *prometheus.CounterVec
	Webhooks          *prometheus.CounterVec
}

// NewMetrics creates and registers the counters.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Imported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coupons_imported_total", Help: "Coupons imported from CSV batches (BI-1).",
		}),
		ImportRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coupon_import_lines_rejected_total", Help: "CSV lines rejected at import (BI-1).",
		}),
		Reserved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coupons_reserved_total", Help: "Coupons reserved at provisional acceptance (PC-2).",
		}),
		Consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coupons_consumed_total", Help: "Coupons consumed at final acceptance (PC-2).",
		}),
		Released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coupons_released_total", Help: "Coupon reservations released by a cancellation (PC-4).",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coupons_rejected_total", Help: "Applications whose coupon could not be reserved, by reason.",
		}, []string{"reason"}),
		Checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coupon_checks_total", Help: "Coupon checks answered over request/reply, by result.",
		}, []string{"result"}),
	}
	m.InvoicesIssued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "invoices_issued_total", Help: "Invoices issued for orders (BI-4).",
	})
	m.InvoicesWaiting = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "invoices_awaiting_price_total", Help: "Orders whose invoice waited for a price (BI-4).",
	})
	m.Payments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "invoice_payments_total", Help: "Invoices paid, by method (SV-3).",
	}, []string{"method"})
	m.PaymentExceptions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payment_exceptions_total", Help: "Payments listed for an operator, by kind (BI-2, BI-3).",
	}, []string{"kind"})
	m.Webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payment_webhooks_total", Help: "Payment webhook requests, by outcome (BI-2).",
	}, []string{"outcome"})
	reg.MustRegister(m.Imported, m.ImportRejected, m.Reserved, m.Consumed, m.Released, m.Rejected, m.Checks,
		m.InvoicesIssued, m.InvoicesWaiting, m.Payments, m.PaymentExceptions, m.Webhooks)
	return m
}
