package events

import (
	"errors"
	"time"
)

// Coverage longer than a certificate (SPEC IS-4): a server subscription
// may outlast the validity cap of its certificate; the platform serves it
// by reissues inside the coverage, begun before the current certificate's
// last 30 days.
//
// Who emits what:
//   - the issuer keeps a timer per server certificate whose coverage ends
//     after its notAfter and emits CoverageReissueDue when it fires (the
//     certificate neither revoked nor replaced, the coverage not over);
//   - intake makes the reissue application: with ReuseKey from the
//     previous CSR, straight into validation; without, it waits for the
//     customer's new CSR and emits CoverageCSRRequested, which the
//     notifier mails (and reminds once, 7 days before expiry, while the
//     CSR is still missing: the application's ApplicationProvisional says
//     it came).

// Event types of this file.
const (
	TypeCoverageReissueDue   = "CoverageReissueDue"
	TypeCoverageCSRRequested = "CoverageCSRRequested"
)

func init() {
	for _, t := range []string{TypeCoverageReissueDue, TypeCoverageCSRRequested} {
		versions[t] = 1
	}
}

// CoverageReissueDue: the certificate's coverage goes on after its
// notAfter, and its reissue is due (IS-4).
type CoverageReissueDue struct {
	CertificateID string    `json:"certificate_id"`
	ApplicationID string    `json:"application_id"` // the application that made the certificate
	CustomerID    string    `json:"customer_id"`
	OrderID       string    `json:"order_id"`
	CommonName    string    `json:"common_name"`
	NotAfter      time.Time `json:"not_after"`
	CoverageEnd   time.Time `json:"coverage_end"`
	ReuseKey      bool      `json:"reuse_key,omitempty"`
	DueAt         time.Time `json:"due_at"`
}

func (CoverageReissueDue) EventType() string     { return TypeCoverageReissueDue }
func (CoverageReissueDue) EventVersion() int     { return 1 }
func (e CoverageReissueDue) AggregateID() string { return e.CertificateID }
func (e CoverageReissueDue) Validate() error {
	if e.NotAfter.IsZero() || e.CoverageEnd.IsZero() {
		return errors.New("not_after and coverage_end are required")
	}
	if !e.CoverageEnd.After(e.NotAfter) {
		return errors.New("coverage_end must be after not_after")
	}
	return required("certificate_id", e.CertificateID, "application_id", e.ApplicationID, "customer_id", e.CustomerID)
}

// CoverageCSRRequested: a reissue inside the coverage waits for the
// customer's new CSR (the customer did not opt in to reusing the key).
// Deadline is the current certificate's notAfter; the CSR is posted to
// POST /v1/certificates/{certificate_id}/reissues.
type CoverageCSRRequested struct {
	ApplicationID string    `json:"application_id"` // the reissue application
	CertificateID string    `json:"certificate_id"` // the certificate it replaces
	CustomerID    string    `json:"customer_id"`
	OrderID       string    `json:"order_id,omitempty"`
	Recipient     Recipient `json:"recipient"`
	CommonName    string    `json:"common_name"`
	Deadline      time.Time `json:"deadline"`
	CoverageEnd   time.Time `json:"coverage_end"`
	RequestedAt   time.Time `json:"requested_at"`
	// A replacement for a certificate a mass revocation took (OP-5): its
	// ID and reason. The reissue is free, inside the paid coverage, and
	// always with a new key.
	MassRevocationID string `json:"mass_revocation_id,omitempty"`
	RevocationReason string `json:"revocation_reason,omitempty"`
}

func (CoverageCSRRequested) EventType() string     { return TypeCoverageCSRRequested }
func (CoverageCSRRequested) EventVersion() int     { return 1 }
func (e CoverageCSRRequested) AggregateID() string { return e.ApplicationID }
func (e CoverageCSRRequested) Validate() error {
	if e.Deadline.IsZero() {
		return errors.New("deadline is required")
	}
	return required("application_id", e.ApplicationID, "certificate_id", e.CertificateID, "customer_id", e.CustomerID,
		"recipient.email", e.Recipient.Email, "common_name", e.CommonName)
}
