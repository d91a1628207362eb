package app

import (
	"context"
	"time"

	"github.com/certlife/platform/services/intake/internal/store"
)

// Retention (issue 6 item 3): what intake writes on a hot path and may
// forget. The platform's retention timer calls these periodically.

// PruneSessions deletes sessions that expired before `before`.
func (s *Service) PruneSessions(ctx context.Context, before time.Time) (int64, error) {
	return store.PruneSessions(ctx, s.Pool, before)
}

// PruneLoginFailures deletes sign-in attempts that left the throttle's
// window (SE-3 looks back 15 minutes) and e-mail rows without a lock.
func (s *Service) PruneLoginFailures(ctx context.Context) (int64, error) {
	now := s.Clock.Now()
	return store.PruneLoginFailures(ctx, s.Pool, now.Add(-s.Throttle.Window), now)
}
