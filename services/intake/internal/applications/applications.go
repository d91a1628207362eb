package applications

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/intake/internal/form"
	"github.com/certlife/platform/services/intake/internal/secret"
	"github.com/certlife/platform/services/intake/internal/store"
)

// TimerCancelWindow closes an application's cancel window (PC-3).
const TimerCancelWindow = "cancel_window"

// Service holds what the use cases need.
type Service struct {
	Pool         *pgxpool.Pool
	NC           *nats.Conn
	Clock        clock.Clock
	Log          *slog.Logger
	CancelWindow time.Duration
	SessionTTL   time.Duration
	NotifierKey  seal.PublicKey
}

func (s *Service) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.Pool, fn)
}

func (s *Service) emit(ctx context.Context, tx pgx.Tx, p events.Payload, correlation string) error {
	env, err := events.New(p, s.Clock.Now(), correlation)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}

// Accepted is the answer to a submission.
type Accepted struct {
	ID             uuid.UUID `json:"id"`
	Status         string    `json:"status"`
	CancelDeadline time.Time `json:"cancel_deadline"`
}

// Submit provisionally accepts a new application (PC-1 … PC-3, PC-5).
func (s *Service) Submit(ctx context.Context, v form.Validated) (Accepted, error) {
	now := s.Clock.Now()
	if err := s.refuseDuringMaintenance(ctx, now); err != nil {
		return Accepted{}, err
	}
	if err := s.checkCoupon(ctx, v.Coupon, v.Product); err != nil {
		return Accepted{}, err
	}
	hash, err := secret.Hash(v.Password)
	if err != nil {
		return Accepted{}, err
	}
	applicant := store.Applicant{ID: newID(), Email: v.Applicant.Email, PasswordHash: hash, Language: v.Language}
	coupon := v.Coupon
	app := store.Application{
		ID: newID(), ApplicantID: applicant.ID, Product: v.Product, Kind: events.KindNew,
		Status: StatusProvisional, Language: v.Language, Coupon: &coupon,
		Organization: v.Organization, Applicant: v.Applicant, AcceptedAt: now,
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.InsertApplicant(ctx, tx, applicant, now); err != nil {
			return err
		}
		return s.accept(ctx, tx, &app)
	})
	if errors.Is(err, store.ErrCouponInUse) {
		return Accepted{}, httpx.Invalid(httpx.FieldError{Field: "coupon", Message: "this coupon is already used by another application"})
	}
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{ID: app.ID, Status: app.Status, CancelDeadline: app.CancelDeadline}, nil
}

// accept stores a provisional application with its cancel deadline and
// timer, and emits ApplicationProvisional — one transaction.
func (s *Service) accept(ctx context.Context, tx pgx.Tx, app *store.Application) error {
	deadline, reason, err := s.deadline(ctx, tx, app.Kind, app.AcceptedAt)
	if err != nil {
		return err
	}
	app.CancelDeadline = deadline
	if err := store.InsertApplication(ctx, tx, *app); err != nil {
		return err
	}
	if err := store.AddTimeline(ctx, tx, app.ID, app.AcceptedAt, events.TypeApplicationProvisional, nil); err != nil {
		return err
	}
	if err := s.emit(ctx, tx, events.ApplicationProvisional{
		Application: app.Event(), AcceptedAt: app.AcceptedAt, CancelDeadline: deadline,
	}, app.ID.String()); err != nil {
		return err
	}
	if !deadline.After(app.AcceptedAt) {
		// No window (a reissue): final in the same transaction.
		return s.finalize(ctx, tx, app, reason)
	}
	return timer.Schedule(ctx, tx, TimerCancelWindow, app.ID.String(), deadline, closePayload{Reason: reason})
}

type closePayload struct {
	Reason string `json:"reason"`
}

// deadline is accepted + the cancel window, or the start of a maintenance
// window that begins before that (PC-5).
func (s *Service) deadline(ctx context.Context, q store.Q, kind string, accepted time.Time) (time.Time, string, error) {
	if kind == events.KindReissue {
		// Final at once: the timer fires as soon as the transaction commits.
		return accepted, "immediate", nil
	}
	deadline, reason := accepted.Add(s.CancelWindow), "deadline"
	windows, err := store.Windows(ctx, q, accepted)
	if err != nil {
		return deadline, reason, err
	}
	for _, w := range windows {
		if !w.StartsAt.Before(accepted) && w.StartsAt.Before(deadline) {
			deadline, reason = w.StartsAt, "maintenance"
		}
	}
	return deadline, reason, nil
}

// refuseDuringMaintenance answers 503 with Retry-After inside a window.
func (s *Service) refuseDuringMaintenance(ctx context.Context, now time.Time) error {
	windows, err := store.Windows(ctx, s.Pool, now)
	if err != nil {
		return err
	}
	for _, w := range windows {
		if !now.Before(w.StartsAt) {
			p := httpx.NewProblem(http.StatusServiceUnavailable, "maintenance", "Under maintenance",
				fmt.Sprintf("the application service is under maintenance until %s", w.EndsAt.Format(time.RFC3339)))
			p.RetryAfter = w.EndsAt.Sub(now)
			return p
		}
	}
	return nil
}

var couponReasons = map[string]string{
	"unknown":       "this coupon does not exist",
	"used":          "this coupon has already been used",
	"expired":       "this coupon has expired",
	"wrong_product": "this coupon is for another product",
}

// checkCoupon asks billing at once, so that a bad coupon is refused at
// submission and not later by e-mail (PC-2).
func (s *Service) checkCoupon(ctx context.Context, coupon, product string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := rpc.Call[events.CouponCheckResponse](ctx, s.NC, events.RPCCouponCheck,
		events.CouponCheckRequest{Coupon: coupon, Product: product})
	if err != nil {
		s.Log.Warn("coupon check unavailable", "err", err)
		p := httpx.NewProblem(http.StatusServiceUnavailable, "coupon-check-unavailable", "Coupon check unavailable",
			"the coupon could not be checked right now; nothing was stored, please try again")
		p.RetryAfter = 5 * time.Second
		return p
	}
	if !resp.OK {
		msg := couponReasons[resp.Reason]
		if msg == "" {
			msg = "this coupon cannot be used"
		}
		return httpx.Invalid(httpx.FieldError{Field: "coupon", Message: msg})
	}
	return nil
}

// Cancel cancels a provisional application inside its window (PC-4).
func (s *Service) Cancel(ctx context.Context, id uuid.UUID, who Principal) error {
	now := s.Clock.Now()
	if err := s.refuseDuringMaintenance(ctx, now); err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		app, err := store.GetApplication(ctx, tx, id, true)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !who.Owns(app)) {
			return httpx.NotFound()
		}
		if err != nil {
			return err
		}
		if app.Status != StatusProvisional || !now.Before(app.CancelDeadline) {
			return httpx.Conflict("cancel-window-closed", "the cancel window of this application has closed; it can no longer be cancelled or changed")
		}
		app.Status = StatusCancelled
		if err := store.UpdateApplication(ctx, tx, app); err != nil {
			return err
		}
		if err := timer.Cancel(ctx, tx, TimerCancelWindow, app.ID.String()); err != nil {
			return err
		}
		if err := store.AddTimeline(ctx, tx, app.ID, now, events.TypeApplicationCancelled, nil); err != nil {
			return err
		}
		ev := events.ApplicationCancelled{ApplicationID: app.ID.String(), Recipient: app.Event().Recipient(), CancelledAt: now}
		if app.Coupon != nil {
			ev.Coupon = *app.Coupon
		}
		return s.emit(ctx, tx, ev, app.ID.String())
	})
}

// CloseWindow is the cancel-window timer: final acceptance (PC-3, PC-5).
func (s *Service) CloseWindow(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	id, err := uuid.Parse(t.Key)
	if err != nil {
		return err
	}
	app, err := store.GetApplication(ctx, tx, id, true)
	if err != nil {
		return err
	}
	if app.Status != StatusProvisional {
		return nil // cancelled or rejected meanwhile
	}
	var p closePayload
	_ = jsonUnmarshal(t.Payload, &p)
	if p.Reason == "" {
		p.Reason = "deadline"
	}
	return s.finalize(ctx, tx, &app, p.Reason)
}

// finalize is final acceptance (本受付): the application can no longer be
// cancelled or changed, and CancelWindowClosed carries it on.
func (s *Service) finalize(ctx context.Context, tx pgx.Tx, app *store.Application, reason string) error {
	now := s.Clock.Now()
	app.Status, app.ClosedAt = StatusAccepted, &now
	if err := store.UpdateApplication(ctx, tx, *app); err != nil {
		return err
	}
	if app.Kind != events.KindNew {
		// The latest e-mail and language of a renewal or reissue become
		// the applicant's: the next sign-in uses them (seed 003).
		if err := store.UpdateApplicantContact(ctx, tx, app.ApplicantID, app.Applicant.Email, app.Language); err != nil {
			return err
		}
	}
	if err := store.AddTimeline(ctx, tx, app.ID, now, events.TypeCancelWindowClosed, nil); err != nil {
		return err
	}
	return s.emit(ctx, tx, events.CancelWindowClosed{Application: app.Event(), ClosedAt: now, Reason: reason}, app.ID.String())
}

// View is an application as its applicant sees it (SPEC §5).
type View struct {
	ID             uuid.UUID             `json:"id"`
	Product        string                `json:"product"`
	Kind           string                `json:"kind"`
	Status         string                `json:"status"`
	CancelDeadline time.Time             `json:"cancel_deadline"`
	CertificateID  *uuid.UUID            `json:"certificate_id,omitempty"`
	Timeline       []store.TimelineEntry `json:"timeline"`
}

// Get returns the application for its applicant.
func (s *Service) Get(ctx context.Context, id uuid.UUID, who Principal) (View, error) {
	app, err := store.GetApplication(ctx, s.Pool, id, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !who.Owns(app)) {
		return View{}, httpx.NotFound()
	}
	if err != nil {
		return View{}, err
	}
	tl, err := store.Timeline(ctx, s.Pool, id)
	if err != nil {
		return View{}, err
	}
	return View{ID: app.ID, Product: app.Product, Kind: app.Kind, Status: app.Status,
		CancelDeadline: app.CancelDeadline, CertificateID: app.CertificateID, Timeline: tl}, nil
}

func newID() uuid.UUID { return uuid.Must(uuid.NewV7()) }
