package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/publicsuffix"

	"github.com/certlife/platform/pkg/errs"
)

// Method is how an applicant shows control of a domain (SV-8, VA-2).
type Method string

// The methods. The manual ones are the seeds' (DNS TXT, HTTP file,
// constructed e-mail); the ACME ones are named for CAA's
// validationmethods (§4.10, RFC 8657).
const (
	MethodDNS      Method = "dns"     // BR 3.2.2.4.7, TXT with a random value
	MethodHTTP     Method = "http"    // BR 3.2.2.4.18, file under /.well-known/pki-validation/
	MethodEmail    Method = "email"   // BR 3.2.2.4.4, e-mail to a constructed address
	MethodACMEDNS  Method = "dns-01"  // BR 3.2.2.4.7 through ACME
	MethodACMEHTTP Method = "http-01" // BR 3.2.2.4.19
)

// ManualMethods are the methods an applicant may choose for an order.
var ManualMethods = []Method{MethodDNS, MethodHTTP, MethodEmail}

// ParseMethod reads a method name.
func ParseMethod(s string) (Method, error) {
	m := Method(s)
	switch m {
	case MethodDNS, MethodHTTP, MethodEmail, MethodACMEDNS, MethodACMEHTTP:
		return m, nil
	}
	return "", fmt.Errorf("unknown method %q: use dns, http or email (ACME: dns-01, http-01)", s)
}

// BRSection is the BR 3.2.2.4 subsection the method implements.
func (m Method) BRSection() string {
	switch m {
	case MethodDNS, MethodACMEDNS:
		return "3.2.2.4.7"
	case MethodHTTP:
		return "3.2.2.4.18"
	case MethodACMEHTTP:
		return "3.2.2.4.19"
	case MethodEmail:
		return "3.2.2.4.4"
	}
	return ""
}

// CAALabels are the RFC 8657 validationmethods labels that name the
// method: the ACME label where there is one, and the BR's label for
// methods outside the IANA ACME registry, "ca-tbr-" + the BR 3.2.2.4
// subsection number (BR §4.2.2.1.2 as amended by SC-098). A CAA record
// listing any of them permits the method. Labels match exactly (they are
// lower case; no case folding).
func (m Method) CAALabels() []string {
	switch m {
	case MethodDNS:
		return []string{"ca-tbr-7"}
	case MethodHTTP:
		return []string{"ca-tbr-18"}
	case MethodEmail:
		return []string{"ca-tbr-4"}
	case MethodACMEDNS:
		return []string{"dns-01", "ca-tbr-7"}
	case MethodACMEHTTP:
		return []string{"http-01", "ca-tbr-19"}
	}
	return nil
}

// Corroborated reports whether the method is one whose result must be
// corroborated by remote perspectives (BR 3.2.2.9: the DNS and HTTP
// methods; the constructed e-mail method has no MPIC clause).
func (m Method) Corroborated() bool { return m != MethodEmail }

// Deprecated reports whether the BRs discourage the method at t: the
// e-mail methods SHOULD NOT be used from 2026-03-15 (SC-090).
func (m Method) Deprecated(t time.Time) bool { return m == MethodEmail && !t.Before(SC081Step1) }

// Allowed reports whether the method may be used for a certificate
// issued at t, and why not: the e-mail methods MUST NOT be used from
// 2028-03-15 (VA-2, SC-090).
func (m Method) Allowed(t time.Time) error {
	if m == MethodEmail && !t.Before(EmailSunset) {
		return fmt.Errorf("validation by e-mail to a constructed address is forbidden by the TLS Baseline Requirements from %s: use dns or http", EmailSunset.Format(time.DateOnly))
	}
	return nil
}

// RandomValueBytes is the size of a random value: 160 bits, more than
// the BRs' 112 (VA-1).
const RandomValueBytes = 20

// RandomValueLifetime is how long a random value may be used (VA-1).
const RandomValueLifetime = 30 * Day

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewRandomValue draws a random value: RandomValueBytes from the
// system's CSPRNG, base32 in lower case (32 characters, safe in a DNS TXT
// record, a file and a URL).
func NewRandomValue() string {
	b := make([]byte, RandomValueBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToLower(b32.EncodeToString(b))
}

// newFileName is a random name for the HTTP method's file, unrelated to
// the random value: the value must not appear in the request URL (BR
// 3.2.2.4.18).
func newFileName() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return strings.ToLower(b32.EncodeToString(b)) + ".txt"
}

// HashValue is the SHA-256 of a random value, hex: what is kept of a
// secret value and what audit records show (VA-9, SE-1).
func HashValue(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

// NormalizeDomain checks a domain name as applied for and returns it in
// lower case without a trailing dot: LDH labels (A-labels for IDNs) of 1
// to 63 characters, at least two labels, at most 253 characters, an
// optional leading "*." for a wildcard. IP addresses are refused.
func NormalizeDomain(s string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	base, wild := strings.CutPrefix(d, "*.")
	if d == "" {
		return "", fmt.Errorf("a domain name is required")
	}
	if len(d) > 253 {
		return "", fmt.Errorf("%q is longer than 253 characters", s)
	}
	if _, err := netip.ParseAddr(base); err == nil {
		return "", fmt.Errorf("%q is an IP address, not a domain name", s)
	}
	labels := strings.Split(base, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("%q is not a fully qualified domain name", s)
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return "", fmt.Errorf("%q has an empty label or one longer than 63 characters", s)
		}
		for i, c := range l {
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(l)-1
			if !ok {
				return "", fmt.Errorf("%q has a character not allowed in a host name: %q", s, c)
			}
		}
	}
	if wild {
		if _, err := publicsuffix.EffectiveTLDPlusOne(base); err != nil {
			return "", fmt.Errorf("%q is a wildcard of a public suffix", s)
		}
	}
	return d, nil
}

// IsWildcard reports whether a (normalized) name is a wildcard name.
func IsWildcard(d string) bool { return strings.HasPrefix(d, "*.") }

// BaseDomain is the name a validation of d is about: d without its
// wildcard label (the Authorization Domain Name of a wildcard).
func BaseDomain(d string) string { return strings.TrimPrefix(d, "*.") }

// ApproverLocalParts are the constructed addresses' local parts (SV-8,
// BR 3.2.2.4.4).
var ApproverLocalParts = []string{"admin", "administrator", "webmaster", "hostmaster", "postmaster"}

// authorizationDomains are the names an e-mail approver may be at for
// d: d's base and each parent down to the registrable domain, never a
// public suffix (the Authorization Domain Names of BR 1.6.1).
func authorizationDomains(d string) []string {
	base := BaseDomain(d)
	reg, err := publicsuffix.EffectiveTLDPlusOne(base)
	if err != nil {
		return nil
	}
	var out []string
	for name := base; ; {
		out = append(out, name)
		if name == reg {
			return out
		}
		_, parent, ok := strings.Cut(name, ".")
		if !ok {
			return out
		}
		name = parent
	}
}

// ApproverAddresses are the constructed addresses an approver of d may
// be chosen from.
func ApproverAddresses(d string) []string {
	var out []string
	for _, adn := range authorizationDomains(d) {
		for _, l := range ApproverLocalParts {
			out = append(out, l+"@"+adn)
		}
	}
	return out
}

// checkApprover normalizes an approver address and checks it is one of
// d's constructed addresses.
func checkApprover(d, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", fmt.Errorf("an approver address is required for the e-mail method (one of %s)", strings.Join(ApproverAddresses(d), ", "))
	}
	if !slices.Contains(ApproverAddresses(d), e) {
		return "", fmt.Errorf("%q is not a constructed address of %s: use admin@, administrator@, webmaster@, hostmaster@ or postmaster@ at %s or a parent domain up to %s",
			email, d, BaseDomain(d), lastOf(authorizationDomains(d)))
	}
	return e, nil
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// DCV statuses. A stored validation is pending or validated; a pending
// one whose random value is older than its lifetime reads as expired.
const (
	DCVPending   = "pending"
	DCVValidated = "validated"
	DCVExpired   = "expired"
)

// DomainValidation is the validation of one domain of one application.
type DomainValidation struct {
	ID            uuid.UUID
	ApplicationID string
	// CustomerID is whose validation it is: a validation is reused only
	// for the same customer (VA-5).
	CustomerID string
	// AccountURI is the account the CAA accounturi parameter is compared
	// with (RFC 8657; see AccountURI).
	AccountURI    string
	Domain        string
	Method        Method
	ApproverEmail string
	// Value is the random value of the DNS and HTTP methods: published by
	// the customer, not secret (SE-1). Empty for the e-mail method, whose
	// value is kept only as its hash.
	Value     string
	ValueHash string
	// FileName is the HTTP method's file under /.well-known/pki-validation/.
	FileName      string
	Language      string
	CorrelationID string
	Status        string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	ValidatedAt   *time.Time
	// ReusedFrom is the earlier validation this one relies on (VA-5).
	ReusedFrom *uuid.UUID
	// LastFailure is why the last check did not validate (VA-6).
	LastFailure *Failure
	UpdatedAt   time.Time
}

// NewDomainValidation is what starts a validation.
type NewDomainValidation struct {
	ApplicationID string
	CustomerID    string
	AccountURI    string
	Domain        string
	Method        Method
	ApproverEmail string
	Language      string
	CorrelationID string
}

// Start checks a new validation and draws its random value. secret is
// the e-mail method's value, to be handed on sealed and then forgotten;
// empty for the other methods (whose value is in v.Value).
func Start(n NewDomainValidation, now time.Time) (v DomainValidation, secret string, err error) {
	var bad []errs.Field
	d, derr := NormalizeDomain(n.Domain)
	if derr != nil {
		bad = append(bad, errs.Field{Name: "domain", Message: derr.Error()})
	}
	if n.ApplicationID == "" {
		bad = append(bad, errs.Field{Name: "application_id", Message: "is required"})
	}
	if n.CustomerID == "" {
		bad = append(bad, errs.Field{Name: "customer_id", Message: "is required"})
	}
	if len(bad) > 0 {
		return v, "", errs.Invalid(bad...)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return v, "", err
	}
	v = DomainValidation{
		ID: id, ApplicationID: n.ApplicationID, CustomerID: n.CustomerID, AccountURI: n.AccountURI,
		Domain: d, Language: n.Language, CorrelationID: n.CorrelationID, CreatedAt: now,
	}
	secret, err = v.setMethod(n.Method, n.ApproverEmail, now)
	return v, secret, err
}

// ErrAlreadyValidated: a validated domain's method cannot change.
var ErrAlreadyValidated = errs.Conflict("dcv-validated", "the domain is already validated: its method can no longer change")

// ChangeMethod sets a new method (and approver) on a validation not yet
// validated, with a new random value and a new lifetime (SV-8).
func (v *DomainValidation) ChangeMethod(m Method, approver string, now time.Time) (secret string, err error) {
	if v.Status == DCVValidated {
		return "", ErrAlreadyValidated
	}
	return v.setMethod(m, approver, now)
}

func (v *DomainValidation) setMethod(m Method, approver string, now time.Time) (string, error) {
	var bad []errs.Field
	if !slices.Contains(ManualMethods, m) {
		bad = append(bad, errs.Field{Name: "method", Message: fmt.Sprintf("unknown method %q: use dns, http or email", m)})
	} else if err := m.Allowed(now); err != nil {
		bad = append(bad, errs.Field{Name: "method", Message: err.Error()})
	}
	if m == MethodHTTP && IsWildcard(v.Domain) {
		bad = append(bad, errs.Field{Name: "method", Message: fmt.Sprintf("the HTTP method cannot validate the wildcard name %s (BR 3.2.2.4.18): use dns or email", v.Domain)})
	}
	email := ""
	if m == MethodEmail && len(bad) == 0 {
		var err error
		if email, err = checkApprover(v.Domain, approver); err != nil {
			bad = append(bad, errs.Field{Name: "approver_email", Message: err.Error()})
		}
	} else if m != MethodEmail && approver != "" {
		bad = append(bad, errs.Field{Name: "approver_email", Message: "only the e-mail method has an approver"})
	}
	if len(bad) > 0 {
		return "", errs.Invalid(bad...)
	}
	value := NewRandomValue()
	v.Method, v.ApproverEmail, v.ValueHash = m, email, HashValue(value)
	v.Status, v.ValidatedAt, v.ReusedFrom, v.LastFailure = DCVPending, nil, nil, nil
	v.ExpiresAt = now.Add(RandomValueLifetime)
	v.Value, v.FileName = "", ""
	if m == MethodHTTP {
		v.FileName = newFileName()
	}
	if m == MethodEmail {
		return value, nil
	}
	v.Value = value
	return "", nil
}

// State is the validation's status at now: validated, pending, or
// expired (a pending one whose random value is past its lifetime, VA-1).
func (v DomainValidation) State(now time.Time) string {
	if v.Status == DCVValidated {
		return DCVValidated
	}
	if !now.Before(v.ExpiresAt) {
		return DCVExpired
	}
	return DCVPending
}

// Validated marks the validation done at now.
func (v *DomainValidation) Validated(now time.Time) {
	v.Status, v.ValidatedAt, v.LastFailure = DCVValidated, &now, nil
}

// Reuse makes v rely on an earlier validation of the same customer and
// domain (VA-5): it is validated as of when that one was.
func (v *DomainValidation) Reuse(earlier DomainValidation) {
	at := *earlier.ValidatedAt
	v.Method, v.ApproverEmail, v.Value, v.ValueHash, v.FileName = earlier.Method, earlier.ApproverEmail, "", earlier.ValueHash, earlier.FileName
	v.Status, v.ValidatedAt, v.ReusedFrom, v.LastFailure = DCVValidated, &at, &earlier.ID, nil
}

// UsableFor reports whether the validation may be relied on for a
// certificate issued at issuance, and why not: validated, within the
// reuse period of the issuance date (VA-5), by a method still allowed
// at that date (an e-mail validation is unusable from 2028-03-15).
func (v DomainValidation) UsableFor(issuance time.Time) error {
	if v.Status != DCVValidated || v.ValidatedAt == nil {
		return fmt.Errorf("%s is not validated", v.Domain)
	}
	if err := v.Method.Allowed(issuance); err != nil {
		return fmt.Errorf("%s: validated by e-mail on %s, which the BRs no longer accept: %w", v.Domain, v.ValidatedAt.Format(time.DateOnly), err)
	}
	period := DomainReuse(issuance)
	if !Reusable(*v.ValidatedAt, issuance, period) {
		return fmt.Errorf("%s: validated on %s, more than %d days before issuance on %s (VA-5)", v.Domain,
			v.ValidatedAt.Format(time.RFC3339), int(period/Day), issuance.Format(time.RFC3339))
	}
	return nil
}

// TXTNames are where the DNS method's value may be published: at
// _pki-validation.<domain> or at the domain itself (VA-2).
func (v DomainValidation) TXTNames() []string {
	b := BaseDomain(v.Domain)
	return []string{"_pki-validation." + b, b}
}

// FilePath is the HTTP method's URL path.
func (v DomainValidation) FilePath() string { return "/.well-known/pki-validation/" + v.FileName }

// FileURL is the HTTP method's URL; httpPort is DCV_HTTP_PORT (80 in
// production).
func (v DomainValidation) FileURL(httpPort int) string {
	host := v.Domain
	if httpPort != 80 && httpPort != 0 {
		host += ":" + strconv.Itoa(httpPort)
	}
	return "http://" + host + v.FilePath()
}

// CheckRequest is what a perspective checks for the validation's method
// (nil for the e-mail method, which is shown by following the link).
func (v DomainValidation) CheckRequest() *CheckRequest {
	switch v.Method {
	case MethodDNS:
		return &CheckRequest{Kind: CheckDNSTXT, Domain: v.Domain, Names: v.TXTNames(), Expected: v.Value}
	case MethodHTTP:
		return &CheckRequest{Kind: CheckHTTPFile, Domain: v.Domain, Path: v.FilePath(), Expected: v.Value}
	}
	return nil
}

// Instructions tell the customer exactly what to do for one domain
// (GET /v1/applications/{id}/dcv).
type Instructions struct {
	ValidationID uuid.UUID `json:"validation_id"`
	Domain       string    `json:"domain"`
	Method       Method    `json:"method"`
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
	// DNS: a TXT record holding Value at one of RecordNames.
	RecordType  string   `json:"record_type,omitempty"`
	RecordNames []string `json:"record_names,omitempty"`
	Value       string   `json:"value,omitempty"`
	// HTTP: the file at URL holding Value, answered with a 2xx.
	URL string `json:"url,omitempty"`
	// E-mail: the link sent to ApproverEmail; AllowedApprovers are the
	// addresses it may be changed to.
	ApproverEmail    string   `json:"approver_email,omitempty"`
	AllowedApprovers []string `json:"allowed_approvers,omitempty"`
	// Deprecated marks a method the BRs discourage (e-mail from 2026-03-15).
	Deprecated  bool       `json:"deprecated,omitempty"`
	Note        string     `json:"note,omitempty"`
	ValidatedAt *time.Time `json:"validated_at,omitempty"`
	LastFailure *Failure   `json:"last_failure,omitempty"`
}

// Instructions for the validation at now; httpPort is DCV_HTTP_PORT.
func (v DomainValidation) Instructions(now time.Time, httpPort int) Instructions {
	in := Instructions{
		ValidationID: v.ID, Domain: v.Domain, Method: v.Method, Status: v.State(now), ExpiresAt: v.ExpiresAt,
		ValidatedAt: v.ValidatedAt, LastFailure: v.LastFailure,
	}
	switch v.Method {
	case MethodDNS:
		in.RecordType, in.RecordNames, in.Value = "TXT", v.TXTNames(), v.Value
		in.Note = "publish a TXT record holding exactly the value at one of the record names"
	case MethodHTTP:
		in.URL, in.Value = v.FileURL(httpPort), v.Value
		in.Note = "serve the value as the file's content with a 2xx status over http (port 80) or https (443); only 301, 302, 307 and 308 redirects to ports 80 or 443 are followed"
	case MethodEmail:
		in.ApproverEmail, in.AllowedApprovers = v.ApproverEmail, ApproverAddresses(v.Domain)
		in.Note = "open the link e-mailed to the approver address"
		if v.Method.Deprecated(now) {
			in.Deprecated = true
			in.Note += "; e-mail validation is discouraged by the TLS Baseline Requirements and refused for certificates issued from " + EmailSunset.Format(time.DateOnly) + ": prefer dns or http"
		}
	}
	if v.ReusedFrom != nil {
		in.Note = "validated earlier for this customer and reused within the reuse period (VA-5)"
		in.Value, in.URL, in.RecordNames, in.RecordType = "", "", nil, ""
	}
	return in
}

// AccountURI is the CAA accounturi (RFC 8657) of a customer of the
// manual flow: the 'acct' URI of RFC 7565, acct:<customer id>@<the CA's
// first CAA identity>, as the CPS names it (BR §4.2.2.1.2). ACME orders
// use the ACME account URL instead.
func AccountURI(customerID, caaIdentity string) string {
	return "acct:" + customerID + "@" + caaIdentity
}

// ACMEChallenge is what an ACME challenge (RFC 8555 §8.3, §8.4) asks a
// perspective to find: for http-01 the key authorization at
// /.well-known/acme-challenge/<token>; for dns-01 the base64url SHA-256
// digest of the key authorization in a TXT record at
// _acme-challenge.<domain>. The caller (the ACME server) computes
// Expected; the token and key authorization are published by the client,
// not secret.
func ACMEChallenge(d string, m Method, token, expected string) (CheckRequest, error) {
	n, err := NormalizeDomain(d)
	if err != nil {
		return CheckRequest{}, errs.InvalidField("domain", err.Error())
	}
	if expected == "" {
		return CheckRequest{}, errs.InvalidField("expected", "is required")
	}
	switch m {
	case MethodACMEDNS:
		return CheckRequest{Kind: CheckDNSTXT, Domain: n, Names: []string{"_acme-challenge." + BaseDomain(n)}, Expected: expected}, nil
	case MethodACMEHTTP:
		if IsWildcard(n) {
			return CheckRequest{}, errs.InvalidField("method", "http-01 cannot validate a wildcard name (BR 3.2.2.4.19)")
		}
		if token == "" || strings.ContainsAny(token, "/?#.%") {
			return CheckRequest{}, errs.InvalidField("token", "must be a base64url token")
		}
		return CheckRequest{Kind: CheckHTTPFile, Domain: n, Path: "/.well-known/acme-challenge/" + token, Expected: expected}, nil
	}
	return CheckRequest{}, errs.InvalidField("method", "an ACME challenge is dns-01 or http-01")
}
