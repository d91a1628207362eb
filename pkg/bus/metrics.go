package bus

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bus's Prometheus collectors, registered once per service
// (the service label comes from the registerer the service wraps).
type Metrics struct {
	Published     *prometheus.CounterVec
	Consumed      *prometheus.CounterVec
	Duplicates    *prometheus.CounterVec
	Redelivered   *prometheus.CounterVec
	DeadLettered  *prometheus.CounterVec
	Failures      *prometheus.CounterVec
	OutboxBacklog prometheus.Gauge
	ConsumerLag   *prometheus.GaugeVec
}

// NewMetrics creates and registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_published_total", Help: "Events published from the outbox to JetStream.",
		}, []string{"type"}),
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_consumed_total", Help: "Events handled with their effect committed.",
		}, []string{"consumer", "type"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_duplicates_total", Help: "Deliveries of events already in the inbox (no effect).",
		}, []string{"consumer"}),
		Redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_redelivered_total", Help: "Deliveries after the first of one message.",
		}, []string{"consumer"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_dead_lettered_total", Help: "Messages moved to the dead-letter stream.",
		}, []string{"consumer"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_handler_failures_total", Help: "Handler errors (each is retried or dead-lettered).",
		}, []string{"consumer"}),
		OutboxBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_backlog", Help: "Events written to the outbox and not yet published.",
		}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consumer_lag", Help: "Messages in the stream not yet delivered to the consumer.",
		}, []string{"consumer"}),
	}
	reg.MustRegister(m.Published, m.Consumed, m.Duplicates, m.Redelivered, m.DeadLettered, m.Failures,
		m.OutboxBacklog, m.ConsumerLag)
	return m
}
