package events

import (
	"errors"
	"time"
)

// The server-certificate (OV TLS) part of the contract (SPEC §4.2, §5).
// An application for a server certificate is an Application whose Server
// part is set; everything downstream — validation, review, issuance —
// reads it from the events, never from intake's schema.

// ServerAddress is an organization's address as the business registry
// holds it in English (SV-7).
type ServerAddress struct {
	Street     string `json:"street"`
	City       string `json:"city"`                  // the CSR's L
	State      string `json:"state"`                 // the CSR's ST (prefecture)
	PostalCode string `json:"postal_code,omitempty"` // the CSR's postalCode, if any
	Country    string `json:"country"`               // ISO 3166-1 alpha-2, the CSR's C
}

// ServerOrganization names the organization of a server certificate by its
// number in the business registry (DUNS-like) and its English record.
type ServerOrganization struct {
	DUNS    string        `json:"duns"`
	NameEn  string        `json:"name_en"`
	Address ServerAddress `json:"address"`
}

// Contact is a person to write to: the technical contact receives the
// issued certificate and chain (SV-10).
type Contact struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone,omitempty"`
}

// DCV methods (SV-8, VA-2) and ACME challenge types (AC-1).
const (
	DCVMethodDNS    = "dns"
	DCVMethodHTTP   = "http"
	DCVMethodEmail  = "email"
	DCVMethodDNS01  = "dns-01"
	DCVMethodHTTP01 = "http-01"
)

// DCVChoice is the customer's domain control validation method and, for
// e-mail, the constructed approver address (SV-8).
type DCVChoice struct {
	Method        string `json:"method"`
	ApproverEmail string `json:"approver_email,omitempty"`
}

// ServerApplication is the server part of an Application.
type ServerApplication struct {
	CustomerID string `json:"customer_id"`
	OrderID    string `json:"order_id"`
	TermMonths int    `json:"term_months"`
	// CSR is the PEM certificate request (public data; its key is the
	// customer's, never made by the platform: TLS BR §6.1.1.3).
	CSR        string `json:"csr"`
	CommonName string `json:"common_name"`
	// Domains are the additional names; the certificate covers CommonName
	// and these (SV-6: additional domains come with the application, not
	// the CSR).
	Domains          []string           `json:"domains,omitempty"`
	DCV              DCVChoice          `json:"dcv"`
	TechnicalContact Contact            `json:"technical_contact"`
	Organization     ServerOrganization `json:"organization"`
	// Renewal vs new (SV-5, SV-11): the platform's decision and why.
	RenewalOf     string    `json:"renewal_of,omitempty"` // the certificate renewed, when Kind is renewal
	Decision      string    `json:"decision,omitempty"`   // e.g. "renewal", "new: the organization name changed"
	CarryOverDays int       `json:"carry_over_days,omitempty"`
	CoverageEnd   time.Time `json:"coverage_end"` // the end of the paid coverage (IS-4)
	// ReuseKey: the customer opted in to reissues inside the coverage with
	// the same key (IS-4); otherwise a new CSR is asked for.
	ReuseKey bool `json:"reuse_key,omitempty"`
	// ACMEAccountURI is set for an order made over ACME: CAA accounturi
	// is checked against it (VA-4, AC-1).
	ACMEAccountURI string `json:"acme_account_uri,omitempty"`
	// AutoReapplied: the platform made this renewal application with the
	// previous application's data and CSR, the customer having not
	// applied within the configured period after payment (SV-4); the
	// notifier tells the customer.
	AutoReapplied bool `json:"auto_reapplied,omitempty"`
}

// Names is every DNS name the certificate covers, common name first.
func (s ServerApplication) Names() []string {
	out := []string{s.CommonName}
	for _, d := range s.Domains {
		if d != s.CommonName {
			out = append(out, d)
		}
	}
	return out
}

func (s ServerApplication) validate() error {
	if err := required("server.customer_id", s.CustomerID, "server.order_id", s.OrderID, "server.csr", s.CSR,
		"server.common_name", s.CommonName, "server.technical_contact.email", s.TechnicalContact.Email,
		"server.organization.duns", s.Organization.DUNS); err != nil {
		return err
	}
	if s.TermMonths <= 0 {
		return errors.New("server.term_months must be positive")
	}
	return nil
}

// Stages at which a server certificate's issuance can fail.
const (
	IssuanceStageCSR     = "csr"     // the CSR or its key is refused at signing (SV-6)
	IssuanceStageRequest = "request" // the application cannot make a conforming certificate (names, subject, coverage)
	IssuanceStageLint    = "lint"    // zlint found an error before the real signature (IS-3)
	IssuanceStageCT      = "ct"      // too few SCTs from the CT logs (IS-9)
	IssuanceStageVerify  = "verify"  // the signed certificate failed the issuer's own checks
)

// TypeCertificateIssuanceFailed is the type of CertificateIssuanceFailed.
const TypeCertificateIssuanceFailed = "CertificateIssuanceFailed"

func init() { versions[TypeCertificateIssuanceFailed] = 1 }

// CertificateIssuanceFailed: a server certificate approved for issuance
// could not be issued (yet). Final says no automatic attempt follows
// (only an operator's retry); otherwise NextAttemptAt says when the
// issuer tries again. Operators list these (GET /ops/v1/issuance-failures).
type CertificateIssuanceFailed struct {
	CertificateID string    `json:"certificate_id"`
	ApplicationID string    `json:"application_id"`
	Product       string    `json:"product"`
	Stage         string    `json:"stage"`
	Detail        string    `json:"detail"`
	Attempt       int       `json:"attempt"`
	Final         bool      `json:"final"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	FailedAt      time.Time `json:"failed_at"`
}

func (CertificateIssuanceFailed) EventType() string     { return TypeCertificateIssuanceFailed }
func (CertificateIssuanceFailed) EventVersion() int     { return 1 }
func (e CertificateIssuanceFailed) AggregateID() string { return e.ApplicationID }
func (e CertificateIssuanceFailed) Validate() error {
	return required("certificate_id", e.CertificateID, "application_id", e.ApplicationID, "stage", e.Stage, "detail", e.Detail)
}
