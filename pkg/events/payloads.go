package events

import (
	"errors"
	"time"
)

// versions maps every event type to the newest version this code knows.
// A message with a newer version is dead-lettered (EV-1), never dropped.
var versions = map[string]int{
	TypeApplicationProvisional: 1,
	TypeApplicationCancelled:   1,
	TypeCancelWindowClosed:     1,
	TypeApplicationRejected:    1,
	TypeCouponReserved:         1,
	TypeCouponRejected:         1,
	TypeCouponReleased:         1,
	TypePaymentConfirmed:       1,
	TypeReviewApproved:         1,
	TypeReviewRejected:         1,
	TypeCertificateReady:       1,
	TypeCertificateCodeIssued:  1,
	TypeCertificateIssued:      1,
	TypeCertificateRetrieved:   1,
	TypeCertificateRevoked:     1,
	TypeNotificationSent:       1,
	TypeRenewalDue:             1,
}

// Event type names (past tense, SPEC §6).
const (
	TypeApplicationProvisional = "ApplicationProvisional"
	TypeApplicationCancelled   = "ApplicationCancelled"
	TypeCancelWindowClosed     = "CancelWindowClosed"
	TypeApplicationRejected    = "ApplicationRejected"
	TypeCouponReserved         = "CouponReserved"
	TypeCouponRejected         = "CouponRejected"
	TypeCouponReleased         = "CouponReleased"
	TypePaymentConfirmed       = "PaymentConfirmed"
	TypeReviewApproved         = "ReviewApproved"
	TypeReviewRejected         = "ReviewRejected"
	TypeCertificateReady       = "CertificateReady"
	TypeCertificateCodeIssued  = "CertificateCodeIssued"
	TypeCertificateIssued      = "CertificateIssued"
	TypeCertificateRetrieved   = "CertificateRetrieved"
	TypeCertificateRevoked     = "CertificateRevoked"
	TypeNotificationSent       = "NotificationSent"
	TypeRenewalDue             = "RenewalDue"
)

// Products and application kinds.
const (
	ProductClient = "client"
	ProductServer = "server"

	KindNew     = "new"
	KindRenewal = "renewal"
	KindReissue = "reissue"
)

// Organization is the applicant's organization as applied for.
type Organization struct {
	CompanyCode string `json:"company_code"`
	NameJa      string `json:"name_ja"`
	NameEn      string `json:"name_en"`
	// Identifier is the registration reference in the S/MIME BR
	// 7.1.4.2.2 d form ("NTRJP-" + 13-digit corporate number, "LEIXG-" +
	// LEI, …), verified at review (PC-1); the issuer puts it in
	// subject:organizationIdentifier (PC-17). Optional: applications made
	// before it was collected have none.
	Identifier string `json:"identifier,omitempty"`
}

// Address is a Japanese work address.
type Address struct {
	PostalCode string `json:"postal_code"`
	Prefecture string `json:"prefecture"`
	City       string `json:"city"`
	Street     string `json:"street"`
	Building   string `json:"building,omitempty"`
}

// Applicant is the person a client certificate is for.
type Applicant struct {
	NameJa       string  `json:"name_ja"`
	NameEn       string  `json:"name_en"`
	TitleJa      string  `json:"title_ja,omitempty"`
	DepartmentJa string  `json:"department_ja,omitempty"`
	TitleEn      string  `json:"title_en,omitempty"`
	Email        string  `json:"email"`
	Phone        string  `json:"phone"`
	Address      Address `json:"address"`
}

// Recipient is who an e-mail about an aggregate goes to, and in which language.
type Recipient struct {
	Email    string `json:"email"`
	Language string `json:"language"`
	// Name is the addressee's name in that language (NO-2), filled by the
	// emitter; absent in events emitted before it existed.
	Name string `json:"name,omitempty"`
}

// Application is the state of an application as accepted: what every
// downstream service needs to act on it without reading intake's schema.
type Application struct {
	ID           string       `json:"id"`
	ApplicantID  string       `json:"applicant_id"`
	Product      string       `json:"product"`
	Kind         string       `json:"kind"`
	Language     string       `json:"language"`
	Coupon       string       `json:"coupon,omitempty"`
	Organization Organization `json:"organization"`
	Applicant    Applicant    `json:"applicant"`
	// PreviousCertificateID is the certificate renewed or reissued.
	PreviousCertificateID string `json:"previous_certificate_id,omitempty"`
	// ReissueReason is "superseded" or "key_compromise" for a reissue.
	ReissueReason string `json:"reissue_reason,omitempty"`
	// Server is set for a server (OV TLS) certificate's application.
	Server *ServerApplication `json:"server,omitempty"`
}

// Recipient is where mail about the application goes, and whom it
// addresses: the applicant's name in the mail's language (the other one
// when that is empty).
func (a Application) Recipient() Recipient {
	ja, en := a.Applicant.NameJa, a.Applicant.NameEn
	name := en
	if (a.Language == "ja" && ja != "") || en == "" {
		name = ja
	}
	return Recipient{Email: a.Applicant.Email, Language: a.Language, Name: name}
}

func (a Application) validate() error {
	if err := required("id", a.ID, "applicant_id", a.ApplicantID, "product", a.Product, "kind", a.Kind,
		"applicant.email", a.Applicant.Email); err != nil {
		return err
	}
	if a.Kind != KindNew && a.PreviousCertificateID == "" {
		return errors.New("previous_certificate_id is required for a " + a.Kind)
	}
	if (a.Product == ProductServer) != (a.Server != nil) {
		return errors.New("the server part is required for a server application, and only for one")
	}
	if a.Server != nil {
		return a.Server.validate()
	}
	return nil
}

// ApplicationProvisional: an application was received (PC-3).
type ApplicationProvisional struct {
	Application    Application `json:"application"`
	AcceptedAt     time.Time   `json:"accepted_at"`
	CancelDeadline time.Time   `json:"cancel_deadline"`
}

func (ApplicationProvisional) EventType() string     { return TypeApplicationProvisional }
func (ApplicationProvisional) EventVersion() int     { return 1 }
func (e ApplicationProvisional) AggregateID() string { return e.Application.ID }
func (e ApplicationProvisional) Validate() error {
	if e.CancelDeadline.IsZero() {
		return errors.New("cancel_deadline is required")
	}
	return e.Application.validate()
}

// ApplicationCancelled: the applicant cancelled within the window (PC-4).
type ApplicationCancelled struct {
	ApplicationID string    `json:"application_id"`
	Coupon        string    `json:"coupon,omitempty"`
	Recipient     Recipient `json:"recipient"`
	CancelledAt   time.Time `json:"cancelled_at"`
}

func (ApplicationCancelled) EventType() string     { return TypeApplicationCancelled }
func (ApplicationCancelled) EventVersion() int     { return 1 }
func (e ApplicationCancelled) AggregateID() string { return e.ApplicationID }
func (e ApplicationCancelled) Validate() error {
	return required("application_id", e.ApplicationID, "recipient.email", e.Recipient.Email)
}

// CancelWindowClosed: final acceptance (PC-3, PC-5). Reason is "deadline"
// or "maintenance".
type CancelWindowClosed struct {
	Application Application `json:"application"`
	ClosedAt    time.Time   `json:"closed_at"`
	Reason      string      `json:"reason"`
}

func (CancelWindowClosed) EventType() string     { return TypeCancelWindowClosed }
func (CancelWindowClosed) EventVersion() int     { return 1 }
func (e CancelWindowClosed) AggregateID() string { return e.Application.ID }
func (e CancelWindowClosed) Validate() error     { return e.Application.validate() }

// ApplicationRejected: the application ends without a certificate (a
// rejected review, or a coupon that could not be reserved).
type ApplicationRejected struct {
	ApplicationID string    `json:"application_id"`
	Reason        string    `json:"reason"`
	Recipient     Recipient `json:"recipient"`
}

func (ApplicationRejected) EventType() string     { return TypeApplicationRejected }
func (ApplicationRejected) EventVersion() int     { return 1 }
func (e ApplicationRejected) AggregateID() string { return e.ApplicationID }
func (e ApplicationRejected) Validate() error {
	return required("application_id", e.ApplicationID, "reason", e.Reason)
}

// CouponReserved: billing holds the coupon for the application (PC-2).
type CouponReserved struct {
	ApplicationID string `json:"application_id"`
	Coupon        string `json:"coupon"`
}

func (CouponReserved) EventType() string     { return TypeCouponReserved }
func (CouponReserved) EventVersion() int     { return 1 }
func (e CouponReserved) AggregateID() string { return e.ApplicationID }
func (e CouponReserved) Validate() error {
	return required("application_id", e.ApplicationID, "coupon", e.Coupon)
}

// CouponRejected: the coupon could not be reserved after all (it was used
// or expired between the instant check and the reservation).
type CouponRejected struct {
	ApplicationID string `json:"application_id"`
	Coupon        string `json:"coupon"`
	Reason        string `json:"reason"`
}

func (CouponRejected) EventType() string     { return TypeCouponRejected }
func (CouponRejected) EventVersion() int     { return 1 }
func (e CouponRejected) AggregateID() string { return e.ApplicationID }
func (e CouponRejected) Validate() error {
	return required("application_id", e.ApplicationID, "coupon", e.Coupon, "reason", e.Reason)
}

// CouponReleased: a cancelled application gave its coupon back (PC-4).
type CouponReleased struct {
	ApplicationID string `json:"application_id"`
	Coupon        string `json:"coupon"`
}

func (CouponReleased) EventType() string     { return TypeCouponReleased }
func (CouponReleased) EventVersion() int     { return 1 }
func (e CouponReleased) AggregateID() string { return e.ApplicationID }
func (e CouponReleased) Validate() error {
	return required("application_id", e.ApplicationID, "coupon", e.Coupon)
}

// PaymentConfirmed: the application is paid (coupon consumed, card or bank).
//
// A client application is paid by coupon (ApplicationID set); a server
// order by its invoice (OrderID, InvoiceID set, ApplicationID when the
// order already has its application).
type PaymentConfirmed struct {
	ApplicationID string `json:"application_id,omitempty"`
	Method        string `json:"method"` // coupon | coverage | card | bank_transfer
	Reference     string `json:"reference"`

	// Server orders (SV-3, BI-2, BI-3).
	OrderID    string    `json:"order_id,omitempty"`
	InvoiceID  string    `json:"invoice_id,omitempty"`
	CustomerID string    `json:"customer_id,omitempty"`
	Amount     int64     `json:"amount,omitempty"`
	Currency   string    `json:"currency,omitempty"`
	Recipient  Recipient `json:"recipient,omitzero"`
	PaidAt     time.Time `json:"paid_at,omitzero"`
}

func (PaymentConfirmed) EventType() string { return TypePaymentConfirmed }
func (PaymentConfirmed) EventVersion() int { return 1 }
func (e PaymentConfirmed) AggregateID() string {
	if e.ApplicationID == "" {
		return e.OrderID
	}
	return e.ApplicationID
}
func (e PaymentConfirmed) Validate() error {
	if e.ApplicationID == "" && e.OrderID == "" {
		return errors.New("application_id or order_id is required")
	}
	if e.OrderID != "" {
		if err := required("invoice_id", e.InvoiceID, "customer_id", e.CustomerID); err != nil {
			return err
		}
	}
	return required("method", e.Method)
}

// ReviewApproved: the CA approved the application (PC-6, OP-1).
type ReviewApproved struct {
	ReviewID    string      `json:"review_id"`
	Application Application `json:"application"`
	Reviewer    string      `json:"reviewer"` // "auto" for REVIEW_AUTO_APPROVE
}

func (ReviewApproved) EventType() string     { return TypeReviewApproved }
func (ReviewApproved) EventVersion() int     { return 1 }
func (e ReviewApproved) AggregateID() string { return e.Application.ID }
func (e ReviewApproved) Validate() error {
	if err := required("review_id", e.ReviewID, "reviewer", e.Reviewer); err != nil {
		return err
	}
	return e.Application.validate()
}

// ReviewRejected: the CA rejected the application, with a reason.
type ReviewRejected struct {
	ReviewID      string    `json:"review_id"`
	ApplicationID string    `json:"application_id"`
	Reason        string    `json:"reason"`
	Reviewer      string    `json:"reviewer"`
	Recipient     Recipient `json:"recipient"`
}

func (ReviewRejected) EventType() string     { return TypeReviewRejected }
func (ReviewRejected) EventVersion() int     { return 1 }
func (e ReviewRejected) AggregateID() string { return e.ApplicationID }
func (e ReviewRejected) Validate() error {
	return required("review_id", e.ReviewID, "application_id", e.ApplicationID, "reason", e.Reason,
		"recipient.email", e.Recipient.Email)
}

// CertificateReady: a client certificate is approved and waits to be
// retrieved (its key and certificate are made at retrieval, PC-15).
type CertificateReady struct {
	CertificateID string    `json:"certificate_id"`
	ApplicationID string    `json:"application_id"`
	ApplicantID   string    `json:"applicant_id"`
	Product       string    `json:"product"`
	Kind          string    `json:"kind"`
	Recipient     Recipient `json:"recipient"`
}

func (CertificateReady) EventType() string     { return TypeCertificateReady }
func (CertificateReady) EventVersion() int     { return 1 }
func (e CertificateReady) AggregateID() string { return e.ApplicationID }
func (e CertificateReady) Validate() error {
	return required("certificate_id", e.CertificateID, "application_id", e.ApplicationID,
		"applicant_id", e.ApplicantID, "recipient.email", e.Recipient.Email)
}

// CertificateCodeIssued: intake made a new certificate code (PC-7, SE-1).
// The code itself travels only sealed to the notifier's public key
// (NaCl anonymous box): neither the outbox row nor JetStream ever holds it
// in plaintext, and only the notifier can open it to put it in the e-mail.
type CertificateCodeIssued struct {
	// ApplicationID is empty for a renewal notice (no application yet).
	ApplicationID string `json:"application_id,omitempty"`
	// CertificateID is empty for a code the applicant asked for (PC-16):
	// it is about the mailbox, not one certificate.
	CertificateID string    `json:"certificate_id,omitempty"`
	ApplicantID   string    `json:"applicant_id"`
	Reason        string    `json:"reason"` // certificate_ready | reissue | renewal_notice | mailbox_validation
	Recipient     Recipient `json:"recipient"`
	SealedCode    []byte    `json:"sealed_code"`
	// NotAfter and DaysBefore describe the certificate a renewal notice is about.
	NotAfter   time.Time `json:"not_after,omitempty"`
	DaysBefore int       `json:"days_before,omitempty"`
}

// Reasons of a certificate code.
const (
	CodeForCertificateReady = "certificate_ready"
	CodeForReissue          = "reissue"
	CodeForRenewalNotice    = "renewal_notice"
	// CodeForMailboxValidation: a fresh code the applicant asked for
	// (POST /v1/certificate-codes) to validate the mailbox again (PC-16).
	CodeForMailboxValidation = "mailbox_validation"
)

func (CertificateCodeIssued) EventType() string { return TypeCertificateCodeIssued }
func (CertificateCodeIssued) EventVersion() int { return 1 }
func (e CertificateCodeIssued) AggregateID() string {
	switch {
	case e.ApplicationID != "":
		return e.ApplicationID
	case e.CertificateID != "":
		return e.CertificateID
	}
	return e.ApplicantID
}
func (e CertificateCodeIssued) Validate() error {
	if len(e.SealedCode) == 0 {
		return errors.New("sealed_code is required")
	}
	if e.Reason != CodeForMailboxValidation && e.CertificateID == "" {
		return errors.New("certificate_id is required")
	}
	return required("applicant_id", e.ApplicantID, "reason", e.Reason, "recipient.email", e.Recipient.Email)
}

// CertificateIssued: a certificate was signed.
type CertificateIssued struct {
	CertificateID         string    `json:"certificate_id"`
	ApplicationID         string    `json:"application_id"`
	ApplicantID           string    `json:"applicant_id"`
	Product               string    `json:"product"`
	Kind                  string    `json:"kind"`
	PreviousCertificateID string    `json:"previous_certificate_id,omitempty"`
	Recipient             Recipient `json:"recipient"`
	Serial                string    `json:"serial"` // hex
	Issuer                string    `json:"issuer"`
	NotBefore             time.Time `json:"not_before"`
	NotAfter              time.Time `json:"not_after"`
	// Windows are when this certificate may be renewed or reissued, as
	// the issuer decided them (PC-8, PC-11). Absent in events of older
	// issuers.
	Windows *Windows `json:"windows,omitempty"`

	// Server certificates only (SV-10): what delivery needs, all public.
	// Recipient is then the technical contact.
	CustomerID       string   `json:"customer_id,omitempty"`
	OrderID          string   `json:"order_id,omitempty"`
	DNSNames         []string `json:"dns_names,omitempty"`
	TechnicalContact *Contact `json:"technical_contact,omitempty"`
	// PEMChain is the certificate followed by its issuing CA, PEM.
	PEMChain string `json:"pem_chain,omitempty"`
	// CoverageEnd is the end of the server subscription the certificate
	// serves (IS-4); after NotAfter when a reissue inside it follows.
	CoverageEnd time.Time `json:"coverage_end,omitzero"`
}

// Windows are the renewal and reissue windows of an issued certificate.
// One service owns each rule: the issuer computes the instants from the
// certificate it signed (its internal/domain); every other service reads
// them from CertificateIssued and only compares a time with them, here,
// so that no service writes the 30/365/30-day rules again.
type Windows struct {
	// Renewal is open from RenewalFrom to RenewalUntil, both included (PC-8).
	RenewalFrom  time.Time `json:"renewal_from"`
	RenewalUntil time.Time `json:"renewal_until"`
	// Reissue is open before ReissueUntil, not at it (PC-11).
	ReissueUntil time.Time `json:"reissue_until"`
}

// RenewalOpen reports whether a renewal may be applied for at now.
func (w Windows) RenewalOpen(now time.Time) bool {
	return !now.Before(w.RenewalFrom) && !now.After(w.RenewalUntil)
}

// ReissueOpen reports whether a reissue may be applied for at now.
func (w Windows) ReissueOpen(now time.Time) bool { return now.Before(w.ReissueUntil) }

func (CertificateIssued) EventType() string     { return TypeCertificateIssued }
func (CertificateIssued) EventVersion() int     { return 1 }
func (e CertificateIssued) AggregateID() string { return e.ApplicationID }
func (e CertificateIssued) Validate() error {
	return required("certificate_id", e.CertificateID, "application_id", e.ApplicationID, "serial", e.Serial)
}

// CertificateRetrieved: the applicant downloaded the certificate (PC-14).
type CertificateRetrieved struct {
	CertificateID         string    `json:"certificate_id"`
	ApplicationID         string    `json:"application_id"`
	Kind                  string    `json:"kind"`
	PreviousCertificateID string    `json:"previous_certificate_id,omitempty"`
	Serial                string    `json:"serial"`
	Mode                  string    `json:"mode"` // pkcs12 | csr
	RetrievedAt           time.Time `json:"retrieved_at"`
}

func (CertificateRetrieved) EventType() string     { return TypeCertificateRetrieved }
func (CertificateRetrieved) EventVersion() int     { return 1 }
func (e CertificateRetrieved) AggregateID() string { return e.ApplicationID }
func (e CertificateRetrieved) Validate() error {
	return required("certificate_id", e.CertificateID, "application_id", e.ApplicationID, "mode", e.Mode)
}

// CertificateRevoked: a certificate was revoked (IS-6).
type CertificateRevoked struct {
	CertificateID string    `json:"certificate_id"`
	ApplicationID string    `json:"application_id"`
	Serial        string    `json:"serial"`
	Reason        string    `json:"reason"` // RFC 5280 name, e.g. superseded
	RevokedAt     time.Time `json:"revoked_at"`
	Recipient     Recipient `json:"recipient"`
	// MassRevocationID names the mass revocation (OP-5) that revoked the
	// certificate. A mass revocation notices each subscriber once: only
	// the first of a subscriber's certificates carries a Recipient. A
	// server certificate revoked this way is to be replaced (its renewal
	// window moves to now).
	MassRevocationID string `json:"mass_revocation_id,omitempty"`
	// Certificates lists, on the event that carries the recipient, every
	// certificate of that subscriber the mass revocation takes (at most
	// MaxMassListed); CertificatesTotal counts them all (OP-5).
	Certificates      []RevokedCertificate `json:"certificates,omitempty"`
	CertificatesTotal int                  `json:"certificates_total,omitempty"`
}

func (CertificateRevoked) EventType() string     { return TypeCertificateRevoked }
func (CertificateRevoked) EventVersion() int     { return 1 }
func (e CertificateRevoked) AggregateID() string { return e.CertificateID }
func (e CertificateRevoked) Validate() error {
	return required("certificate_id", e.CertificateID, "serial", e.Serial, "reason", e.Reason)
}

// NotificationSent: an e-mail left for a recipient (NO-4).
type NotificationSent struct {
	MessageID string `json:"message_id"`
	Reason    string `json:"reason"`
	Recipient string `json:"recipient"`
	CausedBy  string `json:"caused_by"` // the event ID that caused it
	SubjectID string `json:"subject_id"`
}

func (NotificationSent) EventType() string     { return TypeNotificationSent }
func (NotificationSent) EventVersion() int     { return 1 }
func (e NotificationSent) AggregateID() string { return e.SubjectID }
func (e NotificationSent) Validate() error {
	return required("message_id", e.MessageID, "reason", e.Reason, "recipient", e.Recipient, "subject_id", e.SubjectID)
}

// RenewalDue: a certificate reached a reminder offset before its expiry
// (PC-10, NO-3). The notifier emits it; intake answers with a fresh
// certificate code (CertificateCodeIssued, reason renewal_notice), which
// the notifier then mails as the renewal notice.
type RenewalDue struct {
	CertificateID string    `json:"certificate_id"`
	ApplicantID   string    `json:"applicant_id"`
	Product       string    `json:"product"`
	Recipient     Recipient `json:"recipient"`
	NotAfter      time.Time `json:"not_after"`
	DaysBefore    int       `json:"days_before"`
	// CustomerID is the server customer (product server): intake makes the
	// renewal order for it (SV-1). A certificate bought elsewhere
	// (CertificateImported) has a customer and no applicant.
	CustomerID string `json:"customer_id,omitempty"`
}

func (RenewalDue) EventType() string     { return TypeRenewalDue }
func (RenewalDue) EventVersion() int     { return 1 }
func (e RenewalDue) AggregateID() string { return e.CertificateID }
func (e RenewalDue) Validate() error {
	if e.ApplicantID == "" && e.CustomerID == "" {
		return errors.New("applicant_id or customer_id is required")
	}
	return required("certificate_id", e.CertificateID, "recipient.email", e.Recipient.Email)
}
