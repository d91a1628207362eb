package app

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/intake/internal/acme"
)

// ACMEMetrics are the ACME server's domain counters (OP-3, SPEC §4.10).
// Requests are already counted by the HTTP metrics, whose route label is
// the ACME route's pattern (http_requests_total{route="/acme/new-order"}).
// The service label comes from the registerer.
type ACMEMetrics struct {
	orders     *prometheus.CounterVec
	challenges *prometheus.CounterVec
	nonces     prometheus.Counter
	badNonces  prometheus.Counter
}

// acmeOrderStatuses are the statuses orders are counted reaching.
var acmeOrderStatuses = []string{"created", acme.StatusReady, acme.StatusProcessing, acme.StatusValid, acme.StatusInvalid}

// NewACMEMetrics registers the ACME metrics with reg (nil: on nothing).
func NewACMEMetrics(reg prometheus.Registerer) *ACMEMetrics {
	m := &ACMEMetrics{
		orders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acme_orders_total",
			Help: "ACME orders created, and orders reaching a status: ready (every authorization valid), processing (finalized), valid (certificate issued), invalid."},
			[]string{"status"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "acme_challenges_total",
			Help: "ACME challenges answered by the validation service, by type (http-01, dns-01) and result (valid, invalid)."},
			[]string{"type", "result"}),
		nonces: prometheus.NewCounter(prometheus.CounterOpts{Name: "acme_nonces_issued_total",
			Help: "ACME nonces issued (Replay-Nonce)."}),
		badNonces: prometheus.NewCounter(prometheus.CounterOpts{Name: "acme_bad_nonces_total",
			Help: "ACME requests refused with badNonce (missing, unknown, used or expired nonce)."}),
	}
	for _, s := range acmeOrderStatuses {
		m.orders.WithLabelValues(s)
	}
	for _, typ := range []string{events.DCVMethodHTTP01, events.DCVMethodDNS01} {
		for _, res := range []string{acme.StatusValid, acme.StatusInvalid} {
			m.challenges.WithLabelValues(typ, res)
		}
	}
	if reg != nil {
		reg.MustRegister(m.orders, m.challenges, m.nonces, m.badNonces)
	}
	return m
}

// order counts orders reaching status once ctx's transaction has
// committed (at once outside a consumer's handler: call it after the
// transaction).
func (m *ACMEMetrics) order(ctx context.Context, status string) {
	if m == nil {
		return
	}
	bus.AfterCommit(ctx, func() { m.orders.WithLabelValues(status).Inc() })
}

func (m *ACMEMetrics) challenge(ctx context.Context, typ, result string) {
	if m == nil {
		return
	}
	bus.AfterCommit(ctx, func() { m.challenges.WithLabelValues(typ, result).Inc() })
}

func (m *ACMEMetrics) nonceIssued() {
	if m != nil {
		m.nonces.Inc()
	}
}

func (m *ACMEMetrics) badNonce() {
	if m != nil {
		m.badNonces.Inc()
	}
}
