// Package domain is intake's types and rules, without I/O: applications
// and their statuses, the cancel window and maintenance (PC-3 … PC-5),
// the request bodies and their validation (PC-1, PC-9), certificate codes
// and password hashes (SE-1, SE-7), and the sign-in throttle (SE-3).
// Errors are pkg/errs errors; the HTTP edge turns them into problems.
package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

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

// Terminal statuses end an application.
func Terminal(s string) bool { return s == StatusCancelled || s == StatusRejected }

// Advance returns the status after an event that implies next.
func Advance(current, next string) string {
	if Terminal(current) {
		return current
	}
	if Terminal(next) {
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

// Applicant is the person behind a new application and its renewals and
// reissues. The e-mail is not unique: two new applications with one
// address are two applicants, told apart by password and code.
type Applicant struct {
	ID           uuid.UUID
	Email        string
	PasswordHash string
	// CodeMAC is the HMAC-SHA256 of the latest certificate code (SE-7).
	CodeMAC []byte
	// LegacyCodeHash is an argon2id hash of the latest code, from before
	// codes were MACed; it is replaced at the next sign-in or new code.
	LegacyCodeHash *string
	CodeIssuedAt   *time.Time
	// CodeEmail is the mailbox the latest code was sent to (nil for codes
	// from before mailbox control, PC-16).
	CodeEmail *string
	// MailboxValidatedAt and MailboxEmail are the latest mailbox
	// validation: a sign-in with a code younger than 24 hours (PC-16).
	MailboxValidatedAt *time.Time
	MailboxEmail       *string
	Language           string
}

// Application is an application for a certificate.
type Application struct {
	ID                    uuid.UUID
	ApplicantID           uuid.UUID
	Product               string
	Kind                  string
	Status                string
	Language              string
	Coupon                *string
	Organization          events.Organization
	Applicant             events.Applicant
	PreviousCertificateID *uuid.UUID
	ReissueReason         *string
	AcceptedAt            time.Time
	CancelDeadline        time.Time
	ClosedAt              *time.Time
	CertificateID         *uuid.UUID
	RejectionReason       *string
	// Server is the server part of a server application; ApplicantID is
	// then the customer's ID.
	Server *events.ServerApplication
}

// Event is the snapshot other services receive.
func (a Application) Event() events.Application {
	out := events.Application{
		ID: a.ID.String(), ApplicantID: a.ApplicantID.String(), Product: a.Product, Kind: a.Kind,
		Language: a.Language, Organization: a.Organization, Applicant: a.Applicant,
	}
	if a.Coupon != nil {
		out.Coupon = *a.Coupon
	}
	if a.PreviousCertificateID != nil {
		out.PreviousCertificateID = a.PreviousCertificateID.String()
	}
	if a.ReissueReason != nil {
		out.ReissueReason = *a.ReissueReason
	}
	if a.Server != nil {
		srv := *a.Server
		out.Server = &srv
	}
	return out
}

// Cancel cancels the application at now, or says why it cannot (PC-4).
func (a *Application) Cancel(now time.Time) error {
	switch {
	case a.Status == StatusCancelled:
		return errs.Conflict("already-cancelled", "the application is already cancelled")
	case a.Status == StatusRejected:
		return errs.Conflict("already-rejected", "the application was rejected; there is nothing to cancel")
	case a.Status != StatusProvisional || !now.Before(a.CancelDeadline):
		return errs.Conflict("cancel-window-closed", "the cancel window of this application has closed; it can no longer be cancelled or changed")
	}
	a.Status = StatusCancelled
	return nil
}

// Finalize is final acceptance (本受付) at now: no more cancel or change.
func (a *Application) Finalize(now time.Time) {
	a.Status, a.ClosedAt = StatusAccepted, &now
}

// TimelineEntry is one line of an application's timeline.
type TimelineEntry struct {
	At    time.Time `json:"at"`
	Event string    `json:"event"`
}

// Principal is the applicant a request acts for.
type Principal struct {
	ApplicantID uuid.UUID
	// CodeVerified: authenticated with the certificate code, which the
	// certificate steps need (PC-7); Basic and password-only sessions
	// are not.
	CodeVerified bool
	// Customer: ApplicantID is a server customer's ID (a customer
	// session, or Basic with a customer's e-mail and password).
	Customer bool
}

// Owns reports whether the application is the principal's: a customer
// owns its server applications, an applicant its client applications.
func (p Principal) Owns(a Application) bool {
	return a.ApplicantID == p.ApplicantID && (a.Product == events.ProductServer) == p.Customer
}

// RequireCustomer refuses a server-order step to a principal that is not
// a server customer.
func (p Principal) RequireCustomer() error {
	if p.Customer {
		return nil
	}
	return &errs.Error{Kind: errs.KindForbidden, Slug: "customer-session-required",
		Detail: "server orders need a customer session (POST /v1/sessions with the customer's e-mail and password)"}
}

// RequireCode refuses a certificate step to a principal without the code.
func (p Principal) RequireCode() error {
	if p.CodeVerified {
		return nil
	}
	return &errs.Error{Kind: errs.KindForbidden, Slug: "certificate-code-required",
		Detail: "certificate steps need a session opened with the certificate code (POST /v1/sessions with certificate_code)"}
}

// ErrNotFound is the answer for anything that is not the principal's:
// another applicant's application looks like a missing one.
func ErrNotFound() error { return errs.NotFound("") }

// NewID is a new UUIDv7.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// KnownStatus reports whether s is one of the statuses of SPEC §5.
func KnownStatus(s string) bool {
	_, ok := rank[s]
	return ok || Terminal(s)
}

// ApplicationSearch is what operators look applications up by; zero
// fields match every application.
type ApplicationSearch struct {
	Email  string     // a part of the applicant's e-mail, any case
	Status string     // exact status
	ID     *uuid.UUID // one application
	Before *uuid.UUID // paging: IDs (UUIDv7, so time) before this one
	Limit  int
}
