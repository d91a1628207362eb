package events

import (
	"errors"
	"time"
)

// The commercial half of server certificates (SPEC §4.2, §4.4, §5 "Server
// orders"): customers' orders, renewal notices, invoices, payments, and
// the validation steps a customer sees on an order (SV-12).
//
// Who emits what:
//   - intake owns customers and orders: CertificateImported, OrderPlaced,
//     RenewalDeclined (and the server Application events);
//   - the notifier owns the reminder schedule: RenewalDue (product server,
//     60 days before expiry, 90 for imported certificates; NO-3), which
//     intake turns into a renewal order;
//   - billing owns prices, invoices and payments: InvoiceIssued,
//     PaymentConfirmed (OrderID set), PaymentFailed, PaymentRefunded;
//   - validation owns the checks: DomainValidated, DomainValidationFailed,
//     OrganizationVerified, PhoneVerified.

// Event types of this file.
const (
	TypeCertificateImported    = "CertificateImported"
	TypeOrderPlaced            = "OrderPlaced"
	TypeInvoiceIssued          = "InvoiceIssued"
	TypePaymentFailed          = "PaymentFailed"
	TypePaymentRefunded        = "PaymentRefunded"
	TypeRenewalDeclined        = "RenewalDeclined"
	TypeDomainValidated        = "DomainValidated"
	TypeDomainValidationFailed = "DomainValidationFailed"
	TypeOrganizationVerified   = "OrganizationVerified"
	TypePhoneVerified          = "PhoneVerified"
)

func init() {
	for _, t := range []string{TypeCertificateImported, TypeOrderPlaced, TypeInvoiceIssued, TypePaymentFailed,
		TypePaymentRefunded, TypeRenewalDeclined, TypeDomainValidated, TypeDomainValidationFailed,
		TypeOrganizationVerified, TypePhoneVerified} {
		versions[t] = 1
	}
}

// Order kinds (SV-5): a renewal carries the remaining validity over; a
// new order does not.
const (
	OrderKindNew     = "new"
	OrderKindRenewal = "renewal"
)

// Where an order came from.
const (
	OrderSourceNotice      = "notice"      // the renewal notice (SV-1) made it
	OrderSourceApplication = "application" // a server application without an order
	OrderSourceACME        = "acme"        // an ACME newOrder (AC-4)
)

// CertificateImported: an operator registered a server certificate bought
// elsewhere, and its customer (SV-1), so that it can be renewed from 90
// days before its expiry. SealedSetupLink, when the customer has no
// password yet, is the one-time link to set it, sealed to the notifier's
// public key (pkg/seal; a secret never travels in clear, SE-1).
type CertificateImported struct {
	CertificateID   string             `json:"certificate_id"`
	CustomerID      string             `json:"customer_id"`
	Recipient       Recipient          `json:"recipient"`
	Organization    ServerOrganization `json:"organization"`
	CommonName      string             `json:"common_name"`
	DNSNames        []string           `json:"dns_names,omitempty"`
	Serial          string             `json:"serial"` // hex
	IssuerDN        string             `json:"issuer_dn"`
	NotBefore       time.Time          `json:"not_before"`
	NotAfter        time.Time          `json:"not_after"`
	SealedSetupLink []byte             `json:"sealed_setup_link,omitempty"`
}

func (CertificateImported) EventType() string     { return TypeCertificateImported }
func (CertificateImported) EventVersion() int     { return 1 }
func (e CertificateImported) AggregateID() string { return e.CertificateID }
func (e CertificateImported) Validate() error {
	if e.NotAfter.IsZero() {
		return errors.New("not_after is required")
	}
	return required("certificate_id", e.CertificateID, "customer_id", e.CustomerID,
		"recipient.email", e.Recipient.Email, "common_name", e.CommonName)
}

// RenewalNotice is what a renewal notice mail needs beside the invoice
// (SV-1, SV-2): the certificate that expires, and the signed one-click
// intent links, sealed to the notifier's public key.
type RenewalNotice struct {
	CertificateID string    `json:"certificate_id"`
	CommonName    string    `json:"common_name"`
	NotAfter      time.Time `json:"not_after"`
	DaysBefore    int       `json:"days_before"`
	Imported      bool      `json:"imported,omitempty"`
	// SealedLinks: JSON {"renew": url, "decline": url, "setup"?: url},
	// sealed (pkg/seal) to NOTIFIER_PUBLIC_KEY.
	SealedLinks []byte `json:"sealed_links,omitempty"`
}

// OrderPlaced: a customer's order exists and is to be paid (billing makes
// its invoice). Notice is set for the renewal order the notice made
// (OrderSourceNotice); billing copies it into InvoiceIssued so that the
// notifier sends one mail: the notice with its invoice.
type OrderPlaced struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Product    string    `json:"product"` // server
	Kind       string    `json:"kind"`    // OrderKindNew | OrderKindRenewal
	Source     string    `json:"source"`
	TermMonths int       `json:"term_months"`
	Recipient  Recipient `json:"recipient"`
	// The customer's company, as the invoice is addressed.
	OrganizationName string         `json:"organization_name,omitempty"`
	CommonName       string         `json:"common_name,omitempty"`
	RenewalOf        string         `json:"renewal_of,omitempty"` // certificate ID
	ApplicationID    string         `json:"application_id,omitempty"`
	Notice           *RenewalNotice `json:"notice,omitempty"`
	PlacedAt         time.Time      `json:"placed_at"`
}

func (OrderPlaced) EventType() string     { return TypeOrderPlaced }
func (OrderPlaced) EventVersion() int     { return 1 }
func (e OrderPlaced) AggregateID() string { return e.OrderID }
func (e OrderPlaced) Validate() error {
	if e.TermMonths <= 0 {
		return errors.New("term_months must be positive")
	}
	if e.Kind != OrderKindNew && e.Kind != OrderKindRenewal {
		return errors.New("kind must be new or renewal")
	}
	return required("order_id", e.OrderID, "customer_id", e.CustomerID, "product", e.Product,
		"source", e.Source, "recipient.email", e.Recipient.Email)
}

// InvoiceLine is one line of an invoice; amounts in integer minor units
// of the invoice's currency (BI-4).
type InvoiceLine struct {
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
	UnitPrice   int64  `json:"unit_price"`
	Amount      int64  `json:"amount"`
	TaxRate     int    `json:"tax_rate"` // percent, e.g. 10
}

// TaxSummary is the tax of one rate, computed once per rate per invoice
// (Japan's qualified invoice rules).
type TaxSummary struct {
	Rate    int   `json:"rate"`
	Taxable int64 `json:"taxable"`
	Tax     int64 `json:"tax"`
}

// InvoiceIssued: billing issued an invoice for an order. It carries what
// the invoice mail and its PDF need, so that the notifier renders them
// without reading billing's schema.
type InvoiceIssued struct {
	InvoiceID          string        `json:"invoice_id"`
	Number             string        `json:"number"`
	PaymentReference   string        `json:"payment_reference"`
	OrderID            string        `json:"order_id"`
	CustomerID         string        `json:"customer_id"`
	Recipient          Recipient     `json:"recipient"`
	OrganizationName   string        `json:"organization_name,omitempty"`
	Currency           string        `json:"currency"` // ISO 4217
	Lines              []InvoiceLine `json:"lines"`
	Taxes              []TaxSummary  `json:"taxes"`
	Subtotal           int64         `json:"subtotal"`
	Tax                int64         `json:"tax"`
	Total              int64         `json:"total"`
	RegistrationNumber string        `json:"registration_number"` // "T" + 13 digits
	IssuerName         string        `json:"issuer_name"`
	// BankAccount is where a bank transfer goes (BI-3), as printed on the
	// invoice; the transfer quotes PaymentReference.
	BankAccount string         `json:"bank_account,omitempty"`
	IssuedAt    time.Time      `json:"issued_at"`
	DueAt       time.Time      `json:"due_at"`
	Notice      *RenewalNotice `json:"notice,omitempty"`
}

func (InvoiceIssued) EventType() string     { return TypeInvoiceIssued }
func (InvoiceIssued) EventVersion() int     { return 1 }
func (e InvoiceIssued) AggregateID() string { return e.OrderID }
func (e InvoiceIssued) Validate() error {
	if len(e.Lines) == 0 {
		return errors.New("lines are required")
	}
	return required("invoice_id", e.InvoiceID, "number", e.Number, "order_id", e.OrderID,
		"customer_id", e.CustomerID, "currency", e.Currency, "recipient.email", e.Recipient.Email)
}

// PaymentFailed: a card payment for an invoice failed (BI-2).
type PaymentFailed struct {
	InvoiceID  string    `json:"invoice_id"`
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Reason     string    `json:"reason"`
	Recipient  Recipient `json:"recipient"`
}

func (PaymentFailed) EventType() string     { return TypePaymentFailed }
func (PaymentFailed) EventVersion() int     { return 1 }
func (e PaymentFailed) AggregateID() string { return e.OrderID }
func (e PaymentFailed) Validate() error {
	return required("invoice_id", e.InvoiceID, "order_id", e.OrderID)
}

// PaymentRefunded: a paid invoice was refunded (BI-2); the order is no
// longer paid, and an operator is told.
type PaymentRefunded struct {
	InvoiceID  string `json:"invoice_id"`
	OrderID    string `json:"order_id"`
	CustomerID string `json:"customer_id"`
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
}

func (PaymentRefunded) EventType() string     { return TypePaymentRefunded }
func (PaymentRefunded) EventVersion() int     { return 1 }
func (e PaymentRefunded) AggregateID() string { return e.OrderID }
func (e PaymentRefunded) Validate() error {
	return required("invoice_id", e.InvoiceID, "order_id", e.OrderID)
}

// RenewalDeclined: the customer said they will not renew (SV-2). Advice
// says what a hosting plan that needs a dedicated certificate must
// change; notices for this certificate stop.
type RenewalDeclined struct {
	CertificateID string    `json:"certificate_id"`
	CustomerID    string    `json:"customer_id"`
	OrderID       string    `json:"order_id,omitempty"`
	Recipient     Recipient `json:"recipient"`
	Advice        string    `json:"advice"`
	DeclinedAt    time.Time `json:"declined_at"`
}

func (RenewalDeclined) EventType() string     { return TypeRenewalDeclined }
func (RenewalDeclined) EventVersion() int     { return 1 }
func (e RenewalDeclined) AggregateID() string { return e.CertificateID }
func (e RenewalDeclined) Validate() error {
	return required("certificate_id", e.CertificateID, "customer_id", e.CustomerID, "advice", e.Advice)
}

// DomainValidated: validation established control of one domain of a
// server application (SV-8, VA-1 … VA-9). ValidUntil is the end of its
// reuse period by issuance date (VA-5).
type DomainValidated struct {
	ApplicationID string    `json:"application_id"`
	OrderID       string    `json:"order_id,omitempty"`
	ValidationID  string    `json:"validation_id"`
	Domain        string    `json:"domain"`
	Method        string    `json:"method"`
	ValidatedAt   time.Time `json:"validated_at"`
	ValidUntil    time.Time `json:"valid_until"`
}

func (DomainValidated) EventType() string     { return TypeDomainValidated }
func (DomainValidated) EventVersion() int     { return 1 }
func (e DomainValidated) AggregateID() string { return e.ApplicationID }
func (e DomainValidated) Validate() error {
	return required("application_id", e.ApplicationID, "validation_id", e.ValidationID, "domain", e.Domain, "method", e.Method)
}

// DomainValidationFailed: a check of one domain failed (VA-6 names what
// was expected and what was found). Final: no further attempt follows
// (the random value expired, or CAA forbids); otherwise it is retried.
type DomainValidationFailed struct {
	ApplicationID string    `json:"application_id"`
	OrderID       string    `json:"order_id,omitempty"`
	ValidationID  string    `json:"validation_id"`
	Domain        string    `json:"domain"`
	Method        string    `json:"method"`
	Detail        string    `json:"detail"`
	Final         bool      `json:"final"`
	FailedAt      time.Time `json:"failed_at"`
}

func (DomainValidationFailed) EventType() string     { return TypeDomainValidationFailed }
func (DomainValidationFailed) EventVersion() int     { return 1 }
func (e DomainValidationFailed) AggregateID() string { return e.ApplicationID }
func (e DomainValidationFailed) Validate() error {
	return required("application_id", e.ApplicationID, "domain", e.Domain, "detail", e.Detail)
}

// OrganizationVerified: the organization of a server application matched
// the registry's English record (SV-7), or verified data was reused
// within its period (VA-5, Reused).
type OrganizationVerified struct {
	ApplicationID string    `json:"application_id"`
	OrderID       string    `json:"order_id,omitempty"`
	DUNS          string    `json:"duns"`
	Reused        bool      `json:"reused,omitempty"`
	VerifiedAt    time.Time `json:"verified_at"`
	ValidUntil    time.Time `json:"valid_until"`
}

func (OrganizationVerified) EventType() string     { return TypeOrganizationVerified }
func (OrganizationVerified) EventVersion() int     { return 1 }
func (e OrganizationVerified) AggregateID() string { return e.ApplicationID }
func (e OrganizationVerified) Validate() error {
	return required("application_id", e.ApplicationID, "duns", e.DUNS)
}

// PhoneVerified: an operator recorded the phone check to the registry's
// number (SV-9). Confirmed false is a failed check.
type PhoneVerified struct {
	ApplicationID string    `json:"application_id"`
	OrderID       string    `json:"order_id,omitempty"`
	CheckID       string    `json:"check_id"`
	Confirmed     bool      `json:"confirmed"`
	Operator      string    `json:"operator"`
	At            time.Time `json:"at"`
}

func (PhoneVerified) EventType() string     { return TypePhoneVerified }
func (PhoneVerified) EventVersion() int     { return 1 }
func (e PhoneVerified) AggregateID() string { return e.ApplicationID }
func (e PhoneVerified) Validate() error {
	return required("application_id", e.ApplicationID, "check_id", e.CheckID)
}
