package events

import (
	"errors"
	"time"
)

// The ACME front door (SPEC §4.10, AC-1 … AC-4). Intake owns ACME
// accounts, orders and authorizations; validation checks the challenges
// (VA-1 … VA-9, MPIC and CAA accounturi included) and turns a finalized
// order into the same ReviewApproved the manual flow ends in, so that the
// issuer issues it unchanged.
//
//   - intake emits ACMEChallengeReady when a client answers a challenge,
//     and ACMEOrderFinalized when an order's CSR passed its checks;
//   - validation emits ACMEChallengeValidated or ACMEChallengeFailed, and
//     ReviewApproved (reviewer "acme") for a finalized order.

// Event types of this file.
const (
	TypeACMEChallengeReady      = "ACMEChallengeReady"
	TypeACMEChallengeValidated  = "ACMEChallengeValidated"
	TypeACMEChallengeFailed     = "ACMEChallengeFailed"
	TypeACMEOrderFinalized      = "ACMEOrderFinalized"
	TypeACMERevocationRequested = "ACMERevocationRequested"
)

// ReviewerACME is the reviewer of an ACME order's ReviewApproved: its
// domains were validated by the order's authorizations, its organization
// when the customer's EAB key was issued (AC-2).
const ReviewerACME = "acme"

func init() {
	for _, t := range []string{TypeACMEChallengeReady, TypeACMEChallengeValidated, TypeACMEChallengeFailed,
		TypeACMEOrderFinalized, TypeACMERevocationRequested} {
		versions[t] = 1
	}
}

// ACMEChallengeReady: an ACME client asked for a challenge of an
// authorization to be validated (RFC 8555 §7.5.1). Method is DCVMethodHTTP01
// or DCVMethodDNS01; KeyAuthorization is token "." the account key's
// thumbprint (public: the client publishes it). AccountURI is the
// account's URL, checked against CAA accounturi (RFC 8657, VA-4).
type ACMEChallengeReady struct {
	AuthzID          string `json:"authz_id"`
	Domain           string `json:"domain"`
	Method           string `json:"method"`
	Token            string `json:"token"`
	KeyAuthorization string `json:"key_authorization"`
	AccountURI       string `json:"account_uri"`
	CustomerID       string `json:"customer_id,omitempty"`
}

func (ACMEChallengeReady) EventType() string     { return TypeACMEChallengeReady }
func (ACMEChallengeReady) EventVersion() int     { return 1 }
func (e ACMEChallengeReady) AggregateID() string { return e.AuthzID }
func (e ACMEChallengeReady) Validate() error {
	if e.Method != DCVMethodHTTP01 && e.Method != DCVMethodDNS01 {
		return errors.New("method must be http-01 or dns-01")
	}
	return required("authz_id", e.AuthzID, "domain", e.Domain, "token", e.Token,
		"key_authorization", e.KeyAuthorization, "account_uri", e.AccountURI)
}

// ACMEChallengeValidated: the challenge passed at the primary perspective,
// was corroborated by the remote ones (VA-7), and CAA permits issuance
// for the account and method (VA-4). ValidUntil ends the reuse period
// (VA-5).
type ACMEChallengeValidated struct {
	AuthzID     string    `json:"authz_id"`
	Domain      string    `json:"domain"`
	Method      string    `json:"method"`
	AttemptID   string    `json:"attempt_id,omitempty"`
	ValidatedAt time.Time `json:"validated_at"`
	ValidUntil  time.Time `json:"valid_until,omitzero"`
}

func (ACMEChallengeValidated) EventType() string     { return TypeACMEChallengeValidated }
func (ACMEChallengeValidated) EventVersion() int     { return 1 }
func (e ACMEChallengeValidated) AggregateID() string { return e.AuthzID }
func (e ACMEChallengeValidated) Validate() error {
	return required("authz_id", e.AuthzID, "domain", e.Domain, "method", e.Method)
}

// ACMEChallengeFailed: the challenge failed. ErrorType is the RFC 8555
// §6.7 type the client sees (urn:ietf:params:acme:error:caa, :dns,
// :connection, :unauthorized, …); Detail says what was expected and what
// was found (VA-6).
type ACMEChallengeFailed struct {
	AuthzID   string    `json:"authz_id"`
	Domain    string    `json:"domain"`
	Method    string    `json:"method"`
	ErrorType string    `json:"error_type"`
	Detail    string    `json:"detail"`
	FailedAt  time.Time `json:"failed_at"`
}

func (ACMEChallengeFailed) EventType() string     { return TypeACMEChallengeFailed }
func (ACMEChallengeFailed) EventVersion() int     { return 1 }
func (e ACMEChallengeFailed) AggregateID() string { return e.AuthzID }
func (e ACMEChallengeFailed) Validate() error {
	return required("authz_id", e.AuthzID, "domain", e.Domain, "error_type", e.ErrorType, "detail", e.Detail)
}

// ACMEOrderFinalized: an ACME order whose authorizations are all valid
// was finalized with a CSR that passed SV-6 (names, key, subject).
// Application is a server application (Server.ACMEAccountURI set, OrderID
// the ACME order's ID) that validation approves as it stands
// (ReviewerACME).
type ACMEOrderFinalized struct {
	Application Application `json:"application"`
	FinalizedAt time.Time   `json:"finalized_at"`
}

func (ACMEOrderFinalized) EventType() string     { return TypeACMEOrderFinalized }
func (ACMEOrderFinalized) EventVersion() int     { return 1 }
func (e ACMEOrderFinalized) AggregateID() string { return e.Application.ID }
func (e ACMEOrderFinalized) Validate() error {
	if e.Application.Server == nil || e.Application.Server.ACMEAccountURI == "" {
		return errors.New("application.server.acme_account_uri is required")
	}
	return e.Application.validate()
}

// ACMERevocationRequested: an ACME client asked for a certificate it was
// delivered to be revoked (RFC 8555 §7.6), authenticated by the account
// that ordered it or by the certificate's key. Reason is the RFC 5280
// name (IS-6). The issuer revokes by serial.
type ACMERevocationRequested struct {
	CertificateID string    `json:"certificate_id"`
	Serial        string    `json:"serial"`
	Reason        string    `json:"reason"`
	Requester     string    `json:"requester"`
	RequestedAt   time.Time `json:"requested_at"`
}

func (ACMERevocationRequested) EventType() string     { return TypeACMERevocationRequested }
func (ACMERevocationRequested) EventVersion() int     { return 1 }
func (e ACMERevocationRequested) AggregateID() string { return e.CertificateID }
func (e ACMERevocationRequested) Validate() error {
	return required("certificate_id", e.CertificateID, "serial", e.Serial, "reason", e.Reason)
}
