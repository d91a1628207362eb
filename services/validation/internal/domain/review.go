// Package domain is validation's types and rules, with no I/O: the review
// of one application (PC-6, OP-1) — the facts it waits for, when it
// enters the operators' queue, and its decision — and the approvals an
// organization's history keeps.
package domain

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
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
	// ChecksAt is when a server application's checks all passed: every
	// domain validated, the organization verified, the phone check
	// confirmed or reused (SV-7 … SV-9). A server application's review
	// waits for it.
	ChecksAt *time.Time
	// RefundedAt is when the payment the review relied on was refunded
	// (BI-2): it waits for payment again. Cleared by the next payment.
	RefundedAt *time.Time
}

// Errors of a decision (conflicts: 409 at the HTTP edge).
var (
	ErrDecided    = errs.Conflict("review-decided", "the review is already decided")
	ErrNotPending = errs.Conflict("review-not-pending", "the review waits for final acceptance or payment")
	// ErrRefunded: the order's payment was refunded; the review left the
	// queue and waits for payment again.
	ErrRefunded = errs.Conflict("payment-refunded",
		"the order's payment was refunded (BI-2): the review left the queue and waits for payment again")
)

// RejectionReason is an operator's reason for a rejection, trimmed: it is
// required and at most MaxReasonLen characters.
func RejectionReason(s string) (string, error) {
	reason := strings.TrimSpace(s)
	switch {
	case reason == "":
		return "", errs.InvalidField("reason", "is required")
	case utf8.RuneCountInString(reason) > MaxReasonLen:
		return "", errs.InvalidField("reason", "must be at most "+strconv.Itoa(MaxReasonLen)+" characters")
	}
	return reason, nil
}

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
	r.Payment, r.RefundedAt = &p, nil
	if r.CorrelationID == "" {
		r.CorrelationID = correlationID
	}
}

// Refund outcomes.
const (
	RefundIgnored  = ""         // no payment made by then, or already refunded
	RefundWaiting  = "waiting"  // the payment no longer counts; the review waits for payment again
	RefundDequeued = "dequeued" // as waiting, and the review left the operators' queue
	RefundDecided  = "decided"  // the review is decided: left as it is (billing's operators see the refund)
)

// RecordRefund withdraws the payment when it was made at or before the
// refund at at (BI-2; a later payment pays again: the latest fact wins).
// A review not decided yet waits for payment again — a queued one leaves
// the queue; an approved or rejected one is not touched. It says what it
// did.
func (r *Review) RecordRefund(at time.Time) string {
	if r.Payment == nil || r.Payment.At.After(at) {
		return RefundIgnored
	}
	switch r.Status {
	case StatusApproved, StatusRejected:
		return RefundDecided
	case StatusPending:
		r.Payment, r.RefundedAt, r.Status, r.PendingAt = nil, &at, StatusWaiting, nil
		return RefundDequeued
	}
	r.Payment, r.RefundedAt = nil, &at
	return RefundWaiting
}

// Promote moves a waiting review into the queue once both final
// acceptance and payment are known. It reports whether it did.
func (r *Review) Promote(now time.Time) bool {
	if r.Status != StatusWaiting || r.Application == nil || r.Payment == nil {
		return false
	}
	if r.Application.Server != nil && r.ChecksAt == nil {
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
		if r.Payment == nil && r.RefundedAt != nil {
			return ErrRefunded
		}
		return ErrNotPending
	}
	r.Status = StatusRejected
	if approve {
		r.Status = StatusApproved
	}
	r.DecidedBy, r.DecidedAt, r.Reason = by, &now, reason
	return nil
}

// RecordChecks notes that a server application's checks all passed.
func (r *Review) RecordChecks(at time.Time) {
	if r.ChecksAt == nil {
		r.ChecksAt = &at
	}
}

// RejectFailedChecks rejects a server application whose checks failed
// for good (an organization that does not match the registry, SV-7; a
// failed phone check, SV-9), paid or not: no operator could approve it.
// A decided review is left as it is (false).
func (r *Review) RejectFailedChecks(by, reason string, now time.Time) bool {
	if r.Status == StatusApproved || r.Status == StatusRejected || r.Application == nil {
		return false
	}
	r.Status, r.DecidedBy, r.DecidedAt, r.Reason = StatusRejected, by, &now, reason
	return true
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
	if r.Application != nil && r.Application.Server != nil && r.ChecksAt == nil {
		out = append(out, "validation")
	}
	return out
}

// Approval is one approved application of an organization, as its
// history keeps it (evidence for later reviews, OP-1).
type Approval struct {
	ReviewID              uuid.UUID
	ApplicationID         string
	Product               string
	Kind                  string
	ApplicantNameEn       string
	ApplicantEmail        string
	PreviousCertificateID string
	ApprovedBy            string
	ApprovedAt            time.Time
}

// MaxPreviousApprovals bounds the earlier approvals shown with a review.
const MaxPreviousApprovals = 20

// PreviousApprovals are the approvals of r's organization other than r
// itself, newest first as given, at most MaxPreviousApprovals.
func (r *Review) PreviousApprovals(history []Approval) []Approval {
	out := []Approval{}
	for _, h := range history {
		if h.ReviewID != r.ID && len(out) < MaxPreviousApprovals {
			out = append(out, h)
		}
	}
	return out
}
