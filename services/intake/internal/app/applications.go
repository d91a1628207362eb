package app

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// Accepted is the answer to a submission.
type Accepted struct {
	ID             uuid.UUID `json:"id"`
	Status         string    `json:"status"`
	CancelDeadline time.Time `json:"cancel_deadline"`
}

// Submit provisionally accepts a new application (PC-1 … PC-3, PC-5).
func (s *Service) Submit(ctx context.Context, v domain.Validated) (Accepted, error) {
	now := s.Clock.Now()
	if err := s.refuseDuringMaintenance(ctx, now); err != nil {
		return Accepted{}, err
	}
	if err := s.checkCoupon(ctx, v.Coupon, v.Product); err != nil {
		return Accepted{}, err
	}
	hash, err := s.Hasher.Hash(ctx, v.Password)
	if err != nil {
		return Accepted{}, err
	}
	applicant := domain.Applicant{ID: domain.NewID(), Email: v.Applicant.Email, PasswordHash: hash, Language: v.Language}
	coupon := v.Coupon
	app := domain.Application{
		ID: domain.NewID(), ApplicantID: applicant.ID, Product: v.Product, Kind: events.KindNew,
		Status: domain.StatusProvisional, Language: v.Language, Coupon: &coupon,
		Organization: v.Organization, Applicant: v.Applicant, AcceptedAt: now,
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.InsertApplicant(ctx, tx, applicant, now); err != nil {
			return err
		}
		return s.accept(ctx, tx, &app)
	})
	if err != nil {
		return Accepted{}, couponInUse(err)
	}
	return Accepted{ID: app.ID, Status: app.Status, CancelDeadline: app.CancelDeadline}, nil
}

// accept stores a provisional application with its cancel deadline and
// timer, and emits ApplicationProvisional — in the caller's transaction.
func (s *Service) accept(ctx context.Context, tx pgx.Tx, app *domain.Application) error {
	windows, err := store.Windows(ctx, tx, app.AcceptedAt)
	if err != nil {
		return err
	}
	deadline, reason := domain.Deadline(app.Kind, app.AcceptedAt, s.CancelWindow, windows)
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
		final, err := s.finalize(ctx, tx, app.ID, reason)
		*app = final
		return err
	}
	return timer.Schedule(ctx, tx, TimerCancelWindow, app.ID.String(), deadline, closePayload{Reason: reason})
}

type closePayload struct {
	Reason string `json:"reason"`
}

// refuseDuringMaintenance answers 503 with Retry-After inside a window (PC-5).
func (s *Service) refuseDuringMaintenance(ctx context.Context, now time.Time) error {
	windows, err := store.Windows(ctx, s.Pool, now)
	if err != nil {
		return err
	}
	return domain.UnderMaintenance(windows, now)
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
		return errs.Unavailable("coupon-check-unavailable",
			"the coupon could not be checked right now; nothing was stored, please try again", 5*time.Second, err)
	}
	if !resp.OK {
		msg := couponReasons[resp.Reason]
		if msg == "" {
			msg = "this coupon cannot be used"
		}
		return errs.InvalidField("coupon", msg)
	}
	return nil
}

// Cancel cancels a provisional application inside its window (PC-4).
func (s *Service) Cancel(ctx context.Context, id uuid.UUID, who domain.Principal) error {
	now := s.Clock.Now()
	if err := s.refuseDuringMaintenance(ctx, now); err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		app, err := store.UpdateApplication(ctx, tx, id, func(a *domain.Application) error {
			if !who.Owns(*a) {
				return domain.ErrNotFound()
			}
			return a.Cancel(now)
		})
		if err != nil {
			return notFound(err)
		}
		if err := timer.Cancel(ctx, tx, TimerCancelWindow, app.ID.String()); err != nil {
			return err
		}
		if err := store.AddTimeline(ctx, tx, app.ID, now, events.TypeApplicationCancelled, nil); err != nil {
			return err
		}
		if err := s.releaseOrder(ctx, tx, app); err != nil {
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
	var p closePayload
	if len(t.Payload) > 0 {
		_ = json.Unmarshal(t.Payload, &p)
	}
	if p.Reason == "" {
		p.Reason = domain.CloseDeadline
	}
	_, err = s.finalize(ctx, tx, id, p.Reason)
	return err
}

// finalize is final acceptance (本受付): the application can no longer be
// cancelled or changed, and CancelWindowClosed carries it on. An
// application cancelled or rejected meanwhile is left alone.
func (s *Service) finalize(ctx context.Context, tx pgx.Tx, id uuid.UUID, reason string) (domain.Application, error) {
	now := s.Clock.Now()
	errDone := errs.Conflict("not-provisional", "")
	app, err := store.UpdateApplication(ctx, tx, id, func(a *domain.Application) error {
		if a.Status != domain.StatusProvisional {
			return errDone
		}
		a.Finalize(now)
		return nil
	})
	if errors.Is(err, errDone) {
		return app, nil
	}
	if err != nil {
		return app, err
	}
	if app.Kind != events.KindNew && app.Server == nil {
		// The latest e-mail and language of a renewal or reissue become
		// the applicant's: the next sign-in uses them (seed 003).
		if err := store.UpdateApplicantContact(ctx, tx, app.ApplicantID, app.Applicant.Email, app.Language); err != nil {
			return app, err
		}
	}
	if err := store.AddTimeline(ctx, tx, app.ID, now, events.TypeCancelWindowClosed, nil); err != nil {
		return app, err
	}
	return app, s.emit(ctx, tx, events.CancelWindowClosed{Application: app.Event(), ClosedAt: now, Reason: reason}, app.ID.String())
}

// View is an application as its applicant sees it (SPEC §5).
type View struct {
	ID             uuid.UUID              `json:"id"`
	Product        string                 `json:"product"`
	Kind           string                 `json:"kind"`
	Status         string                 `json:"status"`
	CancelDeadline time.Time              `json:"cancel_deadline"`
	CertificateID  *uuid.UUID             `json:"certificate_id,omitempty"`
	Timeline       []domain.TimelineEntry `json:"timeline"`
	// A server application's order and its steps (SV-12), and the
	// renewal-or-new decision (SV-5, SV-11).
	OrderID       *uuid.UUID    `json:"order_id,omitempty"`
	Decision      string        `json:"decision,omitempty"`
	RenewalOf     *string       `json:"renewal_of,omitempty"`
	CarryOverDays *int          `json:"carry_over_days,omitempty"`
	CoverageEnd   *time.Time    `json:"coverage_end,omitempty"`
	AutoReapplied bool          `json:"auto_reapplied,omitempty"`
	Steps         []domain.Step `json:"steps,omitempty"`
}

// Get returns the application for its applicant.
func (s *Service) Get(ctx context.Context, id uuid.UUID, who domain.Principal) (View, error) {
	app, err := store.GetApplication(ctx, s.Pool, id)
	if err != nil {
		return View{}, notFound(err)
	}
	if !who.Owns(app) {
		return View{}, domain.ErrNotFound()
	}
	tl, err := store.Timeline(ctx, s.Pool, id)
	if err != nil {
		return View{}, err
	}
	v := View{ID: app.ID, Product: app.Product, Kind: app.Kind, Status: app.Status,
		CancelDeadline: app.CancelDeadline, CertificateID: app.CertificateID, Timeline: tl}
	return v, s.serverView(ctx, app, &v)
}
