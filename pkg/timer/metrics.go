package timer

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the timer worker's Prometheus collectors. The service label
// comes from the registerer the service wraps; kinds are labels.
type Metrics struct {
	Due          prometheus.Gauge
	OldestDueAge prometheus.Gauge
	Parked       prometheus.Gauge
	Fired        *prometheus.CounterVec
	Failed       *prometheus.CounterVec
	Duration     *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them on reg (nil = on
// nothing, for workers that are not observed).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Due: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "timers_due", Help: "Timers due by the clock and not yet fired (parked ones excluded).",
		}),
		OldestDueAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "timers_oldest_due_age_seconds", Help: "How long the oldest due timer has been waiting (0 when none is due).",
		}),
		Parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "timers_parked", Help: "Timers parked after repeated failures, waiting for an operator.",
		}),
		Fired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "timers_fired_total", Help: "Timers fired with their effect committed.",
		}, []string{"kind"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "timers_failed_total", Help: "Failed timer attempts, panics included (each is retried or parks the timer).",
		}, []string{"kind"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "timers_handler_duration_seconds", Help: "Time a timer's handler and transaction took.",
			Buckets: prometheus.DefBuckets,
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.Due, m.OldestDueAge, m.Parked, m.Fired, m.Failed, m.Duration)
	}
	return m
}
