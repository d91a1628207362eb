package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/metrics"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// Metrics are intake's (OP-3): the argon2id queue and sign-ins (SE-3,
// SE-7), and how long applications take from provisional acceptance to
// a certificate. The service label comes from the registerer.
type Metrics struct {
	argonEvaluations prometheus.Counter
	argonRejected    prometheus.Counter
	argonWaiting     prometheus.Gauge
	argonBusy        prometheus.Gauge
	argonSlots       prometheus.Gauge
	signIns          *prometheus.CounterVec
	addressDelays    prometheus.Counter
	timeToState      *prometheus.HistogramVec
}

// signInResults are the results sign-ins are counted by.
var signInResults = []string{"success", "failure", "locked", "busy"}

// NewMetrics registers the metrics with reg (nil: on nothing).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		argonEvaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "argon2_evaluations_total",
			Help: "argon2id evaluations run (password hashes and checks)."}),
		argonRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "argon2_rejected_total",
			Help: "argon2id evaluations refused because the bounded queue was full or the wait too long (503)."}),
		argonWaiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "argon2_waiting",
			Help: "argon2id evaluations waiting for a slot."}),
		argonBusy: prometheus.NewGauge(prometheus.GaugeOpts{Name: "argon2_busy",
			Help: "argon2id evaluations running (slots in use)."}),
		argonSlots: prometheus.NewGauge(prometheus.GaugeOpts{Name: "argon2_slots",
			Help: "argon2id evaluations allowed at once (ARGON2_CONCURRENCY)."}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "signin_attempts_total",
			Help: "Sign-in attempts (sessions and Basic) by result: success, failure, locked, busy."}, []string{"result"}),
		addressDelays: prometheus.NewCounter(prometheus.CounterOpts{Name: "signin_address_delays_total",
			Help: "Sign-in attempts slowed down because their client address failed often (SE-3)."}),
		timeToState: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "application_time_to_state_seconds",
			Help: "Time from an application's provisional acceptance to its certificate: state approved (certificate ready) or issued.",
			// From a short cancel window to a review that waited days.
			Buckets: []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 4 * 86400, 7 * 86400, 14 * 86400, 30 * 86400},
		}, []string{"state"}),
	}
	for _, r := range signInResults {
		m.signIns.WithLabelValues(r)
	}
	for _, s := range []string{domain.StatusApproved, domain.StatusIssued} {
		m.timeToState.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.argonEvaluations, m.argonRejected, m.argonWaiting, m.argonBusy, m.argonSlots,
			m.signIns, m.addressDelays, m.timeToState)
	}
	return m
}

// reached observes, once the consumer's transaction has committed, the
// time from provisional acceptance to state for an application that has
// just moved there (from before).
func (s *Service) reached(ctx context.Context, app *domain.Application, before string) {
	if app.Status == before || (app.Status != domain.StatusApproved && app.Status != domain.StatusIssued) {
		return
	}
	d, state := s.Clock.Now().Sub(app.AcceptedAt), app.Status
	bus.AfterCommit(ctx, func() { s.Metrics.timeToState.WithLabelValues(state).Observe(max(d.Seconds(), 0)) })
}

// FunnelStatuses are the statuses the funnel gauge counts.
var FunnelStatuses = []string{
	domain.StatusProvisional, domain.StatusCancelled, domain.StatusAccepted, domain.StatusAwaitingPayment,
	domain.StatusValidating, domain.StatusInReview, domain.StatusApproved, domain.StatusIssued, domain.StatusRejected,
}

// FunnelCap bounds each status's count: past it the gauge says "at least".
const FunnelCap = 1_000_000

// FunnelCollector is the application funnel (OP-3): applications by
// status, counted at scrape time (each status at most FunnelCap, by
// index) and cached for a few seconds.
func (s *Service) FunnelCollector() *metrics.QueryGauge {
	g := metrics.NewQueryGauge(prometheus.GaugeOpts{
		Name: "applications", Help: "Applications by status (the funnel); each status counted up to 1,000,000.",
	}, []string{"status"}, func(ctx context.Context) ([]metrics.Sample, error) {
		counts, err := store.CountByStatus(ctx, s.Pool, FunnelStatuses, FunnelCap)
		if err != nil {
			return nil, err
		}
		out := make([]metrics.Sample, 0, len(FunnelStatuses))
		for _, st := range FunnelStatuses {
			out = append(out, metrics.Sample{Labels: []string{st}, Value: float64(counts[st])})
		}
		return out, nil
	})
	g.TTL, g.Log, g.Clock = 10*time.Second, s.Log, s.Clock
	return g
}
