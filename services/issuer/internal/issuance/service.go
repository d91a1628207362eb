// Package issuance is the issuer's use cases: certificates from approval
// to retrieval, revocation and CRLs. Every state change and the events it
// emits commit in one transaction, opened here and nowhere else.
package issuance

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/goodkey"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/ct"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// Timer kinds.
const (
	TimerCRL         = "issuer-crl"          // key "<issuer>:periodic" or "<issuer>:rev:<certificate id>"
	TimerPKCS12Purge = "issuer-pkcs12-purge" // key = certificate id
)

// Policy figures.
const (
	// PKCS12Lifetime: an undownloaded PKCS#12 file is deleted after it (PC-14).
	PKCS12Lifetime = 24 * time.Hour
	// CRLValidity is nextUpdate - thisUpdate (IS-7: at most 10 days).
	CRLValidity = 7 * 24 * time.Hour
	// CRLPeriod is the longest time between two CRLs (IS-7: at most 4
	// days); a day's slack leaves room for a failed timer's retries.
	CRLPeriod = 3 * 24 * time.Hour
	// GeneratedKeyBits: keys made for PKCS#12 delivery are RSA 2048 (see README).
	GeneratedKeyBits = 2048
)

// Service runs the issuer's use cases.
type Service struct {
	Pool    *pgxpool.Pool
	Clock   clock.Clock
	CA      *ca.Hierarchy
	Log     *slog.Logger
	Term    time.Duration // PRODUCT_TERM_CLIENT
	Metrics *Metrics
	// Server certificates: the CT logs (IS-9), the floor of SCTs each
	// certificate embeds (CT_MIN_SCTS), and the key policy applied again
	// at signing (SV-6).
	CT        *ct.Submitter
	MinSCTs   int
	KeyPolicy goodkey.Policy
	// MassBatch is how many certificates one transaction of a mass
	// revocation revokes (0 = DefaultMassBatch).
	MassBatch int
	// CoverageLead: how long before a server certificate's notAfter the
	// reissue inside a longer coverage is announced (IS-4,
	// COVERAGE_REISSUE_LEAD; 0 = domain.CoverageReissueLead).
	CoverageLead time.Duration

	slotsOnce sync.Once
	slots     chan struct{}
}

// issuanceSlots bounds the issuances running at once in one process. An
// issuance holds two pool connections at the same time — the locked
// certificate row and the serial committed before signing (IS-2) — so
// without a bound, enough concurrent retrievals take every connection and
// wait for one another forever. Key generation is CPU-bound anyway.
const issuanceSlots = 3

// acquireSlot waits for an issuance slot; release it when done.
func (s *Service) acquireSlot(ctx context.Context) (release func(), err error) {
	s.slotsOnce.Do(func() { s.slots = make(chan struct{}, issuanceSlots) })
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Metrics of the issuer (OP-3).
type Metrics struct {
	Issued       *prometheus.CounterVec
	LintFailures prometheus.Counter
	Revoked      *prometheus.CounterVec
	CRLThis      *prometheus.GaugeVec
	CRLNumber    *prometheus.GaugeVec
	Purged       prometheus.Counter
	// IssuanceFailures counts failed server issuance attempts by stage
	// and whether they were final (IS-3, IS-9).
	IssuanceFailures *prometheus.CounterVec
	// CTSubmissions counts submissions to each CT log by result.
	CTSubmissions *prometheus.CounterVec
}

// NewMetrics registers the issuer's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Issued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "certificates_issued_total",
			Help: "Certificates signed, by retrieval mode (client) or \"server\"."}, []string{"mode"}),
		LintFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "certificate_lint_failures_total",
			Help: "Issuances stopped by a lint error (IS-3)."}),
		Revoked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "certificates_revoked_total",
			Help: "Certificates revoked, by reason."}, []string{"reason"}),
		CRLThis: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crl_this_update_timestamp_seconds",
			Help: "thisUpdate of the latest CRL (CRL age = now - this)."}, []string{"issuer"}),
		CRLNumber: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crl_number",
			Help: "CRLNumber of the latest CRL."}, []string{"issuer"}),
		Purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "pkcs12_purged_total",
			Help: "PKCS#12 files deleted undownloaded after 24 hours."}),
	}
	// Known label values exist from the start, at zero (OP-3 dashboards).
	for _, mode := range []string{ModePKCS12, ModeCSR} {
		m.Issued.WithLabelValues(mode)
	}
	for _, r := range profile.Reasons() {
		m.Revoked.WithLabelValues(r)
	}
	m.IssuanceFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "issuance_failures_total",
		Help: "Failed server certificate issuance attempts, by stage and finality (listed at /ops/v1/issuance-failures)."},
		[]string{"stage", "final"})
	m.CTSubmissions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ct_submissions_total",
		Help: "Precertificate submissions to CT logs, by log and result (IS-9)."}, []string{"log", "result"})
	reg.MustRegister(m.Issued, m.LintFailures, m.Revoked, m.CRLThis, m.CRLNumber, m.Purged, m.IssuanceFailures, m.CTSubmissions)
	return m
}

// emit writes an event to the outbox inside tx.
func (s *Service) emit(ctx context.Context, tx pgx.Tx, p events.Payload, correlation string) error {
	env, err := events.New(p, s.Clock.Now(), correlation)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}

func recipient(c *store.Certificate) events.Recipient {
	return events.Recipient{Email: c.Email, Language: c.Language, Name: c.RecipientName}
}
