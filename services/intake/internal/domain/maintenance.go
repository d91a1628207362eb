package domain

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// MaintenanceWindow is a planned outage of the application service (PC-5).
type MaintenanceWindow struct {
	ID        uuid.UUID `json:"id"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// NewMaintenanceWindow checks and builds a window planned at now.
func NewMaintenanceWindow(starts, ends, now time.Time, actor string) (MaintenanceWindow, error) {
	var fields []errs.Field
	if !ends.After(starts) {
		fields = append(fields, errs.Field{Name: "ends_at", Message: "must be after starts_at"})
	}
	if !ends.After(now) {
		fields = append(fields, errs.Field{Name: "ends_at", Message: "must be in the future"})
	}
	if len(fields) > 0 {
		return MaintenanceWindow{}, errs.Invalid(fields...)
	}
	return MaintenanceWindow{ID: NewID(), StartsAt: starts.UTC(), EndsAt: ends.UTC(), CreatedBy: actor, CreatedAt: now}, nil
}

// Why an application became final.
const (
	CloseDeadline    = "deadline"
	CloseMaintenance = "maintenance"
	CloseImmediate   = "immediate"
)

// Deadline is the cancel deadline of an application of kind accepted at
// accepted: accepted + the cancel window, or the start of a maintenance
// window that begins before that (PC-3, PC-5). A reissue has no window
// (seed 001): it is final at once.
func Deadline(kind string, accepted time.Time, window time.Duration, windows []MaintenanceWindow) (time.Time, string) {
	if kind == events.KindReissue {
		return accepted, CloseImmediate
	}
	deadline, reason := accepted.Add(window), CloseDeadline
	for _, w := range windows {
		if !w.StartsAt.Before(accepted) && w.StartsAt.Before(deadline) {
			deadline, reason = w.StartsAt, CloseMaintenance
		}
	}
	return deadline, reason
}

// PulledForward is the deadline of an application accepted at accepted
// once a window starting at start is planned (PC-5): never before acceptance.
func PulledForward(start, accepted time.Time) time.Time {
	if start.After(accepted) {
		return start
	}
	return accepted
}

// UnderMaintenance refuses submissions and cancellations inside a window
// with 503 and Retry-After (PC-5).
func UnderMaintenance(windows []MaintenanceWindow, now time.Time) error {
	for _, w := range windows {
		if !now.Before(w.StartsAt) && now.Before(w.EndsAt) {
			return errs.Unavailable("maintenance",
				fmt.Sprintf("the application service is under maintenance until %s", w.EndsAt.Format(time.RFC3339)),
				w.EndsAt.Sub(now), nil)
		}
	}
	return nil
}
