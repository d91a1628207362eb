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

// DCVMetrics count validation attempts and remote non-corroborations
// (OP-3, VA-7).
type DCVMetrics struct {
	Attempts          *prometheus.CounterVec
	NonCorroborations *prometheus.CounterVec
}

// NewDCVMetrics creates and registers the counters.
func NewDCVMetrics(reg prometheus.Registerer) *DCVMetrics {
	m := &DCVMetrics{
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "validation_attempts_total", Help: "Validation attempts recorded, by kind (domain, caa, organization), method and result.",
		}, []string{"kind", "method", "result"}),
		NonCorroborations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpic_non_corroborations_total", Help: "Remote perspectives that did not corroborate a passing primary check, by perspective and check.",
		}, []string{"perspective", "check"}),
	}
	reg.MustRegister(m.Attempts, m.NonCorroborations)
	return m
}
