package domain

// Server certificates (SPEC §4.2, §5 "Server orders"): the server
// application body and its checks (SV-6), customers, orders, the
// renewal-or-new decision (SV-5, SV-11) and the steps a customer sees on
// an order (SV-12).

import (
	"crypto/x509"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/goodkey"
)

// ServerAddressInput is a server organization's address in English, as
// the business registry holds it (SV-7).
type ServerAddressInput struct {
	Street     *string `json:"street"`
	City       *string `json:"city"`
	State      *string `json:"state"`
	PostalCode *string `json:"postal_code"`
	Country    *string `json:"country"`
}

// DCVInput is the customer's domain control validation choice (SV-8).
type DCVInput struct {
	Method        *string `json:"method"`
	ApproverEmail *string `json:"approver_email"`
}

// ContactInput is the technical contact (SV-10).
type ContactInput struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
	Phone *string `json:"phone"`
}

// CustomerInput names the customer account of a first server
// application (default: the technical contact) or of an import.
type CustomerInput struct {
	Email    *string `json:"email"`
	Name     *string `json:"name"`
	Language *string `json:"language"`
}

// ServerFields are the fields a server application adds to the body of
// POST /v1/applications (SPEC §5).
type ServerFields struct {
	TermMonths       *int           `json:"term_months"`
	CSR              *string        `json:"csr"`
	Domains          []string       `json:"domains"`
	DCV              *DCVInput      `json:"dcv"`
	TechnicalContact *ContactInput  `json:"technical_contact"`
	Customer         *CustomerInput `json:"customer"`
	Order            *string        `json:"order"`
	// ReuseKey: reissues inside a coverage longer than a certificate use
	// this CSR's key again, without asking for a new CSR (IS-4).
	ReuseKey *bool `json:"reuse_key"`
}

// refuse adds an error for every server field present in a body that is
// not a server application.
func (f ServerFields) refuse(e *Errors, what string) {
	for _, x := range []struct {
		name    string
		present bool
	}{{"term_months", f.TermMonths != nil}, {"csr", f.CSR != nil}, {"domains", f.Domains != nil},
		{"dcv", f.DCV != nil}, {"technical_contact", f.TechnicalContact != nil}, {"customer", f.Customer != nil},
		{"order", f.Order != nil}, {"reuse_key", f.ReuseKey != nil}} {
		if x.present {
			e.add(x.name, "is not a field of "+what)
		}
	}
}

// Bounds of a server application.
const (
	MaxTermMonths = 60
	MaxDomains    = 100
)

var (
	dunsRe    = regexp.MustCompile(`^[0-9]{9}$`)
	countryRe = regexp.MustCompile(`^[A-Z]{2}$`)
	// A DNS name of a TLS certificate: LDH labels, optionally one leading
	// wildcard label (SV-8).
	labelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	intlRe  = regexp.MustCompile(`^[0-9+][0-9 \-]{5,19}$`)
)

// ServerValidated is a server application that passed validation.
type ServerValidated struct {
	Password     string // "" with a customer session
	Language     string
	Customer     Customer // Email, Name (the account to create or sign in)
	OrderID      *uuid.UUID
	TermMonths   int
	CSR          string
	Subject      DN
	Domains      []string
	DCV          events.DCVChoice
	Contact      events.Contact
	Organization events.ServerOrganization
	ReuseKey     bool
}

// ValidateServer checks every field of a new server application (SPEC §5,
// SV-6). withSession: a customer session authenticates the request, so
// no password is given.
func (a NewApplication) ValidateServer(withSession bool) (ServerValidated, Errors) {
	var e Errors
	var v ServerValidated
	if a.Coupon != nil {
		e.add("coupon", "is not a field of a server application (it is paid by invoice: term_months)")
	}
	if a.Applicant != nil {
		e.add("applicant", "is not a field of a server application (technical_contact and customer name the people)")
	}
	if withSession {
		if a.Password != nil {
			e.add("password", "must not be given with a customer session")
		}
		if a.Customer != nil {
			e.add("customer", "must not be given with a customer session")
		}
	} else {
		v.Password = checkPassword(&e, "password", a.Password)
	}
	v.Language = checkLanguage(&e, "language", a.Language, true)
	v.TermMonths = checkTerm(&e, "term_months", a.TermMonths)
	if a.Organization == nil {
		e.add("organization", "is required")
	} else {
		v.Organization = checkServerOrganization(&e, "organization", *a.Organization)
	}
	if a.CSR == nil || strings.TrimSpace(*a.CSR) == "" {
		e.add("csr", "is required")
	} else if dn, msg := CheckCSR(*a.CSR); msg != "" {
		e.add("csr", msg)
	} else {
		v.CSR, v.Subject = strings.TrimSpace(*a.CSR)+"\n", dn
	}
	v.Domains = checkDomains(&e, a.Domains, v.Subject.CommonName)
	v.DCV = checkDCV(&e, a.DCV)
	if a.TechnicalContact == nil {
		e.add("technical_contact", "is required")
	} else {
		c := *a.TechnicalContact
		v.Contact = events.Contact{
			Name:  e.text("technical_contact.name", c.Name, true, 64, asciiOrText, ""),
			Email: checkEmail(&e, "technical_contact.email", c.Email),
			Phone: e.text("technical_contact.phone", c.Phone, true, 20, intlRe, "must be a phone number of digits, with an optional leading +"),
		}
	}
	if a.Customer != nil {
		c := *a.Customer
		v.Customer.Email = checkEmail(&e, "customer.email", c.Email)
		v.Customer.Name = e.text("customer.name", c.Name, true, 128, nil, "")
		if c.Language != nil {
			e.add("customer.language", "is the application's language")
		}
	} else {
		v.Customer.Email, v.Customer.Name = v.Contact.Email, v.Contact.Name
	}
	v.Customer.Language = v.Language
	v.ReuseKey = a.ReuseKey != nil && *a.ReuseKey
	if a.Order != nil {
		id, err := uuid.Parse(strings.TrimSpace(*a.Order))
		if err != nil {
			e.add("order", "must be the ID of one of your orders")
		} else {
			v.OrderID = &id
		}
	}
	return v, e
}

// asciiOrText: any text (nil pattern) for names.
var asciiOrText *regexp.Regexp

func checkLanguage(e *Errors, field string, v *string, required bool) string {
	l := e.text(field, v, required, 2, nil, "")
	if l != "" && l != "ja" && l != "en" {
		e.add(field, `must be "ja" or "en"`)
		return ""
	}
	return l
}

func checkTerm(e *Errors, field string, v *int) int {
	if v == nil {
		e.add(field, "is required")
		return 0
	}
	if *v < 1 || *v > MaxTermMonths {
		e.add(field, fmt.Sprintf("must be a number of months from 1 to %d", MaxTermMonths))
		return 0
	}
	return *v
}

// checkServerOrganization checks a server organization: the registry
// number (9 digits, hyphens allowed), English name and address (SV-7).
func checkServerOrganization(e *Errors, prefix string, o OrganizationInput) events.ServerOrganization {
	for _, x := range []struct {
		name    string
		present bool
	}{{"company_code", o.CompanyCode != nil}, {"name_ja", o.NameJa != nil}, {"identifier", o.Identifier != nil}} {
		if x.present {
			e.add(prefix+"."+x.name, "is not a field of a server organization")
		}
	}
	var out events.ServerOrganization
	if o.DUNS != nil {
		d := strings.ReplaceAll(strings.TrimSpace(*o.DUNS), "-", "")
		out.DUNS = e.text(prefix+".duns", &d, true, 9, dunsRe, "must be the 9-digit registry (DUNS) number")
	} else {
		e.add(prefix+".duns", "is required")
	}
	out.NameEn = e.text(prefix+".name_en", o.NameEn, true, 64, asciiRe, "must be in Latin letters, as in the registry")
	if o.Address == nil {
		e.add(prefix+".address", "is required")
		return out
	}
	ad := *o.Address
	out.Address = events.ServerAddress{
		Street:     e.text(prefix+".address.street", ad.Street, true, 128, asciiRe, "must be in Latin letters, as in the registry"),
		City:       e.text(prefix+".address.city", ad.City, true, 64, asciiRe, "must be in Latin letters, as in the registry"),
		State:      e.text(prefix+".address.state", ad.State, true, 64, asciiRe, "must be in Latin letters, as in the registry"),
		PostalCode: e.text(prefix+".address.postal_code", ad.PostalCode, false, 16, asciiRe, "must be in Latin letters and digits"),
		Country:    e.text(prefix+".address.country", ad.Country, true, 2, countryRe, "must be an ISO 3166-1 alpha-2 code, e.g. JP"),
	}
	return out
}

func checkDCV(e *Errors, d *DCVInput) events.DCVChoice {
	if d == nil {
		e.add("dcv", "is required")
		return events.DCVChoice{}
	}
	var out events.DCVChoice
	out.Method = e.text("dcv.method", d.Method, true, 8, nil, "")
	switch out.Method {
	case "":
	case events.DCVMethodDNS, events.DCVMethodHTTP:
		if d.ApproverEmail != nil {
			e.add("dcv.approver_email", "is only for the email method")
		}
	case events.DCVMethodEmail:
		out.ApproverEmail = checkEmail(e, "dcv.approver_email", d.ApproverEmail)
		if out.ApproverEmail != "" && !constructedApprover(out.ApproverEmail) {
			e.add("dcv.approver_email", "must be admin@, administrator@, webmaster@, hostmaster@ or postmaster@ the domain (SV-8)")
			out.ApproverEmail = ""
		}
	default:
		e.add("dcv.method", `must be "dns", "http" or "email"`)
		out.Method = ""
	}
	return out
}

func constructedApprover(addr string) bool {
	local, _, _ := strings.Cut(addr, "@")
	switch local {
	case "admin", "administrator", "webmaster", "hostmaster", "postmaster":
		return true
	}
	return false
}

// ValidDNSName reports whether s is a lowercase DNS name a TLS
// certificate may carry (at least two labels; a leading "*." allowed).
func ValidDNSName(s string) bool {
	if len(s) > 253 {
		return false
	}
	s = strings.TrimPrefix(s, "*.")
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !labelRe.MatchString(l) {
			return false
		}
	}
	return true
}

func checkDomains(e *Errors, in []string, cn string) []string {
	if len(in) > MaxDomains {
		e.add("domains", fmt.Sprintf("must list at most %d names", MaxDomains))
		return nil
	}
	seen := map[string]bool{cn: true}
	var out []string
	for i, d := range in {
		n := strings.ToLower(strings.TrimSpace(d))
		field := fmt.Sprintf("domains[%d]", i)
		switch {
		case !ValidDNSName(n):
			e.add(field, "must be a DNS name, e.g. www.example.co.jp")
		case seen[n]:
			// the common name or a repetition: covered once
		default:
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// DN is the part of a server certificate's subject SV-5 compares: CN, O,
// L, ST, C.
type DN struct {
	CommonName   string `json:"common_name"`
	Organization string `json:"organization"`
	Locality     string `json:"locality"`
	State        string `json:"state"`
	Country      string `json:"country"`
}

// CheckCSR parses a PEM CSR and applies SV-6: its signature verifies, its
// key is RSA ≥ 2048 or ECDSA P-256/P-384 and not known-weak, no OU, and a
// common name that is a DNS name. It returns the subject, or a message.
func CheckCSR(pemText string) (DN, string) {
	csr, err := goodkey.ParseCSR(strings.TrimSpace(pemText))
	if err != nil {
		return DN{}, err.Error()
	}
	if err := (goodkey.Policy{}).CheckCSR(csr); err != nil {
		return DN{}, err.Error()
	}
	return csrDN(csr)
}

func csrDN(csr *x509.CertificateRequest) (DN, string) {
	cn := strings.ToLower(strings.TrimSpace(csr.Subject.CommonName))
	if cn == "" {
		return DN{}, "the CSR's subject has no common name (CN): it must be the certificate's main domain"
	}
	if !ValidDNSName(cn) {
		return DN{}, "the CSR's common name " + fmt.Sprintf("%q", cn) + " is not a DNS name"
	}
	return DN{CommonName: cn, Organization: first(csr.Subject.Organization), Locality: first(csr.Subject.Locality),
		State: first(csr.Subject.Province), Country: first(csr.Subject.Country)}, ""
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return strings.TrimSpace(s[0])
}

// CertificateDN is the subject of an X.509 certificate, as SV-5 compares it.
func CertificateDN(c *x509.Certificate) DN {
	return DN{CommonName: strings.ToLower(strings.TrimSpace(c.Subject.CommonName)), Organization: first(c.Subject.Organization),
		Locality: first(c.Subject.Locality), State: first(c.Subject.Province), Country: first(c.Subject.Country)}
}

// IssuedDN is the subject the issuer gives a server certificate: the CSR's
// common name and the registry's English record (SV-7).
func IssuedDN(cn string, org events.ServerOrganization) DN {
	return DN{CommonName: strings.ToLower(cn), Organization: org.NameEn, Locality: org.Address.City,
		State: org.Address.State, Country: org.Address.Country}
}

// Changed names the first field of SV-5 that differs, or "".
func (d DN) Changed(prev DN) string {
	eq := func(a, b string) bool { return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b)) }
	switch {
	case !eq(d.CommonName, prev.CommonName):
		return "common name"
	case !eq(d.Organization, prev.Organization):
		return "organization name"
	case !eq(d.Locality, prev.Locality):
		return "locality"
	case !eq(d.State, prev.State):
		return "state or prefecture"
	case !eq(d.Country, prev.Country):
		return "country"
	}
	return ""
}

// Customer is a server customer's account (SPEC §5).
type Customer struct {
	ID           uuid.UUID
	Email        string
	Name         string
	Language     string
	PasswordHash *string // nil until set (an imported customer)
}

// Recipient is where mail to the customer goes.
func (c Customer) Recipient() events.Recipient {
	return events.Recipient{Email: c.Email, Language: c.Language, Name: c.Name}
}

// ServerCertificate is a server certificate intake knows: issued by us
// (from CertificateIssued) or imported (SV-1).
type ServerCertificate struct {
	ID            uuid.UUID
	CustomerID    uuid.UUID
	Imported      bool
	ApplicationID *uuid.UUID
	OrderID       *uuid.UUID
	DN            DN
	DNSNames      []string
	Serial        string
	IssuerDN      string
	NotBefore     time.Time
	NotAfter      time.Time
	CoverageEnd   time.Time
	Organization  events.ServerOrganization
	RenewIntentAt *time.Time
	DeclinedAt    *time.Time
	CreatedAt     time.Time
}

// Decision is the platform's renewal-or-new decision (SV-5, SV-11).
type Decision struct {
	Kind          string // events.KindNew | events.KindRenewal
	RenewalOf     *uuid.UUID
	Reason        string // "renewal" or "new: …"
	CarryOverDays int
	CoverageEnd   time.Time
}

// AddMonths is t plus n calendar months.
func AddMonths(t time.Time, n int) time.Time { return t.AddDate(0, n, 0) }

// Decide is SV-5 and SV-11: a renewal of prev carries the remaining
// coverage over (coverage ends at prev's coverage end + term) unless the
// DN changed (CN, O, L, ST, C) or prev has expired, which make it a new
// certificate whose coverage is issuance (now) + term. Without prev it is
// new.
func Decide(prev *ServerCertificate, dn DN, termMonths int, now time.Time) Decision {
	d := Decision{Kind: events.KindNew, CoverageEnd: AddMonths(now, termMonths), Reason: "new: no previous certificate"}
	if prev == nil {
		return d
	}
	id := prev.ID
	d.RenewalOf = &id
	if !now.Before(prev.NotAfter) {
		d.Reason = "new: the certificate expired on " + prev.NotAfter.UTC().Format("2006-01-02") + ", nothing is carried over"
		return d
	}
	if f := dn.Changed(prev.DN); f != "" {
		d.Reason = "new: the " + f + " changed, nothing is carried over"
		return d
	}
	end := prev.CoverageEnd
	if end.Before(prev.NotAfter) {
		end = prev.NotAfter
	}
	d.Kind, d.Reason = events.KindRenewal, "renewal"
	d.CarryOverDays = int(end.Sub(now) / (24 * time.Hour))
	d.CoverageEnd = AddMonths(end, termMonths)
	return d
}

// Order statuses, computed from the order's facts.
const (
	OrderAwaitingPayment     = "awaiting_payment"
	OrderAwaitingApplication = "awaiting_application"
	OrderInProgress          = "in_progress"
	OrderIssued              = "issued"
	OrderCancelled           = "cancelled"
	OrderRefunded            = "refunded"
)

// Order is what a customer pays for.
type Order struct {
	ID            uuid.UUID
	CustomerID    uuid.UUID
	Kind          string
	Source        string
	TermMonths    int
	RenewalOf     *uuid.UUID
	Cycle         *time.Time
	ApplicationID *uuid.UUID
	CertificateID *uuid.UUID
	InvoiceID     *string
	InvoiceNumber *string
	Decision      string
	CarryOverDays int
	CoverageEnd   *time.Time
	PaidAt        *time.Time
	RefundedAt    *time.Time
	CancelledAt   *time.Time
	CreatedAt     time.Time
}

// Status is the order's status, from its facts.
func (o Order) Status() string {
	switch {
	case o.CancelledAt != nil:
		return OrderCancelled
	case o.CertificateID != nil:
		return OrderIssued
	case o.RefundedAt != nil && o.PaidAt == nil:
		return OrderRefunded
	case o.PaidAt == nil:
		return OrderAwaitingPayment
	case o.ApplicationID == nil:
		return OrderAwaitingApplication
	}
	return OrderInProgress
}

// CheckApplicable says whether an application may name the order.
func (o Order) CheckApplicable() error {
	switch o.Status() {
	case OrderCancelled:
		return errs.Conflict("order-cancelled", "this order was cancelled; place a new application without \"order\"")
	case OrderIssued:
		return errs.Conflict("order-issued", "this order's certificate is already issued")
	case OrderRefunded:
		return errs.Conflict("order-refunded", "this order was refunded; place a new application without \"order\"")
	}
	if o.ApplicationID != nil {
		return errs.Conflict("order-applied", "this order already has an application")
	}
	return nil
}

// Step names of an order (SV-12).
const (
	StepPayment          = "payment"
	StepDomainValidation = "domain_validation"
	StepOrganization     = "organization"
	StepPhone            = "phone"
	StepReview           = "review"
	StepIssuance         = "issuance"
)

// Step statuses.
const (
	StepPending  = "pending"
	StepDone     = "done"
	StepFailed   = "failed"
	StepRefunded = "refunded"
)

// Step is one line of an order's "My page" (SV-12).
type Step struct {
	Name   string     `json:"name"`
	Domain string     `json:"domain,omitempty"`
	Status string     `json:"status"`
	At     *time.Time `json:"at,omitempty"`
	Detail string     `json:"detail,omitempty"`
}

// StepRow is a reported step (key: the domain of a domain validation).
type StepRow struct {
	Name, Key, Status, Detail string
	At                        time.Time
}

// Steps projects the reported rows onto every step of an order: payment,
// each domain's validation (names: the certificate's names once an
// application exists), organization, phone, review, issuance. A step
// nobody reported is pending.
func Steps(names []string, rows []StepRow) []Step {
	byKey := map[string]StepRow{}
	for _, r := range rows {
		byKey[r.Name+"\x00"+r.Key] = r
	}
	mk := func(name, key string) Step {
		s := Step{Name: name, Domain: key, Status: StepPending}
		if r, ok := byKey[name+"\x00"+key]; ok {
			at := r.At
			s.Status, s.At, s.Detail = r.Status, &at, r.Detail
		}
		return s
	}
	out := []Step{mk(StepPayment, "")}
	if len(names) == 0 {
		out = append(out, Step{Name: StepDomainValidation, Status: StepPending, Detail: "after the application"})
	}
	for _, n := range names {
		out = append(out, mk(StepDomainValidation, n))
	}
	for _, n := range []string{StepOrganization, StepPhone, StepReview, StepIssuance} {
		out = append(out, mk(n, ""))
	}
	return out
}

// MonthsOf is the number of whole months a term of d buys (PRODUCT_TERM_SERVER).
func MonthsOf(d time.Duration) int {
	m := int((d + 15*24*time.Hour) / (730 * time.Hour))
	if m < 1 {
		return 1
	}
	return m
}

// DeclineAdvice is what RenewalDeclined tells a customer whose hosting
// plan needs a dedicated certificate (SV-2), in their language.
func DeclineAdvice(language string) string {
	if language == "ja" {
		return "証明書を更新しない旨を承りました。有効期限を過ぎるとこのサーバー証明書は失効し、HTTPS で接続できなくなります。" +
			"独自 SSL（専用のサーバー証明書）が必要なホスティングプランをご利用の場合は、期限までに共有 SSL のプランへの変更、" +
			"または独自 SSL オプションの解約をお手続きください。"
	}
	return "We have recorded that you will not renew this certificate. When it expires, HTTPS connections to the site will fail. " +
		"If your hosting plan requires a dedicated SSL certificate, change the plan to one with shared SSL, or cancel the " +
		"dedicated-SSL option, before the expiry date."
}

// CheckImport checks the customer and organization of an import (SV-1).
func CheckImport(e *Errors, c *CustomerInput, o *OrganizationInput) (Customer, events.ServerOrganization) {
	var cust Customer
	if c == nil {
		e.add("customer", "is required")
	} else {
		cust.Email = checkEmail(e, "customer.email", c.Email)
		cust.Name = e.text("customer.name", c.Name, true, 128, nil, "")
		cust.Language = checkLanguage(e, "customer.language", c.Language, true)
	}
	var org events.ServerOrganization
	if o == nil {
		e.add("organization", "is required")
	} else {
		org = checkServerOrganization(e, "organization", *o)
	}
	return cust, org
}
