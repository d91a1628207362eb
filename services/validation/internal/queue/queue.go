// Package queue fills and empties the review queue (PC-6, OP-1): the
// "validation-reviews" consumer records final acceptance and payment in
// any order, and a review enters the queue once both are known; operators
// (or REVIEW_AUTO_APPROVE) decide it, which emits ReviewApproved or
// ReviewRejected in the same transaction as the decision.
package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/validation/internal/metrics"
	"github.com/certlife/platform/services/validation/internal/review"
	"github.com/certlife/platform/services/validation/internal/store"
)

// Queue holds what the handlers and decisions need.
type Queue struct {
	Clock       clock.Clock
	AutoApprove bool
	Metrics     *metrics.Metrics
	Log         *slog.Logger
}

// Consumer is the durable consumer feeding the queue.
func (q *Queue) Consumer() bus.Consumer {
	return bus.Consumer{
		Name: "validation-reviews",
		Handlers: map[string]bus.Handler{
			events.TypeCancelWindowClosed: q.WindowClosed,
			events.TypePaymentConfirmed:   q.PaymentConfirmed,
		},
	}
}

// WindowClosed records the application as finally accepted: its snapshot
// is the evidence the review is about.
func (q *Queue) WindowClosed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	w, err := events.Decode[events.CancelWindowClosed](env)
	if err != nil {
		return err
	}
	now := q.Clock.Now()
	r, err := store.LockForApplication(ctx, tx, w.Application.ID, now)
	if err != nil {
		return err
	}
	at := w.ClosedAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	r.RecordFinal(w.Application, at, env.CorrelationID)
	return q.advance(ctx, tx, r, now)
}

// PaymentConfirmed records that the application is paid.
func (q *Queue) PaymentConfirmed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.PaymentConfirmed](env)
	if err != nil {
		return err
	}
	now := q.Clock.Now()
	r, err := store.LockForApplication(ctx, tx, p.ApplicationID, now)
	if err != nil {
		return err
	}
	r.RecordPayment(review.Payment{Method: p.Method, Reference: p.Reference, At: env.OccurredAt}, env.CorrelationID)
	return q.advance(ctx, tx, r, now)
}

// advance saves the review, queues it when both facts are in, and
// approves it at once when configured to (PC-6).
func (q *Queue) advance(ctx context.Context, tx pgx.Tx, r review.Review, now time.Time) error {
	if r.Promote(now) {
		q.Metrics.Queued.Inc()
		// A reissue replaces a certificate the CA already vetted, with the
		// organization and names unchanged (PC-9), and its code is due
		// within about an hour (PC-11): it needs no operator.
		if q.AutoApprove || r.Application.Kind == events.KindReissue {
			_, err := q.decide(ctx, tx, r, true, review.ReviewerAuto, "", now)
			return err
		}
	}
	return store.Save(ctx, tx, r, now)
}

// Decide approves or rejects a review by ID for an operator, inside tx.
// It returns store.ErrNotFound, review.ErrDecided or review.ErrNotPending
// when the review cannot be decided.
func (q *Queue) Decide(ctx context.Context, tx pgx.Tx, id uuid.UUID, approve bool, by, reason string) (review.Review, error) {
	r, err := store.Lock(ctx, tx, id)
	if err != nil {
		return r, err
	}
	return q.decide(ctx, tx, r, approve, by, reason, q.Clock.Now())
}

func (q *Queue) decide(ctx context.Context, tx pgx.Tx, r review.Review, approve bool, by, reason string, now time.Time) (review.Review, error) {
	if err := r.Decide(approve, by, reason, now); err != nil {
		return r, err
	}
	if err := store.Save(ctx, tx, r, now); err != nil {
		return r, err
	}
	var p events.Payload
	if approve {
		if err := store.RecordApproval(ctx, tx, r); err != nil {
			return r, err
		}
		p = events.ReviewApproved{ReviewID: r.ID.String(), Application: *r.Application, Reviewer: by}
	} else {
		p = events.ReviewRejected{ReviewID: r.ID.String(), ApplicationID: r.ApplicationID, Reason: reason,
			Reviewer: by, Recipient: r.Application.Recipient()}
	}
	env, err := events.New(p, now, r.CorrelationID)
	if err != nil {
		return r, err
	}
	if err := bus.Emit(ctx, tx, env); err != nil {
		return r, err
	}
	q.Metrics.Decided.WithLabelValues(r.Status, reviewerKind(by)).Inc()
	q.Log.Info("review decided", "review", r.ID, "application", r.ApplicationID, "status", r.Status, "by", by)
	return r, nil
}

func reviewerKind(by string) string {
	if by == review.ReviewerAuto {
		return "auto"
	}
	return "operator"
}
