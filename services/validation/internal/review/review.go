// Package review is the review of one application (PC-6, OP-1): the facts
// it waits for, when it enters the operators' queue, and its decision.
package review

import (
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
)

// Statuses. waiting: final acceptance or payment not seen yet; pending:
// in the queue; approved and rejected are final.
const (
	StatusWaiting  = "waiting"
	StatusPending  = "pending"
	StatusApproved = "approved"
	StatusRejected = "rejected"
)

// Reviewer of an automatic approval (REVIEW_AUTO_APPROVE).
const ReviewerAuto = "auto"

// MaxReasonLen bounds a rejection reason, in characters.
const MaxReasonLen = 1000

// Payment is how the application was paid.
type Payment struct {
	Method    string
	Reference string
	At        time.Time
}

// Review is one application's review.
type Review struct {
	ID            uuid.UUID
	ApplicationID string
	CorrelationID string
	// Application is the snapshot taken at final acceptance; nil before.
	Application *events.Application
	FinalAt     *time.Time
	Payment     *Payment
	Status      string
	PendingAt   *time.Time
	DecidedBy   string
	DecidedAt   *time.Time
	Reason      string
	CreatedAt   time.Time
}

// Errors of a decision; the HTTP edge makes them 409s.
var (
	ErrDecided    = errors.New("the review is already decided")
	ErrNotPending = errors.New("the review is not pending yet")
)

// RecordFinal keeps the application as finally accepted. The snapshot can
// be refreshed while the review waits, never once operators can see it.
func (r *Review) RecordFinal(a events.Application, at time.Time, correlationID string) {
	if r.Status != StatusWaiting {
		return
	}
	r.Application, r.FinalAt = &a, &at
	if r.CorrelationID == "" {
		r.CorrelationID = correlationID
	}
}

// RecordPayment notes the payment; the first one counts.
func (r *Review) RecordPayment(p Payment, correlationID string) {
	if r.Payment != nil {
		return
	}
	r.Payment = &p
	if r.CorrelationID == "" {
		r.CorrelationID = correlationID
	}
}

// Promote moves a waiting review into the queue once both final
// acceptance and payment are known. It reports whether it did.
func (r *Review) Promote(now time.Time) bool {
	if r.Status != StatusWaiting || r.Application == nil || r.Payment == nil {
		return false
	}
	r.Status, r.PendingAt = StatusPending, &now
	return true
}

// Decide approves (reason empty) or rejects the review.
func (r *Review) Decide(approve bool, by, reason string, now time.Time) error {
	switch r.Status {
	case StatusApproved, StatusRejected:
		return ErrDecided
	case StatusWaiting:
		return ErrNotPending
	}
	r.Status = StatusRejected
	if approve {
		r.Status = StatusApproved
	}
	r.DecidedBy, r.DecidedAt, r.Reason = by, &now, reason
	return nil
}

// WaitingFor names what a waiting review lacks, for operators.
func (r *Review) WaitingFor() []string {
	var out []string
	if r.Application == nil {
		out = append(out, "final_acceptance")
	}
	if r.Payment == nil {
		out = append(out, "payment")
	}
	return out
}
