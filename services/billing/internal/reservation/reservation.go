// Package reservation follows an application's coupon through its life
// (PC-2, PC-4): reserved at provisional acceptance, consumed at final
// acceptance, released on cancellation.
//
// The three events can arrive in any order (separate subjects, retries,
// replicas), so each application has a record whose states only move
// forward: reserved -> consumed | released, and consumed, released and
// rejected are terminal. Whichever event comes first decides:
//
//   - ApplicationProvisional with no record: reserve, or reject.
//   - CancelWindowClosed with no record (provisional not seen yet): take
//     the coupon and consume it at once, or reject; the provisional event
//     then finds a final record and does nothing.
//   - ApplicationCancelled with no record: record "released" so that the
//     late provisional event never reserves the coupon.
//
// Per-application ordering is a transaction-scoped advisory lock; the
// coupon itself is claimed by conditional UPDATEs, so two applications
// racing for one coupon cannot both hold it.
package reservation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/billing/internal/coupon"
	"github.com/certlife/platform/services/billing/internal/metrics"
	"github.com/certlife/platform/services/billing/internal/store"
)

// Handlers are the bus handlers of the "billing-coupons" consumer.
type Handlers struct {
	Clock clock.Clock
	// CancelWindow bounds when an application whose provisional event is
	// not seen yet was accepted (see WindowClosed).
	CancelWindow time.Duration
	Metrics      *metrics.Metrics
	Log          *slog.Logger
}

// Consumer is the durable consumer running these handlers.
func (h *Handlers) Consumer() bus.Consumer {
	return bus.Consumer{
		Name: "billing-coupons",
		Handlers: map[string]bus.Handler{
			events.TypeApplicationProvisional: h.Provisional,
			events.TypeApplicationCancelled:   h.Cancelled,
			events.TypeCancelWindowClosed:     h.WindowClosed,
		},
	}
}

// Provisional reserves the application's coupon (PC-2).
func (h *Handlers) Provisional(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationProvisional](env)
	if err != nil {
		return err
	}
	a := p.Application
	if a.Coupon == "" {
		return nil // paid otherwise (invoice)
	}
	rec, found, err := lockAndGet(ctx, tx, a.ID)
	if err != nil || found {
		// A record means this application was already decided: a
		// cancellation or the final acceptance came first (or this is a
		// second provisional event for it). Nothing more to do.
		if found {
			h.Log.Debug("provisional event after a decision", "application", a.ID, "state", rec.State)
		}
		return err
	}
	// Expiry is judged at acceptance: a consumer running late must not
	// reject a coupon that was valid when the applicant submitted it.
	acceptedAt := p.AcceptedAt
	if acceptedAt.IsZero() {
		acceptedAt = env.OccurredAt
	}
	return h.claim(ctx, tx, env, a, coupon.StatusReserved, acceptedAt)
}

// WindowClosed consumes the coupon at final acceptance and confirms the
// payment (PC-2, PC-6).
func (h *Handlers) WindowClosed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	w, err := events.Decode[events.CancelWindowClosed](env)
	if err != nil {
		return err
	}
	a := w.Application
	if a.Coupon == "" {
		if a.Kind == events.KindReissue {
			// A reissue is paid by the coverage of the certificate it
			// replaces (PC-11): nothing to charge, but say so.
			return emit(ctx, tx, env, events.PaymentConfirmed{ApplicationID: a.ID, Method: "coverage", Reference: a.PreviousCertificateID}, h.Clock.Now())
		}
		return nil
	}
	rec, found, err := lockAndGet(ctx, tx, a.ID)
	if err != nil {
		return err
	}
	now := h.Clock.Now()
	if !found {
		// The provisional event has not arrived yet. The application was
		// accepted no earlier than one cancel window before it closed (a
		// maintenance window only pulls the close earlier), and intake
		// checked the coupon at submission; judging expiry at that bound
		// never rejects a coupon that was valid at acceptance.
		closedAt := w.ClosedAt
		if closedAt.IsZero() {
			closedAt = env.OccurredAt
		}
		return h.claim(ctx, tx, env, a, coupon.StatusConsumed, closedAt.Add(-h.CancelWindow))
	}
	switch rec.State {
	case store.StateReserved:
		ok, err := store.Consume(ctx, tx, rec.Coupon, a.ID, now)
		if err != nil {
			return err
		}
		if !ok {
			// The record says we hold it and the coupon row disagrees:
			// never confirm a payment we cannot prove.
			return fmt.Errorf("coupon %s is not reserved by application %s", rec.Coupon, a.ID)
		}
		if err := store.PutReservation(ctx, tx, store.Reservation{ApplicationID: a.ID, Coupon: rec.Coupon, State: store.StateConsumed}, now); err != nil {
			return err
		}
		if err := emit(ctx, tx, env, events.PaymentConfirmed{ApplicationID: a.ID, Method: "coupon", Reference: rec.Coupon}, now); err != nil {
			return err
		}
		h.Metrics.Consumed.Inc()
	case store.StateReleased:
		h.Log.Warn("final acceptance of a cancelled application ignored", "application", a.ID)
	}
	// consumed: already done; rejected: never paid by this coupon.
	return nil
}

// Cancelled releases the application's coupon (PC-4).
func (h *Handlers) Cancelled(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	c, err := events.Decode[events.ApplicationCancelled](env)
	if err != nil {
		return err
	}
	rec, found, err := lockAndGet(ctx, tx, c.ApplicationID)
	if err != nil {
		return err
	}
	now := h.Clock.Now()
	if !found {
		// Cancelled before we saw it provisional: leave a terminal record
		// so the late provisional event cannot reserve the coupon.
		if err := store.PutReservation(ctx, tx, store.Reservation{ApplicationID: c.ApplicationID, Coupon: c.Coupon, State: store.StateReleased}, now); err != nil {
			return err
		}
		if c.Coupon == "" {
			return nil
		}
		return emit(ctx, tx, env, events.CouponReleased{ApplicationID: c.ApplicationID, Coupon: c.Coupon}, now)
	}
	switch rec.State {
	case store.StateReserved:
		ok, err := store.Release(ctx, tx, rec.Coupon, c.ApplicationID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("coupon %s is not reserved by application %s", rec.Coupon, c.ApplicationID)
		}
		if err := store.PutReservation(ctx, tx, store.Reservation{ApplicationID: c.ApplicationID, Coupon: rec.Coupon, State: store.StateReleased}, now); err != nil {
			return err
		}
		if err := emit(ctx, tx, env, events.CouponReleased{ApplicationID: c.ApplicationID, Coupon: rec.Coupon}, now); err != nil {
			return err
		}
		h.Metrics.Released.Inc()
	case store.StateConsumed:
		// Intake refuses a cancellation after the deadline (PC-4); a
		// consumed coupon is never given back.
		h.Log.Warn("cancellation after final acceptance ignored", "application", c.ApplicationID)
	}
	return nil
}

// claim takes the coupon for the application as status (reserved or
// consumed), or records and announces why it cannot.
func (h *Handlers) claim(ctx context.Context, tx pgx.Tx, env events.Envelope, a events.Application, status string, validAt time.Time) error {
	now := h.Clock.Now()
	var reason string
	// A failed claim is explained by re-reading the coupon; if it became
	// available in between (a release committed), claim again.
	for attempt := 0; attempt < 3; attempt++ {
		ok, err := store.Take(ctx, tx, a.Coupon, a.Product, a.ID, status, validAt, now)
		if err != nil {
			return err
		}
		if ok {
			return h.claimed(ctx, tx, env, a, status, now)
		}
		c, err := store.Coupon(ctx, tx, a.Coupon)
		switch {
		case errors.Is(err, store.ErrNotFound):
			reason = coupon.ReasonUnknown
		case err != nil:
			return err
		default:
			reason = c.Unusable(a.Product, validAt)
		}
		if reason != "" {
			break
		}
	}
	if reason == "" {
		return errors.New("coupon " + a.Coupon + " kept changing hands")
	}
	if err := store.PutReservation(ctx, tx, store.Reservation{ApplicationID: a.ID, Coupon: a.Coupon, State: store.StateRejected, Reason: reason}, now); err != nil {
		return err
	}
	if err := emit(ctx, tx, env, events.CouponRejected{ApplicationID: a.ID, Coupon: a.Coupon, Reason: reason}, now); err != nil {
		return err
	}
	h.Metrics.Rejected.WithLabelValues(reason).Inc()
	return nil
}

func (h *Handlers) claimed(ctx context.Context, tx pgx.Tx, env events.Envelope, a events.Application, status string, now time.Time) error {
	if status == coupon.StatusReserved {
		if err := store.PutReservation(ctx, tx, store.Reservation{ApplicationID: a.ID, Coupon: a.Coupon, State: store.StateReserved}, now); err != nil {
			return err
		}
		if err := emit(ctx, tx, env, events.CouponReserved{ApplicationID: a.ID, Coupon: a.Coupon}, now); err != nil {
			return err
		}
		h.Metrics.Reserved.Inc()
		return nil
	}
	if err := store.PutReservation(ctx, tx, store.Reservation{ApplicationID: a.ID, Coupon: a.Coupon, State: store.StateConsumed}, now); err != nil {
		return err
	}
	if err := emit(ctx, tx, env, events.PaymentConfirmed{ApplicationID: a.ID, Method: "coupon", Reference: a.Coupon}, now); err != nil {
		return err
	}
	h.Metrics.Consumed.Inc()
	return nil
}

func lockAndGet(ctx context.Context, tx pgx.Tx, applicationID string) (store.Reservation, bool, error) {
	if err := store.LockApplication(ctx, tx, applicationID); err != nil {
		return store.Reservation{}, false, err
	}
	rec, err := store.GetReservation(ctx, tx, applicationID)
	if errors.Is(err, store.ErrNotFound) {
		return rec, false, nil
	}
	return rec, err == nil, err
}

func emit(ctx context.Context, tx pgx.Tx, cause events.Envelope, p events.Payload, now time.Time) error {
	env, err := events.Follow(cause, p, now)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}
