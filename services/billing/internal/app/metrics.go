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
	reg.MustRegister(m.Imported, m.ImportRejected, m.Reserved, m.Consumed, m.Released, m.Rejected, m.Checks)
	return m
}
