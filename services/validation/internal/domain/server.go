package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
)

// The server order flow's checks beyond domain control (SV-7, SV-9,
// VA-5): the organization against the registry, and the phone call to
// the registry's number.

// Organization check statuses.
const (
	OrgPending  = "pending"  // not in the registry (yet): retried
	OrgVerified = "verified" // the CSR's subject equals the registry's record
	OrgMismatch = "mismatch" // it differs: final (SV-7)
)

// Phone check statuses of a server application.
const (
	PhoneNone      = "none"       // the organization is not verified yet
	PhoneNotNeeded = "not_needed" // verified data reused within its period (VA-5)
	PhonePending   = "pending"    // a task for an operator
	PhoneConfirmed = "confirmed"
	PhoneFailed    = "failed"
)

// ServerCheck is the state of a server application's organization and
// phone checks.
type ServerCheck struct {
	ApplicationID string
	CustomerID    string
	OrderID       string
	DUNS          string
	CorrelationID string
	OrgStatus     string
	OrgVerifiedAt *time.Time
	OrgValidUntil *time.Time
	// OrgReusedFrom is the earlier application whose verification is
	// reused (VA-5).
	OrgReusedFrom string
	// Registry is the registry's record as matched (nil: not found).
	Registry   *Organization
	Mismatches []Mismatch
	OrgDetail  string
	// PhoneStatus: none, not_needed, pending, confirmed, failed.
	PhoneStatus      string
	PhoneConfirmedAt *time.Time
	CreatedAt        time.Time
}

// Passed reports whether the organization and phone checks both passed.
func (c ServerCheck) Passed() bool {
	return c.OrgStatus == OrgVerified && (c.PhoneStatus == PhoneConfirmed || c.PhoneStatus == PhoneNotNeeded)
}

// MismatchDetail says how the CSR's subject differs from the registry,
// each field with both values (SV-7).
func MismatchDetail(duns string, ms []Mismatch) string {
	var diffs []string
	for _, m := range ms {
		diffs = append(diffs, fmt.Sprintf("%s: the CSR has %q, the registry has %q", m.Field, m.Applied, m.Registry))
	}
	return fmt.Sprintf("the CSR's organization does not match the registry's English record of %s (SV-7): %s",
		duns, strings.Join(diffs, "; "))
}

// PhoneCheck is an operator's task: call the organization's main number
// as the registry holds it, never a number the applicant gave (SV-9).
type PhoneCheck struct {
	ID            uuid.UUID  `json:"id"`
	ApplicationID string     `json:"application_id"`
	DUNS          string     `json:"duns"`
	Organization  string     `json:"organization"`
	Phone         string     `json:"phone"`
	Status        string     `json:"status"`
	Note          string     `json:"note,omitempty"`
	DecidedBy     string     `json:"decided_by,omitempty"`
	DecidedAt     *time.Time `json:"decided_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}

// Phone check results an operator records.
const (
	PhoneResultConfirmed = "confirmed"
	PhoneResultFailed    = "failed"
)

// MaxPhoneNote bounds an operator's note, in bytes.
const MaxPhoneNote = 2000

// ErrPhoneDecided: the result of a phone check is recorded once.
var ErrPhoneDecided = errs.Conflict("phone-check-decided", "the phone check's result is already recorded")

// Decide records an operator's result.
func (p *PhoneCheck) Decide(result, note, by string, now time.Time) error {
	var bad []errs.Field
	if result != PhoneResultConfirmed && result != PhoneResultFailed {
		bad = append(bad, errs.Field{Name: "result", Message: "must be confirmed or failed"})
	}
	note = strings.TrimSpace(note)
	if len(note) > MaxPhoneNote {
		bad = append(bad, errs.Field{Name: "note", Message: fmt.Sprintf("must be at most %d bytes", MaxPhoneNote)})
	}
	if result == PhoneResultFailed && note == "" {
		bad = append(bad, errs.Field{Name: "note", Message: "is required when the check failed: say what happened"})
	}
	if len(bad) > 0 {
		return errs.Invalid(bad...)
	}
	if p.Status != PhonePending {
		return ErrPhoneDecided
	}
	p.Status, p.Note, p.DecidedBy, p.DecidedAt = result, note, by, &now
	return nil
}
