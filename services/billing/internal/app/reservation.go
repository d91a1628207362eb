package app

// The "billing-coupons" consumer follows an application's coupon through
// its life (PC-2, PC-4): reserved at provisional acceptance, consumed at
// final acceptance, released on cancellation.
//
// The three events can arrive in any order (separate subjects, retries,
// replicas), so each application has a record whose states only move
// forward (domain.Reservation). Whichever event comes first decides:
//
//   - ApplicationProvisional with no record: reserve, or reject.
//   - CancelWindowClosed with no record (provisional not seen yet): take
//     the coupon and consume it at once, or reject; the provisional event
//     then finds a final record and does nothing.
//   - ApplicationCancelled with no record: record "released" so that the
//     late provisional event never reserves the coupon.
//
// Per-application ordering is store.UpdateReservation's lock; the coupon
// itself is claimed by conditional UPDATEs, so two applications racing
// for one coupon cannot both hold it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/billing/internal/domain"
	"github.com/certlife/platform/services/billing/internal/store"
)

// ConsumerCoupons is the durable consumer of the coupon's life.
const ConsumerCoupons = "billing-coupons"

// Consumer is the durable consumer running the reservation use cases.
func (a *App) Consumer() bus.Consumer {
	return bus.Consumer{
		Name: ConsumerCoupons,
		Handlers: map[string]bus.Handler{
			events.TypeApplicationProvisional: a.Provisional,
			events.TypeApplicationCancelled:   a.Cancelled,
			events.TypeCancelWindowClosed:     a.WindowClosed,
		},
	}
}

// Provisional reserves the application's coupon (PC-2).
func (a *App) Provisional(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationProvisional](env)
	if err != nil {
		return err
	}
	app := p.Application
	if app.Coupon == "" {
		return nil // paid otherwise (invoice)
	}
	now := a.Clock.Now()
	return store.UpdateReservation(ctx, tx, app.ID, now, func(rec *domain.Reservation) error {
		if rec.Known() {
			// A cancellation or the final acceptance came first (or this
			// is a second provisional event for it). Nothing more to do.
			a.Log.Debug("provisional event after a decision", "application", app.ID, "state", rec.State)
			return nil
		}
		// Expiry is judged at acceptance: a consumer running late must not
		// reject a coupon that was valid when the applicant submitted it.
		acceptedAt := p.AcceptedAt
		if acceptedAt.IsZero() {
			acceptedAt = env.OccurredAt
		}
		return a.claim(ctx, tx, env, rec, app, domain.StatusReserved, acceptedAt, now)
	})
}

// WindowClosed consumes the coupon at final acceptance and confirms the
// payment (PC-2, PC-6).
func (a *App) WindowClosed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	w, err := events.Decode[events.CancelWindowClosed](env)
	if err != nil {
		return err
	}
	app := w.Application
	now := a.Clock.Now()
	if app.Coupon == "" {
		if app.Kind == events.KindReissue {
			// A reissue is paid by the coverage of the certificate it
			// replaces (PC-11): nothing to charge, but say so.
			return emit(ctx, tx, env, events.PaymentConfirmed{ApplicationID: app.ID, Method: "coverage", Reference: app.PreviousCertificateID}, now)
		}
		return nil
	}
	return store.UpdateReservation(ctx, tx, app.ID, now, func(rec *domain.Reservation) error {
		switch rec.State {
		case "":
			// The provisional event has not arrived yet. The application was
			// accepted no earlier than one cancel window before it closed (a
			// maintenance window only pulls the close earlier), and intake
			// checked the coupon at submission; judging expiry at that bound
			// never rejects a coupon that was valid at acceptance.
			closedAt := w.ClosedAt
			if closedAt.IsZero() {
				closedAt = env.OccurredAt
			}
			return a.claim(ctx, tx, env, rec, app, domain.StatusConsumed, closedAt.Add(-a.CancelWindow), now)
		case domain.StateReserved:
			ok, err := store.Consume(ctx, tx, rec.Coupon, app.ID, now)
			if err != nil {
				return err
			}
			if !ok {
				// The record says we hold it and the coupon row disagrees:
				// never confirm a payment we cannot prove.
				return fmt.Errorf("coupon %s is not reserved by application %s", rec.Coupon, app.ID)
			}
			rec.State = domain.StateConsumed
			if err := emit(ctx, tx, env, events.PaymentConfirmed{ApplicationID: app.ID, Method: "coupon", Reference: rec.Coupon}, now); err != nil {
				return err
			}
			a.Metrics.Consumed.Inc()
		case domain.StateReleased:
			a.Log.Warn("final acceptance of a cancelled application ignored", "application", app.ID)
		}
		// consumed: already done; rejected: never paid by this coupon.
		return nil
	})
}

// Cancelled releases the application's coupon (PC-4).
func (a *App) Cancelled(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	c, err := events.Decode[events.ApplicationCancelled](env)
	if err != nil {
		return err
	}
	now := a.Clock.Now()
	return store.UpdateReservation(ctx, tx, c.ApplicationID, now, func(rec *domain.Reservation) error {
		switch rec.State {
		case "":
			// Cancelled before we saw it provisional: leave a final record
			// so the late provisional event cannot reserve the coupon.
			rec.Coupon, rec.State = c.Coupon, domain.StateReleased
			if c.Coupon == "" {
				return nil
			}
			return emit(ctx, tx, env, events.CouponReleased{ApplicationID: c.ApplicationID, Coupon: c.Coupon}, now)
		case domain.StateReserved:
			ok, err := store.Release(ctx, tx, rec.Coupon, c.ApplicationID)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("coupon %s is not reserved by application %s", rec.Coupon, c.ApplicationID)
			}
			rec.State = domain.StateReleased
			if err := emit(ctx, tx, env, events.CouponReleased{ApplicationID: c.ApplicationID, Coupon: rec.Coupon}, now); err != nil {
				return err
			}
			a.Metrics.Released.Inc()
		case domain.StateConsumed:
			// Intake refuses a cancellation after the deadline (PC-4); a
			// consumed coupon is never given back.
			a.Log.Warn("cancellation after final acceptance ignored", "application", c.ApplicationID)
		}
		return nil
	})
}

// claim takes the coupon for the application as status (reserved, or
// consumed when the final acceptance came first) and records it in rec,
// or records and announces why it cannot.
func (a *App) claim(ctx context.Context, tx pgx.Tx, env events.Envelope, rec *domain.Reservation, app events.Application, status string, validAt, now time.Time) error {
	var reason string
	// A failed claim is explained by re-reading the coupon; if it became
	// available in between (a release committed), claim again.
	for attempt := 0; attempt < 3; attempt++ {
		ok, err := store.Take(ctx, tx, app.Coupon, app.Product, app.ID, status, validAt, now)
		if err != nil {
			return err
		}
		if ok {
			return a.claimed(ctx, tx, env, rec, app, status, now)
		}
		c, err := store.Coupon(ctx, tx, app.Coupon)
		switch {
		case errs.Is(err, errs.KindNotFound):
			reason = domain.ReasonUnknown
		case err != nil:
			return err
		default:
			reason = c.Unusable(app.Product, validAt)
		}
		if reason != "" {
			break
		}
	}
	if reason == "" {
		return errors.New("coupon " + app.Coupon + " kept changing hands")
	}
	rec.Coupon, rec.State, rec.Reason = app.Coupon, domain.StateRejected, reason
	if err := emit(ctx, tx, env, events.CouponRejected{ApplicationID: app.ID, Coupon: app.Coupon, Reason: reason}, now); err != nil {
		return err
	}
	a.Metrics.Rejected.WithLabelValues(reason).Inc()
	return nil
}

func (a *App) claimed(ctx context.Context, tx pgx.Tx, env events.Envelope, rec *domain.Reservation, app events.Application, status string, now time.Time) error {
	rec.Coupon = app.Coupon
	if status == domain.StatusReserved {
		rec.State = domain.StateReserved
		if err := emit(ctx, tx, env, events.CouponReserved{ApplicationID: app.ID, Coupon: app.Coupon}, now); err != nil {
			return err
		}
		a.Metrics.Reserved.Inc()
		return nil
	}
	rec.State = domain.StateConsumed
	if err := emit(ctx, tx, env, events.PaymentConfirmed{ApplicationID: app.ID, Method: "coupon", Reference: app.Coupon}, now); err != nil {
		return err
	}
	a.Metrics.Consumed.Inc()
	return nil
}

func emit(ctx context.Context, tx pgx.Tx, cause events.Envelope, p events.Payload, now time.Time) error {
	env, err := events.Follow(cause, p, now)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}
