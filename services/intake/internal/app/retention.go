package app

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/services/intake/internal/store"
)

// PruneLoginFailures is the retention rule of the sign-in tables (issue 6
// item 3): attempts older than cutoff, and the per-e-mail rows that hold
// neither a lock nor an attempt. The platform's retention timer calls it.
func (s *Service) PruneLoginFailures(ctx context.Context, tx pgx.Tx, cutoff time.Time, _ int) (int64, error) {
	return store.PruneLoginFailures(ctx, tx, cutoff, s.Clock.Now())
}
