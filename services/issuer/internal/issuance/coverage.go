package issuance

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/issuer/internal/domain"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// TimerCoverageReissue announces the reissue inside the coverage of a
// server certificate whose coverage ends after its notAfter (IS-4); key =
// certificate id, due CoverageLead before notAfter.
const TimerCoverageReissue = "issuer-coverage-reissue"

// coverageLead is the configured lead (COVERAGE_REISSUE_LEAD) or the default.
func (s *Service) coverageLead() time.Duration {
	if s.CoverageLead > 0 {
		return s.CoverageLead
	}
	return domain.CoverageReissueLead
}

// scheduleCoverageReissue sets the IS-4 timer of a server certificate
// just issued, when its coverage goes on after it.
func (s *Service) scheduleCoverageReissue(ctx context.Context, tx pgx.Tx, id uuid.UUID, notBefore, notAfter, coverageEnd time.Time) error {
	at, ok := domain.CoverageReissueAt(notBefore, notAfter, coverageEnd, s.coverageLead())
	if !ok {
		return nil
	}
	return timer.Schedule(ctx, tx, TimerCoverageReissue, id.String(), at, nil)
}

// OnCoverageReissue emits CoverageReissueDue for a server certificate
// whose coverage outlasts it (IS-4), unless it was revoked, a renewal or
// reissue of it is already recorded here, or its coverage is over.
// Intake makes the reissue application.
func (s *Service) OnCoverageReissue(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	id, err := uuid.Parse(t.Key)
	if err != nil {
		return nil
	}
	c, err := store.Lock(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Product != events.ProductServer || c.Status != store.StatusIssued || c.Revoked() || c.NotAfter == nil {
		return nil
	}
	var req events.ServerApplication
	if err := json.Unmarshal(c.Server, &req); err != nil {
		s.Log.Error("coverage reissue: the stored application does not decode", "certificate_id", c.ID, "err", err)
		return nil
	}
	now := s.Clock.Now()
	if !req.CoverageEnd.After(c.NotAfter.Add(domain.MinServerValidity)) || !now.Before(*c.NotAfter) {
		return nil
	}
	replaced, err := store.HasSuccessor(ctx, tx, c.ID)
	if err != nil || replaced {
		return err
	}
	s.Log.Info("coverage reissue due", "certificate_id", c.ID, "not_after", c.NotAfter, "coverage_end", req.CoverageEnd,
		"reuse_key", req.ReuseKey)
	return s.emit(ctx, tx, events.CoverageReissueDue{
		CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, CustomerID: req.CustomerID, OrderID: req.OrderID,
		CommonName: req.CommonName, NotAfter: *c.NotAfter, CoverageEnd: req.CoverageEnd, ReuseKey: req.ReuseKey, DueAt: now,
	}, c.CorrelationID)
}
