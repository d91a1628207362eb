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
	OutboxAge     prometheus.Gauge
	ConsumerLag   *prometheus.GaugeVec

	TransientFailures   *prometheus.CounterVec
	Panics              *prometheus.CounterVec
	Paused              prometheus.Gauge
	HealthProbes        prometheus.Counter
	HealthProbeFailures prometheus.Counter
	PublishFailures     prometheus.Counter
	Quarantined         prometheus.Counter
	QuarantineSize      prometheus.Gauge
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
		OutboxAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_oldest_event_age_seconds", Help: "Age of the oldest event in the outbox (0 when it is empty): a relay that stopped publishing shows here.",
		}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consumer_lag", Help: "Messages in the stream not yet delivered to the consumer.",
		}, []string{"consumer"}),
		TransientFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_handler_transient_failures_total", Help: "Handler failures caused by an outage (retried, never counted toward max deliveries).",
		}, []string{"consumer"}),
		Panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "events_handler_panics_total", Help: "Handler panics recovered (each message is dead-lettered with its stack).",
		}, []string{"consumer"}),
		Paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "events_consumers_paused", Help: "1 while the service's consumers are paused because its dependencies are unhealthy.",
		}),
		HealthProbes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "events_health_probes_total", Help: "Health checks made by paused consumers.",
		}),
		HealthProbeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "events_health_probe_failures_total", Help: "Health checks of paused consumers that failed.",
		}),
		PublishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_publish_failures_total", Help: "Outbox rows whose publish failed (timeouts and outages are retried; refusals quarantined).",
		}),
		Quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outbox_quarantined_events_total", Help: "Outbox rows JetStream refused for good, moved to the quarantine.",
		}),
		QuarantineSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outbox_quarantine_events", Help: "Events in the outbox quarantine, waiting for an operator.",
		}),
	}
	reg.MustRegister(m.Published, m.Consumed, m.Duplicates, m.Redelivered, m.DeadLettered, m.Failures,
		m.OutboxBacklog, m.OutboxAge, m.ConsumerLag, m.TransientFailures, m.Panics, m.Paused, m.HealthProbes,
		m.HealthProbeFailures, m.PublishFailures, m.Quarantined, m.QuarantineSize)
	return m
}

// consumer makes the series of one consumer exist at zero from its start:
// a rate or an alert over "no dead letters yet" needs a series to read.
func (m *Metrics) consumer(name string) {
	for _, v := range []*prometheus.CounterVec{m.Duplicates, m.Redelivered, m.DeadLettered, m.Failures, m.TransientFailures, m.Panics} {
		v.WithLabelValues(name)
	}
	m.ConsumerLag.WithLabelValues(name)
}
