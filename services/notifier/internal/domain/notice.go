// Package domain is the notifier's types and rules, with no I/O: what it
// knows about an e-mail before it is sent — why it goes out (the reason),
// to whom, in which language, the inputs its template is rendered from,
// and the stable Message-ID that makes every retry and every redelivered
// event the same message (NO-1) — the delivery log and its retry policy,
// and renewal reminders (reminder.go).
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/certlife/platform/pkg/events"
)

// Reasons: why a message is sent. Each has its own template and subject.
const (
	ReasonApplicationProvisional = "application_provisional"
	ReasonApplicationCancelled   = "application_cancelled"
	ReasonApplicationRejected    = "application_rejected"
	ReasonCertificateReady       = "certificate_ready" // events.CodeForCertificateReady
	ReasonReissue                = "reissue"           // events.CodeForReissue
	ReasonRenewalNotice          = "renewal_notice"    // events.CodeForRenewalNotice
	ReasonCertificateRevoked     = "certificate_revoked"
	// ReasonMailboxValidation is a fresh code the applicant asked for
	// (events.CodeForMailboxValidation, PC-16).
	ReasonMailboxValidation = "mailbox_validation"
	// ReasonServerCertificateIssued: a server certificate was issued; the
	// mail to its technical contact carries the PEM chain (SV-10).
	ReasonServerCertificateIssued = "server_certificate_issued"

	// Server orders (SV-1 … SV-4, SPEC §5 "Server orders").
	//
	// ReasonServerRenewalNotice: the renewal notice of a server
	// certificate with its invoice (InvoiceIssued with a Notice, SV-1).
	ReasonServerRenewalNotice = "server_renewal_notice"
	// ReasonInvoiceIssued: the invoice of a new order (InvoiceIssued
	// without a Notice).
	ReasonInvoiceIssued = "invoice_issued"
	// ReasonCertificateImported: a certificate bought elsewhere was
	// registered for renewal; carries the password setup link unless it
	// rides with a notice due within NoticeSoonWithin.
	ReasonCertificateImported = "certificate_imported"
	// ReasonApplicationGuidance: an order was paid (PaymentConfirmed with
	// its OrderID): how to apply, and the automatic re-application (SV-3, SV-4).
	ReasonApplicationGuidance = "application_guidance"
	ReasonPaymentFailed       = "payment_failed"
	// ReasonRenewalDeclined confirms a declined renewal with its advice (SV-2).
	ReasonRenewalDeclined = "renewal_declined"
	// ReasonAutoReapplied: the renewal was applied for automatically with
	// the previous application data and CSR (SV-4).
	ReasonAutoReapplied = "auto_reapplied"
)

// Reasons lists every reason, in the order a template test walks them.
var Reasons = []string{
	ReasonApplicationProvisional, ReasonApplicationCancelled, ReasonApplicationRejected,
	ReasonCertificateReady, ReasonReissue, ReasonRenewalNotice, ReasonCertificateRevoked,
	ReasonMailboxValidation,
	ReasonServerCertificateIssued,
	ReasonServerRenewalNotice, ReasonInvoiceIssued, ReasonCertificateImported, ReasonApplicationGuidance,
	ReasonPaymentFailed, ReasonRenewalDeclined, ReasonAutoReapplied,
	ReasonCoverageCSRRequest, ReasonCoverageCSRReminder,
	ReasonMassRevocation, ReasonRevocationReplacement,
}

// Mass revocation (OP-5).
const (
	// ReasonMassRevocation: a subscriber's one mail of a mass revocation,
	// listing every certificate of theirs it revoked (key = the mass
	// revocation: one per subscriber and mass revocation).
	ReasonMassRevocation = "mass_revocation"
	// ReasonRevocationReplacement: the free replacement of a server
	// certificate a mass revocation revoked needs a CSR of a new key.
	ReasonRevocationReplacement = "revocation_replacement"
)

// Coverage longer than a certificate (IS-4): the reissue inside the
// coverage waits for the customer's new CSR (CoverageCSRRequested); a
// reminder follows 7 days before the certificate expires while it is
// still missing, once.
const (
	ReasonCoverageCSRRequest  = "coverage_csr_request"
	ReasonCoverageCSRReminder = "coverage_csr_reminder"
	// CoverageCSRReminderBefore: the reminder's offset before the deadline.
	CoverageCSRReminderBefore = 7 * 24 * time.Hour
)

// KnownReason reports whether r is one of Reasons.
func KnownReason(r string) bool {
	for _, k := range Reasons {
		if k == r {
			return true
		}
	}
	return false
}

// CarriesCode reports whether a reason's mail carries a certificate code.
func CarriesCode(reason string) bool {
	return reason == ReasonCertificateReady || reason == ReasonReissue || reason == ReasonRenewalNotice ||
		reason == ReasonMailboxValidation
}

// Languages with templates; anything else falls back to English (NO-2).
const (
	Japanese = "ja"
	English  = "en"
)

// Language maps an applicant's language tag ("ja", "ja-JP", "en-US", "")
// to a template language.
func Language(tag string) string {
	t := strings.ToLower(strings.TrimSpace(tag))
	if t == Japanese || strings.HasPrefix(t, Japanese+"-") || strings.HasPrefix(t, Japanese+"_") {
		return Japanese
	}
	return English
}

// NormalizeRecipient is the form of an address the Message-ID and the
// delivery log use: case and surrounding space do not make a new recipient.
func NormalizeRecipient(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// MessageID derives the Message-ID of the one message a recipient gets
// for a reason about a subject (an application, a certificate, a
// certificate's 30-day notice…). It is a pure function of those three, so
// that a redelivered or republished event, or a retry after an SMTP
// failure, yields the same ID — and the unique constraint on it in the
// delivery log lets only one such message exist (NO-1). Its right side
// is the domain of the sender (MAIL_FROM), as RFC 5322 3.6.4 advises: a
// domain the sender controls makes it globally unique. It is the header
// value, angle brackets included.
func MessageID(recipient, reason, key, mailDomain string) string {
	sum := sha256.Sum256([]byte(NormalizeRecipient(recipient) + "\x00" + reason + "\x00" + key))
	return "<" + hex.EncodeToString(sum[:])[:32] + "@" + mailDomain + ">"
}

// MailDomain is the domain of the sender address MAIL_FROM
// ("Certlife CA <no-reply@certlife.example>" → "certlife.example").
func MailDomain(from string) (string, error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", err
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at < 0 || at == len(a.Address)-1 || strings.ContainsAny(a.Address[at+1:], "[]<> ") {
		return "", errors.New("the address has no domain")
	}
	return strings.ToLower(a.Address[at+1:]), nil
}

// RenewalNoticeKey is the subject key of one renewal notice: a
// certificate gets one notice per reminder offset.
func RenewalNoticeKey(certificateID string, daysBefore int) string {
	return certificateID + "/" + strconv.Itoa(daysBefore) + "d"
}

// Data are the inputs a message is rendered from. They are stored with the
// delivery (never the certificate code, which stays sealed until the send)
// so that the message can be rendered again on every attempt.
type Data struct {
	Product        string    `json:"product,omitempty"`
	Kind           string    `json:"kind,omitempty"` // new | renewal | reissue
	ApplicationID  string    `json:"application_id,omitempty"`
	CertificateID  string    `json:"certificate_id,omitempty"`
	Serial         string    `json:"serial,omitempty"`
	Name           string    `json:"name,omitempty"` // addressee, in the mail's language
	Organization   string    `json:"organization,omitempty"`
	AcceptedAt     time.Time `json:"accepted_at,omitzero"`
	CancelDeadline time.Time `json:"cancel_deadline,omitzero"`
	CancelledAt    time.Time `json:"cancelled_at,omitzero"`
	// CouponReleased: the cancelled application's coupon is usable again.
	CouponReleased bool `json:"coupon_released,omitempty"`
	// Reason is a rejection's or a revocation's reason.
	Reason     string    `json:"reason,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	NotAfter   time.Time `json:"not_after,omitzero"`
	DaysBefore int       `json:"days_before,omitempty"`
	// A server certificate's names, start and PEM chain (public data):
	// the chain is the attachment of its issuance mail (SV-10).
	DNSNames  []string  `json:"dns_names,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	PEMChain  string    `json:"pem_chain,omitempty"`

	// Server orders (SV-1 … SV-4).
	CommonName string `json:"common_name,omitempty"`
	OrderID    string `json:"order_id,omitempty"`
	InvoiceID  string `json:"invoice_id,omitempty"`
	// DaysLeft: whole days from the message's queueing to NotAfter.
	DaysLeft int  `json:"days_left,omitempty"`
	Imported bool `json:"imported,omitempty"`
	// Invoice is the invoice the mail is about and whose PDF it carries:
	// the event as billing issued it (no secret in it).
	Invoice *events.InvoiceIssued `json:"invoice,omitempty"`
	// A payment: its amount, currency, method and time (PaymentConfirmed).
	Amount   int64     `json:"amount,omitempty"`
	Currency string    `json:"currency,omitempty"`
	Method   string    `json:"method,omitempty"`
	PaidAt   time.Time `json:"paid_at,omitzero"`
	// Advice is what a declined renewal means for the customer's plan (SV-2).
	Advice     string    `json:"advice,omitempty"`
	DeclinedAt time.Time `json:"declined_at,omitzero"`
	// NoticeAt is when an imported certificate's first notice is due.
	NoticeAt time.Time `json:"notice_at,omitzero"`
	// PreviousCertificateID is the certificate an automatic renewal renews.
	PreviousCertificateID string `json:"previous_certificate_id,omitempty"`
	// CoverageEnd is the end of a server subscription (IS-4).
	CoverageEnd time.Time `json:"coverage_end,omitzero"`
	// A mass revocation (OP-5): its ID, the subscriber's certificates it
	// revoked (at most events.MaxMassListed) and how many there are.
	MassRevocationID  string                      `json:"mass_revocation_id,omitempty"`
	Certificates      []events.RevokedCertificate `json:"certificates,omitempty"`
	CertificatesTotal int                         `json:"certificates_total,omitempty"`
}

// InvoicePDFName is the file name of an invoice's PDF attachment.
func InvoicePDFName(number string) string {
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, number)
	if n == "" {
		n = "invoice"
	}
	return "invoice-" + n + ".pdf"
}

// NoticeLinks are a renewal notice's one-click links, as sealed in
// events.RenewalNotice.SealedLinks.
type NoticeLinks struct {
	Renew   string `json:"renew"`
	Decline string `json:"decline"`
	Setup   string `json:"setup,omitempty"`
}

// DaysLeft is the days from now until notAfter, to the nearest day; 0
// once past.
func DaysLeft(notAfter, now time.Time) int {
	if !notAfter.After(now) {
		return 0
	}
	return int((notAfter.Sub(now) + 12*time.Hour) / (24 * time.Hour))
}

// Attachment is a file a message carries.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Attachments are the files of a reason's mail: a server certificate's
// issuance mail carries its PEM chain (SV-10), named after the
// certificate's first name.
func Attachments(reason string, d Data) []Attachment {
	if reason != ReasonServerCertificateIssued || d.PEMChain == "" {
		return nil
	}
	name := "certificate"
	if len(d.DNSNames) > 0 {
		name = strings.NewReplacer("*", "wildcard", "/", "_").Replace(d.DNSNames[0])
	}
	return []Attachment{{Name: name + ".pem", ContentType: "application/pem-certificate-chain", Data: []byte(d.PEMChain)}}
}

// Request is one message to queue.
type Request struct {
	Reason    string
	Recipient string
	Language  string
	// Key is the subject key the Message-ID is derived from.
	Key string
	// MailDomain is the right side of the Message-ID (MAIL_FROM's domain).
	MailDomain string
	SubjectID  string
	CausedBy   string // event ID
	// Correlation is carried over to NotificationSent.
	Correlation string
	Data        Data
	// SealedCode is the certificate code sealed to the notifier's key.
	SealedCode []byte
	// SealedLinks (a renewal notice's one-click links, JSON) and
	// SealedSetup (a password setup link), sealed to the notifier's key.
	SealedLinks []byte
	SealedSetup []byte
}

// MessageID is the request's stable Message-ID.
func (r Request) MessageID() string { return MessageID(r.Recipient, r.Reason, r.Key, r.MailDomain) }

// The renewal window of a client certificate (PC-8): from 30 days before
// its expiry until 365 days after it.
const (
	RenewalOpensBefore = 30 * 24 * time.Hour
	RenewalClosesAfter = 365 * 24 * time.Hour
)

// RenewalWindow is when a certificate expiring at notAfter can be renewed.
func RenewalWindow(notAfter time.Time) (from, until time.Time) {
	return notAfter.Add(-RenewalOpensBefore), notAfter.Add(RenewalClosesAfter)
}

// MoreCertificates is how many of a mass revocation's certificates the
// mail does not list (beyond events.MaxMassListed).
func (d Data) MoreCertificates() int {
	if n := d.CertificatesTotal - len(d.Certificates); n > 0 {
		return n
	}
	return 0
}
