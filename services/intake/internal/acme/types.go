package acme

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Statuses of RFC 8555 §7.1.6.
const (
	StatusPending     = "pending"
	StatusReady       = "ready"
	StatusProcessing  = "processing"
	StatusValid       = "valid"
	StatusInvalid     = "invalid"
	StatusDeactivated = "deactivated"
	StatusRevoked     = "revoked"
	StatusExpired     = "expired"
)

// Lifetimes.
const (
	NonceLifetime = time.Hour
	OrderLifetime = 7 * 24 * time.Hour
	AuthzLifetime = 7 * 24 * time.Hour
	// ValidAuthzReuse is how long a valid authorization is reused for new
	// orders of the same account (within the VA-5 reuse period, which is
	// longer until 2029-03-15).
	ValidAuthzReuse = 10 * 24 * time.Hour
	// RetryAfter is what a client is told to wait on a pending object.
	RetryAfter = 1
)

// Profile is what an EAB key vouches for (AC-2): the customer's verified
// organization (OV) and technical contact, and its paid coverage.
type Profile struct {
	Organization struct {
		DUNS    string `json:"duns"`
		NameEn  string `json:"name_en"`
		Address struct {
			Street     string `json:"street,omitempty"`
			City       string `json:"city"`
			State      string `json:"state"`
			PostalCode string `json:"postal_code,omitempty"`
			Country    string `json:"country"`
		} `json:"address"`
	} `json:"organization"`
	Contact struct {
		Name  string `json:"name,omitempty"`
		Email string `json:"email"`
	} `json:"contact"`
	TermMonths  int       `json:"term_months,omitempty"`
	CoverageEnd time.Time `json:"coverage_end,omitzero"`
}

// EABKey is an external account binding key.
type EABKey struct {
	KID        string
	CustomerID string
	SealedKey  []byte
	Profile    Profile
	CreatedBy  string
	CreatedAt  time.Time
	AccountID  *uuid.UUID
}

// Account is an ACME account (RFC 8555 §7.1.2).
type Account struct {
	ID         uuid.UUID
	Thumbprint string
	JWK        json.RawMessage
	Contact    []string
	Status     string
	CustomerID string
	EABKID     string
	CreatedAt  time.Time
}

// Challenge is one challenge of an authorization.
type Challenge struct {
	Type      string     `json:"type"`
	Token     string     `json:"token"`
	Status    string     `json:"status"`
	Validated *time.Time `json:"validated,omitempty"`
	Error     *Problem   `json:"error,omitempty"`
}

// Authz is an authorization (RFC 8555 §7.1.4).
type Authz struct {
	ID         uuid.UUID
	AccountID  uuid.UUID
	Domain     string // without "*."
	Wildcard   bool
	Status     string
	ExpiresAt  time.Time
	Challenges []Challenge
	CreatedAt  time.Time
}

// Order is an order (RFC 8555 §7.1.3).
type Order struct {
	ID            uuid.UUID
	AccountID     uuid.UUID
	Status        string
	Identifiers   []Ident
	AuthzIDs      []uuid.UUID
	ExpiresAt     time.Time
	Replaces      string
	Error         *Problem
	ApplicationID *uuid.UUID
	CertificateID string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Names are the order's DNS names.
func (o Order) Names() []string {
	var out []string
	for _, id := range o.Identifiers {
		out = append(out, id.Value)
	}
	return out
}

// Certificate is a certificate issued to an order.
type Certificate struct {
	ID            string
	OrderID       uuid.UUID
	AccountID     uuid.UUID
	Serial        string
	CertID        string
	PEMChain      string
	NotBefore     time.Time
	NotAfter      time.Time
	RevokedAt     *time.Time
	RevokedReason string
	ReplaceEarly  *time.Time
	ReplaceReason string
	ReplacedBy    *uuid.UUID
}

// RenewalWindow is the RFC 9773 suggested window: the last third of the
// validity (AC-3), or, for a certificate to be replaced early, a window
// already open (from the marking, ending an hour after it).
func (c Certificate) RenewalWindow() (start, end time.Time) {
	if c.ReplaceEarly != nil {
		return c.ReplaceEarly.Add(-time.Hour), *c.ReplaceEarly
	}
	life := c.NotAfter.Sub(c.NotBefore)
	start = c.NotBefore.Add(life * 2 / 3)
	return start, c.NotAfter.Add(-time.Hour)
}

// OrderStatus is an order's status from its authorizations' (RFC 8555
// §7.1.6), for an order not yet finalized.
func OrderStatus(o Order, authzs []Authz, now time.Time) string {
	if o.Status != StatusPending && o.Status != StatusReady {
		return o.Status
	}
	if now.After(o.ExpiresAt) {
		return StatusInvalid
	}
	all := true
	for _, a := range authzs {
		switch a.Status {
		case StatusInvalid, StatusDeactivated, StatusRevoked, StatusExpired:
			return StatusInvalid
		case StatusValid:
		default:
			all = false
		}
	}
	if all && len(authzs) > 0 {
		return StatusReady
	}
	return StatusPending
}
