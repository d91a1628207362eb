package applications

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/intake/internal/store"
)

// AddWindow plans a maintenance window. Provisional applications whose
// cancel deadline falls after its start become final at the start: their
// deadline and timer are pulled forward (PC-5).
func (s *Service) AddWindow(ctx context.Context, starts, ends time.Time, actor string) (store.MaintenanceWindow, error) {
	now := s.Clock.Now()
	var errs []httpx.FieldError
	if !ends.After(starts) {
		errs = append(errs, httpx.FieldError{Field: "ends_at", Message: "must be after starts_at"})
	}
	if !ends.After(now) {
		errs = append(errs, httpx.FieldError{Field: "ends_at", Message: "must be in the future"})
	}
	if len(errs) > 0 {
		return store.MaintenanceWindow{}, httpx.Invalid(errs...)
	}
	w := store.MaintenanceWindow{ID: newID(), StartsAt: starts.UTC(), EndsAt: ends.UTC(), CreatedBy: actor, CreatedAt: now}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.InsertWindow(ctx, tx, w); err != nil {
			return err
		}
		ids, err := store.ProvisionalDeadlineAfter(ctx, tx, w.StartsAt)
		if err != nil {
			return err
		}
		for _, id := range ids {
			app, err := store.GetApplication(ctx, tx, id, true)
			if err != nil {
				return err
			}
			app.CancelDeadline = maxTime(w.StartsAt, app.AcceptedAt)
			if err := store.UpdateApplication(ctx, tx, app); err != nil {
				return err
			}
			if err := timer.Schedule(ctx, tx, TimerCancelWindow, id.String(), app.CancelDeadline, closePayload{Reason: "maintenance"}); err != nil {
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
		return httpx.NotFound()
	}
	return nil
}

// Windows lists the windows that have not ended.
func (s *Service) Windows(ctx context.Context) ([]store.MaintenanceWindow, error) {
	return store.Windows(ctx, s.Pool, s.Clock.Now())
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
