package app

import "github.com/prometheus/client_golang/prometheus"

// Metrics are validation's business counters (OP-3): reviews entering
// the queue and their decisions.
type Metrics struct {
	Queued  prometheus.Counter
	Decided *prometheus.CounterVec
}

// NewMetrics creates and registers the counters.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reviews_queued_total", Help: "Reviews that became pending (final and paid).",
		}),
		Decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reviews_decided_total", Help: "Review decisions, by outcome and by auto or operator.",
		}, []string{"status", "by"}),
	}
	reg.MustRegister(m.Queued, m.Decided)
	return m
}
