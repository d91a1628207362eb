package events

import "time"

// TypeOrganizationVerificationFailed names OrganizationVerificationFailed.
const TypeOrganizationVerificationFailed = "OrganizationVerificationFailed"

func init() { versions[TypeOrganizationVerificationFailed] = 1 }

// OrganizationMismatch is one field of the CSR's subject that differs
// from the registry's English record: both values (SV-7).
type OrganizationMismatch struct {
	Field    string `json:"field"`
	Applied  string `json:"applied"`
	Registry string `json:"registry"`
}

// OrganizationVerificationFailed: the organization of a server
// application could not be verified against the independent registry
// (SV-7). Detail names what was expected and what was found, each
// differing field with both values. Final: the CSR's subject differs from
// the registry (the application is rejected; a new CSR needs a new
// application); not final: the number is not in the registry yet, and
// the check is retried.
type OrganizationVerificationFailed struct {
	ApplicationID string                 `json:"application_id"`
	OrderID       string                 `json:"order_id,omitempty"`
	DUNS          string                 `json:"duns"`
	Detail        string                 `json:"detail"`
	Mismatches    []OrganizationMismatch `json:"mismatches,omitempty"`
	Final         bool                   `json:"final"`
	FailedAt      time.Time              `json:"failed_at"`
}

func (OrganizationVerificationFailed) EventType() string     { return TypeOrganizationVerificationFailed }
func (OrganizationVerificationFailed) EventVersion() int     { return 1 }
func (e OrganizationVerificationFailed) AggregateID() string { return e.ApplicationID }
func (e OrganizationVerificationFailed) Validate() error {
	return required("application_id", e.ApplicationID, "duns", e.DUNS, "detail", e.Detail)
}
