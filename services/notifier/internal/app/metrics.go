package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/services/notifier/internal/domain"
)

// Metrics of the notifier (OP-3: e-mail failures; PC-10: reminders).
type Metrics struct {
	sent       *prometheus.CounterVec
	failures   *prometheus.CounterVec
	givenUp    *prometheus.CounterVec
	duplicates *prometheus.CounterVec
	reminders  *prometheus.CounterVec
}

// NewMetrics creates and registers the counters.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mail_sent_total", Help: "E-mails accepted by the SMTP server, by reason.",
		}, []string{"reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mail_send_failures_total", Help: "Failed SMTP attempts, by reason.",
		}, []string{"reason"}),
		givenUp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mail_given_up_total", Help: "E-mails given up after their last attempt or a permanent error, by reason.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mail_duplicates_total", Help: "Requests for a message that already exists (same Message-ID), by reason.",
		}, []string{"reason"}),
		reminders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "renewal_reminders_total", Help: "Renewal reminders fired, by outcome (sent, suppressed) and why suppressed.",
		}, []string{"outcome", "why"}),
	}
	// Every reason's series exists from the start: "failures / sent" and
	// alerts on them read zeros, not nothing.
	for _, r := range domain.Reasons {
		for _, v := range []*prometheus.CounterVec{m.sent, m.failures, m.givenUp, m.duplicates} {
			v.WithLabelValues(r)
		}
	}
	m.reminders.WithLabelValues("sent", "")
	for _, c := range []prometheus.Collector{m.sent, m.failures, m.givenUp, m.duplicates, m.reminders} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
