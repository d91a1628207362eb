// Package applications is intake's use cases: submitting, cancelling and
// closing applications, authenticating applicants, and following the other
// services' events. Each use case opens its one transaction here.
package applications

// Application statuses (SPEC §5).
const (
	StatusProvisional     = "provisional"
	StatusCancelled       = "cancelled"
	StatusAccepted        = "accepted"
	StatusAwaitingPayment = "awaiting_payment"
	StatusValidating      = "validating"
	StatusInReview        = "in_review"
	StatusApproved        = "approved"
	StatusIssued          = "issued"
	StatusRejected        = "rejected"
)

// rank orders the statuses an application moves through; events may
// arrive out of order, and a status never moves back.
var rank = map[string]int{
	StatusProvisional:     0,
	StatusAccepted:        1,
	StatusAwaitingPayment: 2,
	StatusValidating:      3,
	StatusInReview:        4,
	StatusApproved:        5,
	StatusIssued:          6,
}

// terminal statuses end an application.
func terminal(s string) bool { return s == StatusCancelled || s == StatusRejected }

// advance returns the status after an event that implies next.
func advance(current, next string) string {
	if terminal(current) {
		return current
	}
	if terminal(next) {
		// An issued certificate is not un-issued by a late rejection.
		if current == StatusIssued || current == StatusApproved {
			return current
		}
		return next
	}
	if rank[next] > rank[current] {
		return next
	}
	return current
}
