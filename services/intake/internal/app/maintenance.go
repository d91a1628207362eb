package app

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// AddWindow plans a maintenance window. Provisional applications whose
// cancel deadline falls after its start become final at the start: their
// deadline and timer are pulled forward (PC-5).
func (s *Service) AddWindow(ctx context.Context, starts, ends time.Time, actor string) (domain.MaintenanceWindow, error) {
	w, err := domain.NewMaintenanceWindow(starts, ends, s.Clock.Now(), actor)
	if err != nil {
		return w, err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.InsertWindow(ctx, tx, w); err != nil {
			return err
		}
		ids, err := store.ProvisionalDeadlineAfter(ctx, tx, w.StartsAt)
		if err != nil {
			return err
		}
		for _, id := range ids {
			app, err := store.UpdateApplication(ctx, tx, id, func(a *domain.Application) error {
				a.CancelDeadline = domain.PulledForward(w.StartsAt, a.AcceptedAt)
				return nil
			})
			if err != nil {
				return err
			}
			if err := timer.Schedule(ctx, tx, TimerCancelWindow, id.String(), app.CancelDeadline,
				closePayload{Reason: domain.CloseMaintenance}); err != nil {
				return err
			}
		}
		return nil
	})
	return w, err
}

// DeleteWindow removes a window. Deadlines already pulled forward stay:
// the applicant was told, and an earlier final acceptance harms no one.
func (s *Service) DeleteWindow(ctx context.Context, id uuid.UUID) error {
	ok, err := store.DeleteWindow(ctx, s.Pool, id)
	if err != nil {
		return err
	}
	if !ok {
		return domain.ErrNotFound()
	}
	return nil
}

// Windows lists the windows that have not ended.
func (s *Service) Windows(ctx context.Context) ([]domain.MaintenanceWindow, error) {
	return store.Windows(ctx, s.Pool, s.Clock.Now())
}
