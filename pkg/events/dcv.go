package events

import (
	"errors"
	"time"
)

// TypeDomainValidationEmailRequested names the request to e-mail a
// domain validation link.
const TypeDomainValidationEmailRequested = "DomainValidationEmailRequested"

func init() { versions[TypeDomainValidationEmailRequested] = 1 }

// DomainValidationEmailRequested: validation asks the notifier to e-mail
// a constructed approver address (admin@, …, postmaster@ at the domain or
// a parent) a link carrying the random value (SV-8, VA-2, TLS BR
// 3.2.2.4.4). The value is a secret (SE-1): it travels only sealed to the
// notifier's public key (NOTIFIER_PUBLIC_KEY, pkg/seal), and validation
// keeps only its SHA-256. The notifier opens it and builds the link, e.g.
// PUBLIC_URL + "/v1/dcv/confirm?value=" + value (validation serves it: GET
// shows a page whose button POSTs the value, which validates); whoever serves the link
// hands the value to validation's ConfirmEmail. A change of method or
// approver emits a new request with a new value; the old value no
// longer validates.
type DomainValidationEmailRequested struct {
	ApplicationID string    `json:"application_id"`
	ValidationID  string    `json:"validation_id"`
	Domain        string    `json:"domain"`
	Recipient     Recipient `json:"recipient"` // the approver address and the applicant's language
	SealedValue   []byte    `json:"sealed_value"`
	ExpiresAt     time.Time `json:"expires_at"`
	// Deprecated: the method is discouraged by the BRs at the time of the
	// request (from 2026-03-15); the mail may say so.
	Deprecated bool `json:"deprecated,omitempty"`
}

func (DomainValidationEmailRequested) EventType() string {
	return TypeDomainValidationEmailRequested
}
func (DomainValidationEmailRequested) EventVersion() int     { return 1 }
func (e DomainValidationEmailRequested) AggregateID() string { return e.ApplicationID }
func (e DomainValidationEmailRequested) Validate() error {
	if len(e.SealedValue) == 0 {
		return errors.New("sealed_value is required")
	}
	if e.ExpiresAt.IsZero() {
		return errors.New("expires_at is required")
	}
	return required("application_id", e.ApplicationID, "validation_id", e.ValidationID, "domain", e.Domain,
		"recipient.email", e.Recipient.Email)
}
