// Package app is validation's use cases (PC-6, OP-1): the
// "validation-reviews" consumer records final acceptance and payment in
// any order, and a review enters the operators' queue once both are
// known; operators (or REVIEW_AUTO_APPROVE) decide it, which emits
// ReviewApproved or ReviewRejected in the same transaction as the
// decision. Each use case opens and owns its transaction, or runs in the
// one the consumer hands it.
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/validation/internal/domain"
	"github.com/certlife/platform/services/validation/internal/store"
)

// ConsumerReviews is the durable consumer feeding the queue.
const ConsumerReviews = "validation-reviews"

// Queue runs the review queue's use cases.
type Queue struct {
	Pool        *pgxpool.Pool
	Clock       clock.Clock
	AutoApprove bool
	Metrics     *Metrics
	Log         *slog.Logger
	// BeforeApprove, when set, runs before an operator's approval,
	// outside its transaction (the server flow's fresh CAA check); an
	// error refuses the approval.
	BeforeApprove func(ctx context.Context, r domain.Review) error
	// deferServerApproval: an automatic approval of a server application
	// is left to the server flow's timer (TimerAutoApprove), which
	// checks CAA again first.
	deferServerApproval bool
}

// Dossier is a review with its evidence from other reviews: the earlier
// approvals of the same organization (company code), newest first.
type Dossier struct {
	Review            domain.Review
	PreviousApprovals []domain.Approval
	// Server is a server application's evidence (OP-1): the registry's
	// record and the organization check, the phone check, and each
	// name's validation.
	Server *ServerEvidence
}

// ServerEvidence is what an operator decides a server application on.
type ServerEvidence struct {
	Check       domain.ServerCheck
	Phone       *domain.PhoneCheck
	Validations []domain.DomainValidation
}

// serverEvidence reads a server application's evidence; nil when its
// checks have not started.
func serverEvidence(ctx context.Context, q store.Querier, applicationID string) (*ServerEvidence, error) {
	c, err := store.GetServerCheck(ctx, q, applicationID)
	if errs.Is(err, errs.KindNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ev := &ServerEvidence{Check: c}
	if p, err := store.PhoneCheckOf(ctx, q, applicationID); err == nil {
		ev.Phone = &p
	} else if !errs.Is(err, errs.KindNotFound) {
		return nil, err
	}
	if ev.Validations, err = store.ValidationsOf(ctx, q, applicationID); err != nil {
		return nil, err
	}
	return ev, nil
}

// Consumer is the durable consumer feeding the queue.
func (q *Queue) Consumer() bus.Consumer {
	return bus.Consumer{
		Name: ConsumerReviews,
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
	at := w.ClosedAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	return store.UpdateForApplication(ctx, tx, w.Application.ID, now, func(r *domain.Review) error {
		r.RecordFinal(w.Application, at, env.CorrelationID)
		return q.advance(ctx, tx, r, now)
	})
}

// PaymentConfirmed records that the application is paid.
func (q *Queue) PaymentConfirmed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.PaymentConfirmed](env)
	if err != nil {
		return err
	}
	if p.ApplicationID == "" {
		return nil // a server order's payment: the server flow's (ConsumerServer)
	}
	now := q.Clock.Now()
	return store.UpdateForApplication(ctx, tx, p.ApplicationID, now, func(r *domain.Review) error {
		r.RecordPayment(domain.Payment{Method: p.Method, Reference: p.Reference, At: env.OccurredAt}, env.CorrelationID)
		return q.advance(ctx, tx, r, now)
	})
}

// advance queues the review when both facts are in, and approves it at
// once when configured to (PC-6).
func (q *Queue) advance(ctx context.Context, tx pgx.Tx, r *domain.Review, now time.Time) error {
	if !r.Promote(now) {
		return nil
	}
	q.Metrics.Queued.Inc()
	// A reissue replaces a certificate the CA already vetted, with the
	// organization and names unchanged (PC-9), and its code is due within
	// about an hour (PC-11): it needs no operator.
	// A server application approved without an operator — by
	// configuration, or a reissue inside its coverage (IS-4) — waits for
	// the server flow's timer, which checks CAA again first (VA-4).
	autoApprove := q.AutoApprove || r.Application.Kind == events.KindReissue
	if autoApprove && r.Application.Server != nil && q.deferServerApproval {
		return timer.Schedule(ctx, tx, TimerAutoApprove, r.ApplicationID, now, nil)
	}
	if autoApprove {
		return q.decide(ctx, tx, r, true, domain.ReviewerAuto, "", now)
	}
	return nil
}

// Audit actions of review decisions (OP-4).
const (
	AuditReviewApproved = "review.approved"
	AuditReviewRejected = "review.rejected"
)

// Decide approves (reason empty) or rejects a review by ID for an
// operator, in a transaction of its own. A missing review is a not-found
// error; a decided or not yet pending one a conflict (domain.ErrDecided,
// domain.ErrNotPending).
func (q *Queue) Decide(ctx context.Context, id uuid.UUID, approve bool, by, reason string) (Dossier, error) {
	if approve && q.BeforeApprove != nil {
		cur, err := store.Get(ctx, q.Pool, id)
		if err != nil {
			return Dossier{}, err
		}
		if cur.Status == domain.StatusPending {
			if err := q.BeforeApprove(ctx, cur); err != nil {
				return Dossier{}, err
			}
		}
	}
	var r domain.Review
	err := db.InTx(ctx, q.Pool, func(tx pgx.Tx) error {
		now := q.Clock.Now()
		var err error
		r, err = store.Update(ctx, tx, id, now, func(r *domain.Review) error {
			return q.decide(ctx, tx, r, approve, by, reason, now)
		})
		if err != nil {
			return err
		}
		// OP-4: the operator's decision, in its own transaction.
		action, details := AuditReviewApproved, map[string]any{"review_id": r.ID.String()}
		if !approve {
			action, details["reason"] = AuditReviewRejected, reason
		}
		return audit.Record(ctx, tx, now, by, action, r.ApplicationID, details)
	})
	if err != nil {
		return Dossier{}, err
	}
	ds, err := q.dossiers(ctx, []domain.Review{r})
	if err != nil {
		return Dossier{}, err
	}
	return ds[0], nil
}

// decide applies the decision to r and, in tx, records an approval in the
// organization's history and emits the decision's event.
func (q *Queue) decide(ctx context.Context, tx pgx.Tx, r *domain.Review, approve bool, by, reason string, now time.Time) error {
	if err := r.Decide(approve, by, reason, now); err != nil {
		return err
	}
	return q.emitDecision(ctx, tx, r, now)
}

// emitDecision records an approval in the organization's history and
// emits the decision's event, in tx.
func (q *Queue) emitDecision(ctx context.Context, tx pgx.Tx, r *domain.Review, now time.Time) error {
	by := r.DecidedBy
	var p events.Payload
	if r.Status == domain.StatusApproved {
		if err := store.RecordApproval(ctx, tx, *r); err != nil {
			return err
		}
		p = events.ReviewApproved{ReviewID: r.ID.String(), Application: *r.Application, Reviewer: by}
	} else {
		p = events.ReviewRejected{ReviewID: r.ID.String(), ApplicationID: r.ApplicationID, Reason: r.Reason,
			Reviewer: by, Recipient: r.Application.Recipient()}
	}
	env, err := events.New(p, now, r.CorrelationID)
	if err != nil {
		return err
	}
	if err := bus.Emit(ctx, tx, env); err != nil {
		return err
	}
	q.Metrics.Decided.WithLabelValues(r.Status, reviewerKind(by)).Inc()
	q.Log.Info("review decided", "review", r.ID, "application", r.ApplicationID, "status", r.Status, "by", by)
	return nil
}

func reviewerKind(by string) string {
	if by == domain.ReviewerAuto {
		return "auto"
	}
	return "operator"
}

// List returns the reviews of a status with their evidence: the queue
// oldest first, decided reviews most recent first.
func (q *Queue) List(ctx context.Context, status string, limit int) ([]Dossier, error) {
	reviews, err := store.List(ctx, q.Pool, status, limit)
	if err != nil {
		return nil, err
	}
	return q.dossiers(ctx, reviews)
}

// Get returns one review with its evidence; a not-found error if none.
func (q *Queue) Get(ctx context.Context, id uuid.UUID) (Dossier, error) {
	r, err := store.Get(ctx, q.Pool, id)
	if err != nil {
		return Dossier{}, err
	}
	ds, err := q.dossiers(ctx, []domain.Review{r})
	if err != nil {
		return Dossier{}, err
	}
	return ds[0], nil
}

// dossiers adds to reviews the approval history of their organizations,
// read in one query.
func (q *Queue) dossiers(ctx context.Context, reviews []domain.Review) ([]Dossier, error) {
	var codes []string
	seen := map[string]bool{}
	for _, r := range reviews {
		if r.Application != nil {
			if c := r.Application.Organization.CompanyCode; c != "" && !seen[c] {
				seen[c] = true
				codes = append(codes, c)
			}
		}
	}
	history, err := store.History(ctx, q.Pool, codes)
	if err != nil {
		return nil, err
	}
	out := make([]Dossier, 0, len(reviews))
	for _, r := range reviews {
		d := Dossier{Review: r, PreviousApprovals: []domain.Approval{}}
		if r.Application != nil {
			d.PreviousApprovals = r.PreviousApprovals(history[r.Application.Organization.CompanyCode])
			if r.Application.Server != nil {
				if d.Server, err = serverEvidence(ctx, q.Pool, r.ApplicationID); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, d)
	}
	return out, nil
}
