package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/goodkey"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/services/intake/internal/acme"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// ConsumerACME is the durable consumer of the ACME server's results.
const ConsumerACME = "intake-acme"

// Audit actions of the ACME server (OP-4).
const (
	AuditEABKeyIssued     = "acme.eab_key.issued"
	AuditAccountCreated   = "acme.account.created"
	AuditAccountChanged   = "acme.account.changed"
	AuditOrderFinalized   = "acme.order.finalized"
	AuditReplaceEarly     = "acme.certificate.replace_early"
	AuditRevokeRequested  = "acme.certificate.revocation_requested"
	defaultACMETermMonths = 12
)

// ACME is the ACME server's use cases (SPEC §4.10, AC-1 … AC-4).
type ACME struct {
	Pool        *pgxpool.Pool
	Clock       clock.Clock
	Log         *slog.Logger
	EABRequired bool
	// SealKey is the AES-256-GCM key EAB MAC keys are stored under.
	SealKey   []byte
	KeyPolicy goodkey.Policy
	// Metrics counts orders, challenges and nonces (OP-3); nil: none.
	Metrics *ACMEMetrics
}

// ACMESealKey derives the EAB sealing key from the code HMAC key (both
// secrets of intake; no second key file to manage).
func ACMESealKey(codeKey []byte) []byte {
	m := hmac.New(sha256.New, codeKey)
	m.Write([]byte("certlife intake acme eab seal v1"))
	return m.Sum(nil)
}

func (s *ACME) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.Pool, fn)
}

func (s *ACME) emit(ctx context.Context, tx pgx.Tx, p events.Payload, correlation string) error {
	env, err := events.New(p, s.Clock.Now(), correlation)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewNonce stores and returns a fresh nonce.
func (s *ACME) NewNonce(ctx context.Context) (string, error) {
	n := randomToken(16)
	if err := store.ACMEInsertNonce(ctx, s.Pool, n, s.Clock.Now().Add(acme.NonceLifetime)); err != nil {
		return "", err
	}
	s.Metrics.nonceIssued()
	return n, nil
}

// UseNonce consumes a nonce; a missing, used or expired one is badNonce.
func (s *ACME) UseNonce(ctx context.Context, nonce string) error {
	if nonce == "" {
		s.Metrics.badNonce()
		return acme.Prob(acme.ErrBadNonce, 400, "the protected header has no nonce")
	}
	ok, err := store.ACMEUseNonce(ctx, s.Pool, nonce, s.Clock.Now())
	if err != nil {
		return err
	}
	if !ok {
		s.Metrics.badNonce()
		return acme.Prob(acme.ErrBadNonce, 400, "the nonce is unknown, used or expired")
	}
	return nil
}

// eabAAD binds a sealed EAB key to its purpose.
var eabAAD = []byte("acme-eab")

func (s *ACME) seal(key []byte) ([]byte, error) { return seal.SealAEAD(s.SealKey, key, eabAAD) }

func (s *ACME) open(sealed []byte) ([]byte, error) { return seal.OpenAEAD(s.SealKey, sealed, eabAAD) }

// EABKeyIssued is the answer of CreateEABKey: the MAC key, shown once.
type EABKeyIssued struct {
	KID        string `json:"kid"`
	HMACKey    string `json:"hmac_key"` // base64url, as ACME clients take it
	CustomerID string `json:"customer"`
}

// CreateEABKey issues an EAB key for a customer (AC-2): the MAC key is
// returned once and stored only sealed; the issuance is audited.
func (s *ACME) CreateEABKey(ctx context.Context, customer string, profile acme.Profile, actor string) (EABKeyIssued, error) {
	var bad []errs.Field
	var cust *domain.Customer
	if id, err := uuid.Parse(strings.TrimSpace(customer)); err != nil {
		bad = append(bad, errs.Field{Name: "customer", Message: "must be a customer ID"})
	} else if c, err := store.GetCustomer(ctx, s.Pool, id); errors.Is(err, store.ErrNotFound) {
		bad = append(bad, errs.Field{Name: "customer", Message: "no such customer"})
	} else if err != nil {
		return EABKeyIssued{}, err
	} else {
		cust, customer = &c, c.ID.String()
		if profile.Contact.Email == "" {
			profile.Contact.Email = c.Email
		}
		if profile.Contact.Name == "" {
			profile.Contact.Name = c.Name
		}
	}
	o := profile.Organization
	if o.DUNS == "" || o.NameEn == "" || o.Address.City == "" || o.Address.State == "" || len(o.Address.Country) != 2 {
		bad = append(bad, errs.Field{Name: "organization", Message: "the verified organization (duns, name_en, address city, state, 2-letter country) is required for OV certificates"})
	}
	if cust != nil && !strings.Contains(profile.Contact.Email, "@") {
		bad = append(bad, errs.Field{Name: "contact.email", Message: "must be an e-mail address"})
	}
	if profile.TermMonths < 0 || profile.TermMonths > 120 {
		bad = append(bad, errs.Field{Name: "term_months", Message: "must be between 1 and 120"})
	}
	if len(bad) > 0 {
		return EABKeyIssued{}, errs.Invalid(bad...)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealed, err := s.seal(key)
	if err != nil {
		return EABKeyIssued{}, err
	}
	now := s.Clock.Now()
	k := acme.EABKey{KID: "eab_" + randomToken(12), CustomerID: customer, SealedKey: sealed, Profile: profile,
		CreatedBy: actor, CreatedAt: now}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.ACMEInsertEABKey(ctx, tx, k); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, actor, AuditEABKeyIssued, customer, map[string]any{"kid": k.KID, "customer": customer})
	})
	if err != nil {
		return EABKeyIssued{}, err
	}
	return EABKeyIssued{KID: k.KID, HMACKey: base64.RawURLEncoding.EncodeToString(key), CustomerID: customer}, nil
}

// Account finds an account by ID; accountDoesNotExist if none.
func (s *ACME) Account(ctx context.Context, id uuid.UUID) (acme.Account, error) {
	a, err := store.ACMEAccount(ctx, s.Pool, id, false)
	if errors.Is(err, store.ErrNotFound) {
		return a, acme.Prob(acme.ErrAccountDoesNotExist, 400, "no such account")
	}
	return a, err
}

// AccountByKey finds the account of a key; accountDoesNotExist if none.
func (s *ACME) AccountByKey(ctx context.Context, key *jose.JSONWebKey) (acme.Account, error) {
	t, err := acme.Thumbprint(key)
	if err != nil {
		return acme.Account{}, acme.Malformed("jwk: %v", err)
	}
	a, err := store.ACMEAccountByThumbprint(ctx, s.Pool, t)
	if errors.Is(err, store.ErrNotFound) {
		return a, acme.Prob(acme.ErrAccountDoesNotExist, 400, "no account has this key")
	}
	return a, err
}

// AccountKey is an account's key.
func AccountKey(a acme.Account) (*jose.JSONWebKey, error) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(a.JWK); err != nil {
		return nil, err
	}
	return &k, nil
}

// ACMENewAccountRequest is newAccount's payload (RFC 8555 §7.3).
type ACMENewAccountRequest struct {
	Contact              []string        `json:"contact"`
	TermsOfServiceAgreed bool            `json:"termsOfServiceAgreed"`
	OnlyReturnExisting   bool            `json:"onlyReturnExisting"`
	EAB                  json.RawMessage `json:"externalAccountBinding"`
}

func checkContact(contact []string) error {
	if len(contact) > 4 {
		return acme.Prob("urn:ietf:params:acme:error:invalidContact", 400, "at most 4 contacts")
	}
	for _, c := range contact {
		addr, ok := strings.CutPrefix(c, "mailto:")
		if !ok {
			return acme.Prob("urn:ietf:params:acme:error:unsupportedContact", 400, "only mailto: contacts are accepted")
		}
		if at := strings.LastIndex(addr, "@"); at < 1 || at == len(addr)-1 || strings.ContainsAny(addr, " ,<>?") {
			return acme.Prob("urn:ietf:params:acme:error:invalidContact", 400, "%q is not an e-mail address", addr)
		}
	}
	return nil
}

// NewAccount creates (or, for a known key, finds) an account. url is the
// newAccount URL the EAB must name. created says whether it is new.
func (s *ACME) NewAccount(ctx context.Context, key *jose.JSONWebKey, req ACMENewAccountRequest, url string) (acme.Account, bool, error) {
	thumb, err := acme.Thumbprint(key)
	if err != nil {
		return acme.Account{}, false, acme.Malformed("jwk: %v", err)
	}
	if a, err := store.ACMEAccountByThumbprint(ctx, s.Pool, thumb); err == nil {
		return a, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return a, false, err
	}
	if req.OnlyReturnExisting {
		return acme.Account{}, false, acme.Prob(acme.ErrAccountDoesNotExist, 400, "no account has this key")
	}
	if err := checkContact(req.Contact); err != nil {
		return acme.Account{}, false, err
	}
	var eab *acme.EABKey
	if s.EABRequired || len(req.EAB) > 0 {
		kid, err := acme.VerifyEAB(req.EAB, key, url, func(kid string) ([]byte, error) {
			k, err := store.ACMEEABKey(ctx, s.Pool, kid, false)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			if k.AccountID != nil {
				return nil, acme.Unauthorized("this external account binding key was already used")
			}
			eab = &k
			return s.open(k.SealedKey)
		})
		if err != nil {
			return acme.Account{}, false, err
		}
		_ = kid
	}
	jwk, err := key.MarshalJSON()
	if err != nil {
		return acme.Account{}, false, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return acme.Account{}, false, err
	}
	now := s.Clock.Now()
	a := acme.Account{ID: id, Thumbprint: thumb, JWK: jwk, Contact: req.Contact, Status: acme.StatusValid, CreatedAt: now}
	if a.Contact == nil {
		a.Contact = []string{}
	}
	if eab != nil {
		a.CustomerID, a.EABKID = eab.CustomerID, eab.KID
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if eab != nil {
			k, err := store.ACMEEABKey(ctx, tx, eab.KID, true)
			if err != nil {
				return err
			}
			if k.AccountID != nil {
				return acme.Unauthorized("this external account binding key was already used")
			}
			if err := store.ACMEBindEABKey(ctx, tx, k.KID, a.ID); err != nil {
				return err
			}
		}
		if err := store.ACMEInsertAccount(ctx, tx, a); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, "acme:"+a.ID.String(), AuditAccountCreated, a.ID.String(),
			map[string]any{"customer": a.CustomerID, "eab_kid": a.EABKID, "contact": a.Contact})
	})
	if errors.Is(err, store.ErrACMEConflict) {
		a, err := store.ACMEAccountByThumbprint(ctx, s.Pool, thumb)
		return a, false, err
	}
	if err != nil {
		return acme.Account{}, false, err
	}
	return a, true, nil
}

// UpdateAccount changes an account's contact or deactivates it (RFC 8555
// §7.3.2, §7.3.6).
func (s *ACME) UpdateAccount(ctx context.Context, id uuid.UUID, contact *[]string, status string) (acme.Account, error) {
	var out acme.Account
	err := s.tx(ctx, func(tx pgx.Tx) error {
		a, err := store.ACMEAccount(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if contact != nil {
			if err := checkContact(*contact); err != nil {
				return err
			}
			a.Contact = *contact
		}
		switch status {
		case "":
		case acme.StatusDeactivated:
			a.Status = acme.StatusDeactivated
		default:
			return acme.Malformed("status may only be set to deactivated")
		}
		if err := store.ACMEUpdateAccount(ctx, tx, a); err != nil {
			return err
		}
		out = a
		return audit.Record(ctx, tx, s.Clock.Now(), "acme:"+a.ID.String(), AuditAccountChanged, a.ID.String(),
			map[string]any{"contact": a.Contact, "status": a.Status})
	})
	return out, err
}

// KeyChange rolls an account over to newKey (RFC 8555 §7.3.5); oldKey
// must be the account's current key. A key another account holds is a
// conflict naming that account.
func (s *ACME) KeyChange(ctx context.Context, id uuid.UUID, oldKey, newKey *jose.JSONWebKey, accountURL func(uuid.UUID) string) error {
	oldT, err1 := acme.Thumbprint(oldKey)
	newT, err2 := acme.Thumbprint(newKey)
	if err1 != nil || err2 != nil {
		return acme.Malformed("keys do not make thumbprints")
	}
	if p := acme.CheckAccountKey(newKey); p != nil {
		return p
	}
	jwk, err := newKey.MarshalJSON()
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		a, err := store.ACMEAccount(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if a.Thumbprint != oldT {
			return acme.Unauthorized("oldKey is not the account's key")
		}
		if other, err := store.ACMEAccountByThumbprint(ctx, tx, newT); err == nil {
			p := acme.Prob(acme.ErrConflict, 409, "the new key is already an account's key")
			p.Location = accountURL(other.ID)
			return p
		}
		a.Thumbprint, a.JWK = newT, jwk
		if err := store.ACMEUpdateAccount(ctx, tx, a); err != nil {
			if errors.Is(err, store.ErrACMEConflict) {
				return acme.Prob(acme.ErrConflict, 409, "the new key is already an account's key")
			}
			return err
		}
		return audit.Record(ctx, tx, s.Clock.Now(), "acme:"+a.ID.String(), AuditAccountChanged, a.ID.String(),
			map[string]any{"key_change": newT})
	})
}

// profileOf is the EAB profile of an account's customer.
func (s *ACME) profileOf(ctx context.Context, q store.Q, a acme.Account) (*acme.Profile, error) {
	if a.EABKID == "" {
		return nil, nil
	}
	k, err := store.ACMEEABKey(ctx, q, a.EABKID, false)
	if err != nil {
		return nil, err
	}
	return &k.Profile, nil
}

// ACMENewOrderRequest is newOrder's payload (RFC 8555 §7.4, RFC 9773 §5).
type ACMENewOrderRequest struct {
	Identifiers []acme.Ident `json:"identifiers"`
	NotBefore   string       `json:"notBefore"`
	NotAfter    string       `json:"notAfter"`
	Replaces    string       `json:"replaces"`
}

// ACMEOrderView is an order with its authorizations.
type ACMEOrderView struct {
	Order  acme.Order
	Authzs []acme.Authz
	Status string
}

// NewOrder creates an order (AC-1, AC-2, AC-3, AC-4): DNS identifiers
// only (no IP address, no internal name), wildcards only with dns-01;
// valid authorizations of the account are reused; replaces names a
// certificate of the account not yet replaced; the customer's coverage
// must not have ended. OrderPlaced (source acme) is emitted in the same
// transaction, so that the order is one of the customer's orders.
func (s *ACME) NewOrder(ctx context.Context, a acme.Account, req ACMENewOrderRequest) (ACMEOrderView, error) {
	if len(req.Identifiers) == 0 || len(req.Identifiers) > 100 {
		return ACMEOrderView{}, acme.Malformed("an order names 1 to 100 identifiers")
	}
	if req.NotBefore != "" || req.NotAfter != "" {
		return ACMEOrderView{}, acme.Malformed("notBefore and notAfter are not supported: the validity follows the BRs and the coverage")
	}
	var idents []acme.Ident
	var subs []acme.Problem
	seen := map[string]bool{}
	for _, id := range req.Identifiers {
		name, p := acme.CheckIdentifier(id)
		if p != nil {
			subs = append(subs, *p)
			continue
		}
		if !seen[name] {
			seen[name] = true
			idents = append(idents, acme.Ident{Type: "dns", Value: name})
		}
	}
	if len(subs) == 1 {
		return ACMEOrderView{}, &subs[0]
	}
	if len(subs) > 1 {
		p := acme.Prob(acme.ErrRejectedIdentifier, 400, "%d identifiers are refused", len(subs))
		p.Subproblems = subs
		return ACMEOrderView{}, p
	}
	now := s.Clock.Now()
	prof, err := s.profileOf(ctx, s.Pool, a)
	if err != nil {
		return ACMEOrderView{}, err
	}
	if prof == nil && s.EABRequired {
		return ACMEOrderView{}, acme.Unauthorized("the account is not bound to a customer (external account binding)")
	}
	if prof != nil && !prof.CoverageEnd.IsZero() && !now.Before(prof.CoverageEnd) {
		return ACMEOrderView{}, acme.Unauthorized("the customer's paid coverage ended on %s: renew the subscription before ordering (AC-2, IS-4)",
			prof.CoverageEnd.Format("2006-01-02"))
	}
	oid, err := uuid.NewV7()
	if err != nil {
		return ACMEOrderView{}, err
	}
	o := acme.Order{ID: oid, AccountID: a.ID, Status: acme.StatusPending, Identifiers: idents,
		ExpiresAt: now.Add(acme.OrderLifetime), CreatedAt: now, UpdatedAt: now}
	var view ACMEOrderView
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var replaced *acme.Certificate
		if req.Replaces != "" {
			c, err := store.ACMECertificateBy(ctx, tx, "cert_id", req.Replaces, true)
			if errors.Is(err, store.ErrNotFound) || (err == nil && c.AccountID != a.ID) {
				return acme.Malformed("replaces names no certificate of this account")
			}
			if err != nil {
				return err
			}
			if c.ReplacedBy != nil {
				return acme.Prob(acme.ErrConflict, 409, "the certificate was already replaced by another order")
			}
			o.Replaces, replaced = req.Replaces, &c
		}
		var authzs []acme.Authz
		for _, id := range idents {
			domain, wildcard := strings.TrimPrefix(id.Value, "*."), strings.HasPrefix(id.Value, "*.")
			az, err := store.ACMEReusableAuthz(ctx, tx, a.ID, domain, wildcard, now.Add(time.Hour))
			if errors.Is(err, store.ErrNotFound) {
				az, err = s.newAuthz(ctx, tx, a.ID, domain, wildcard, now)
			}
			if err != nil {
				return err
			}
			authzs = append(authzs, az)
			o.AuthzIDs = append(o.AuthzIDs, az.ID)
		}
		o.Status = acme.OrderStatus(o, authzs, now)
		if err := store.ACMEInsertOrder(ctx, tx, o); err != nil {
			return err
		}
		view = ACMEOrderView{Order: o, Authzs: authzs, Status: o.Status}
		return s.orderPlaced(ctx, tx, a, o, prof, replaced)
	})
	if err == nil {
		s.Metrics.order(ctx, "created")
		if o.Status != acme.StatusPending {
			s.Metrics.order(ctx, o.Status) // ready at once: every authorization reused (valid)
		}
	}
	return view, err
}

func (s *ACME) newAuthz(ctx context.Context, tx pgx.Tx, account uuid.UUID, domain string, wildcard bool, now time.Time) (acme.Authz, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return acme.Authz{}, err
	}
	az := acme.Authz{ID: id, AccountID: account, Domain: domain, Wildcard: wildcard, Status: acme.StatusPending,
		ExpiresAt: now.Add(acme.AuthzLifetime), CreatedAt: now}
	if !wildcard {
		az.Challenges = append(az.Challenges, acme.Challenge{Type: events.DCVMethodHTTP01, Token: randomToken(32), Status: acme.StatusPending})
	}
	az.Challenges = append(az.Challenges, acme.Challenge{Type: events.DCVMethodDNS01, Token: randomToken(32), Status: acme.StatusPending})
	return az, store.ACMEInsertAuthz(ctx, tx, az)
}

// orderPlaced makes an ACME order one of the customer's orders (AC-4):
// a row of intake's orders (source acme; paid: the customer's
// subscription covers it, AC-2), shown by GET /v1/orders with its status
// from the facts, and OrderPlaced.
func (s *ACME) orderPlaced(ctx context.Context, tx pgx.Tx, a acme.Account, o acme.Order, prof *acme.Profile, replaced *acme.Certificate) error {
	custID, err := uuid.Parse(a.CustomerID)
	if err != nil {
		return nil // an account without a customer (ACME_EAB_REQUIRED=false) has no order of part 1
	}
	cust, err := store.GetCustomer(ctx, tx, custID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	term := defaultACMETermMonths
	org := ""
	if prof != nil {
		if prof.TermMonths > 0 {
			term = prof.TermMonths
		}
		org = prof.Organization.NameEn
	}
	now := o.CreatedAt
	row := domain.Order{ID: o.ID, CustomerID: cust.ID, Kind: events.OrderKindNew, Source: events.OrderSourceACME, TermMonths: term,
		Decision: "new: ACME order", PaidAt: &now, CreatedAt: now}
	if prof != nil && !prof.CoverageEnd.IsZero() {
		end := prof.CoverageEnd
		row.CoverageEnd = &end
	}
	p := events.OrderPlaced{OrderID: o.ID.String(), CustomerID: cust.ID.String(), Product: events.ProductServer,
		Kind: events.OrderKindNew, Source: events.OrderSourceACME, TermMonths: term,
		Recipient: cust.Recipient(), OrganizationName: org, CommonName: o.Identifiers[0].Value, PlacedAt: now}
	if replaced != nil {
		row.Kind, row.Decision, p.Kind, p.RenewalOf = events.OrderKindRenewal, "renewal: ACME order replaces "+o.Replaces,
			events.OrderKindRenewal, replaced.ID
		if id, err := uuid.Parse(replaced.ID); err == nil {
			row.RenewalOf = &id
		}
	}
	if err := store.InsertOrder(ctx, tx, row); err != nil {
		return err
	}
	return s.emit(ctx, tx, p, o.ID.String())
}

func contactEmail(a acme.Account, prof *acme.Profile) string {
	if prof != nil && prof.Contact.Email != "" {
		return prof.Contact.Email
	}
	for _, c := range a.Contact {
		if e, ok := strings.CutPrefix(c, "mailto:"); ok {
			return e
		}
	}
	return ""
}

// Order reads an order of the account with its authorizations and its
// status from them.
func (s *ACME) Order(ctx context.Context, account, id uuid.UUID) (ACMEOrderView, error) {
	o, err := store.ACMEOrder(ctx, s.Pool, id, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && o.AccountID != account) {
		return ACMEOrderView{}, acme.Prob(acme.ErrMalformed, 404, "no such order")
	}
	if err != nil {
		return ACMEOrderView{}, err
	}
	authzs, err := store.ACMEAuthzs(ctx, s.Pool, o.AuthzIDs)
	if err != nil {
		return ACMEOrderView{}, err
	}
	now := s.Clock.Now()
	for i := range authzs {
		authzs[i].Status = authzStatus(authzs[i], now)
	}
	return ACMEOrderView{Order: o, Authzs: authzs, Status: acme.OrderStatus(o, authzs, now)}, nil
}

// AccountOrders lists an account's orders.
func (s *ACME) AccountOrders(ctx context.Context, account uuid.UUID) ([]uuid.UUID, error) {
	return store.ACMEAccountOrders(ctx, s.Pool, account, 1000)
}

func authzStatus(a acme.Authz, now time.Time) string {
	if (a.Status == acme.StatusPending || a.Status == acme.StatusValid) && now.After(a.ExpiresAt) {
		return acme.StatusExpired
	}
	return a.Status
}

// Authz reads an authorization of the account.
func (s *ACME) Authz(ctx context.Context, account, id uuid.UUID) (acme.Authz, error) {
	a, err := store.ACMEAuthz(ctx, s.Pool, id, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.AccountID != account) {
		return a, acme.Prob(acme.ErrMalformed, 404, "no such authorization")
	}
	a.Status = authzStatus(a, s.Clock.Now())
	return a, err
}

// DeactivateAuthz deactivates an authorization (RFC 8555 §7.5.2).
func (s *ACME) DeactivateAuthz(ctx context.Context, account, id uuid.UUID) (acme.Authz, error) {
	var out acme.Authz
	err := s.tx(ctx, func(tx pgx.Tx) error {
		a, err := store.ACMEAuthz(ctx, tx, id, true)
		if errors.Is(err, store.ErrNotFound) || (err == nil && a.AccountID != account) {
			return acme.Prob(acme.ErrMalformed, 404, "no such authorization")
		}
		if err != nil {
			return err
		}
		if a.Status != acme.StatusPending && a.Status != acme.StatusValid {
			return acme.Malformed("only a pending or valid authorization can be deactivated")
		}
		a.Status = acme.StatusDeactivated
		out = a
		return store.ACMEUpdateAuthz(ctx, tx, a)
	})
	return out, err
}

// RespondChallenge starts a challenge's validation (RFC 8555 §7.5.1):
// the challenge becomes processing and ACMEChallengeReady goes to the
// validation service. A challenge already answered is returned as is.
func (s *ACME) RespondChallenge(ctx context.Context, a acme.Account, authzID uuid.UUID, typ, accountURI string) (acme.Authz, acme.Challenge, error) {
	key, err := AccountKey(a)
	if err != nil {
		return acme.Authz{}, acme.Challenge{}, err
	}
	var az acme.Authz
	var ch acme.Challenge
	err = s.tx(ctx, func(tx pgx.Tx) error {
		az, err = store.ACMEAuthz(ctx, tx, authzID, true)
		if errors.Is(err, store.ErrNotFound) || (err == nil && az.AccountID != a.ID) {
			return acme.Prob(acme.ErrMalformed, 404, "no such challenge")
		}
		if err != nil {
			return err
		}
		i := slices.IndexFunc(az.Challenges, func(c acme.Challenge) bool { return c.Type == typ })
		if i < 0 {
			return acme.Prob(acme.ErrMalformed, 404, "no such challenge")
		}
		az.Status = authzStatus(az, s.Clock.Now())
		if az.Status != acme.StatusPending || az.Challenges[i].Status != acme.StatusPending {
			ch = az.Challenges[i]
			return nil
		}
		for _, c := range az.Challenges {
			if c.Status == acme.StatusProcessing {
				return acme.Malformed("another challenge of this authorization is being validated")
			}
		}
		keyAuth, err := acme.KeyAuthorization(az.Challenges[i].Token, key)
		if err != nil {
			return err
		}
		az.Challenges[i].Status = acme.StatusProcessing
		ch = az.Challenges[i]
		if err := store.ACMEUpdateAuthz(ctx, tx, az); err != nil {
			return err
		}
		domain := az.Domain
		if az.Wildcard {
			domain = "*." + domain
		}
		return s.emit(ctx, tx, events.ACMEChallengeReady{AuthzID: az.ID.String(), Domain: domain, Method: typ,
			Token: ch.Token, KeyAuthorization: keyAuth, AccountURI: accountURI, CustomerID: a.CustomerID}, az.ID.String())
	})
	return az, ch, err
}

// Finalize checks the CSR of a ready order (SV-6) and hands the order to
// validation and issuance: the order becomes processing and
// ACMEOrderFinalized carries the server application, the customer's
// verified organization (AC-2) and the account URI.
func (s *ACME) Finalize(ctx context.Context, a acme.Account, orderID uuid.UUID, csrDER []byte, accountURI string) (ACMEOrderView, error) {
	view, err := s.Order(ctx, a.ID, orderID)
	if err != nil {
		return view, err
	}
	switch view.Status {
	case acme.StatusReady:
	case acme.StatusPending:
		return view, acme.Prob(acme.ErrOrderNotReady, 403, "the order's authorizations are not all valid yet")
	default:
		return view, acme.Prob(acme.ErrOrderNotReady, 403, "the order is %s, not ready", view.Status)
	}
	csr, p := acme.CheckCSR(csrDER, view.Order.Names(), s.KeyPolicy)
	if p != nil {
		return view, p
	}
	prof, err := s.profileOf(ctx, s.Pool, a)
	if err != nil {
		return view, err
	}
	if prof == nil {
		return view, acme.Unauthorized("the account is not bound to a customer with a verified organization (external account binding)")
	}
	now := s.Clock.Now()
	if !prof.CoverageEnd.IsZero() && !now.Before(prof.CoverageEnd) {
		return view, acme.Unauthorized("the customer's paid coverage ended on %s (AC-2, IS-4)", prof.CoverageEnd.Format("2006-01-02"))
	}
	names := view.Order.Names()
	cn := names[0]
	if csr.Subject.CommonName != "" {
		cn = strings.ToLower(csr.Subject.CommonName)
	}
	var domains []string
	for _, n := range names {
		if n != cn {
			domains = append(domains, n)
		}
	}
	method := events.DCVMethodHTTP01
	for _, az := range view.Authzs {
		for _, c := range az.Challenges {
			if c.Status == acme.StatusValid {
				method = c.Type
			}
		}
	}
	term := prof.TermMonths
	if term <= 0 {
		term = defaultACMETermMonths
	}
	coverage := prof.CoverageEnd
	if coverage.IsZero() {
		coverage = now.AddDate(0, term, 0)
	}
	appID, err := uuid.NewV7()
	if err != nil {
		return view, err
	}
	email := contactEmail(a, prof)
	org := prof.Organization
	application := events.Application{ID: appID.String(), ApplicantID: "acme:" + a.ID.String(), Product: events.ProductServer,
		Kind: events.KindNew, Language: "en",
		Applicant:    events.Applicant{NameEn: prof.Contact.Name, Email: email},
		Organization: events.Organization{CompanyCode: org.DUNS, NameEn: org.NameEn},
		Server: &events.ServerApplication{CustomerID: a.CustomerID, OrderID: view.Order.ID.String(), TermMonths: term,
			CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})), CommonName: cn, Domains: domains,
			DCV:              events.DCVChoice{Method: method},
			TechnicalContact: events.Contact{Name: prof.Contact.Name, Email: email},
			Organization: events.ServerOrganization{DUNS: org.DUNS, NameEn: org.NameEn, Address: events.ServerAddress{
				Street: org.Address.Street, City: org.Address.City, State: org.Address.State, PostalCode: org.Address.PostalCode,
				Country: org.Address.Country}},
			CoverageEnd: coverage, ACMEAccountURI: accountURI},
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		o, err := store.ACMEOrder(ctx, tx, orderID, true)
		if err != nil {
			return err
		}
		if o.Status != acme.StatusPending && o.Status != acme.StatusReady {
			return acme.Prob(acme.ErrOrderNotReady, 403, "the order is %s, not ready", o.Status)
		}
		if o.Replaces != "" {
			old, err := store.ACMECertificateBy(ctx, tx, "cert_id", o.Replaces, false)
			if err != nil {
				return err
			}
			application.Kind, application.PreviousCertificateID = events.KindRenewal, old.ID
			application.Server.RenewalOf, application.Server.Decision = old.ID, "renewal: ACME order replaces "+o.Replaces
		}
		o.Status, o.ApplicationID, o.UpdatedAt = acme.StatusProcessing, &appID, now
		if err := store.ACMEUpdateOrder(ctx, tx, o); err != nil {
			return err
		}
		if _, err := store.UpdateOrder(ctx, tx, o.ID, func(row *domain.Order) error {
			row.ApplicationID = &appID
			return nil
		}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		view.Order, view.Status = o, o.Status
		if err := s.emit(ctx, tx, events.ACMEOrderFinalized{Application: application, FinalizedAt: now}, o.ID.String()); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, "acme:"+a.ID.String(), AuditOrderFinalized, o.ID.String(),
			map[string]any{"application_id": appID.String(), "names": names, "customer": a.CustomerID})
	})
	if err == nil {
		s.Metrics.order(ctx, acme.StatusProcessing)
	}
	return view, err
}

// Certificate returns the PEM chain of an order's certificate.
func (s *ACME) Certificate(ctx context.Context, account uuid.UUID, id string) (acme.Certificate, error) {
	c, err := store.ACMECertificateBy(ctx, s.Pool, "id", id, false)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.AccountID != account) {
		return c, acme.Prob(acme.ErrMalformed, 404, "no such certificate")
	}
	return c, err
}

// RenewalInfo returns the ARI window of a certificate (AC-3).
func (s *ACME) RenewalInfo(ctx context.Context, certID string) (acme.Certificate, error) {
	if _, _, p := acme.ParseCertID(certID); p != nil {
		return acme.Certificate{}, p
	}
	c, err := store.ACMECertificateBy(ctx, s.Pool, "cert_id", certID, false)
	if errors.Is(err, store.ErrNotFound) {
		return c, acme.Prob(acme.ErrMalformed, 404, "no certificate has this certID")
	}
	return c, err
}

// ReplaceEarly moves the ARI window of certificates into the past (AC-3,
// OP-5), by serial (hex) or certificate ID; it answers the certificates
// marked.
func (s *ACME) ReplaceEarly(ctx context.Context, keys []string, reason, actor string) ([]string, error) {
	if len(keys) == 0 || len(keys) > 10000 {
		return nil, errs.InvalidField("certificates", "name 1 to 10000 serials or certificate IDs")
	}
	if strings.TrimSpace(reason) == "" {
		return nil, errs.InvalidField("reason", "is required")
	}
	var marked []string
	now := s.Clock.Now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, k := range keys {
			c, err := store.ACMECertificateBy(ctx, tx, "id", k, true)
			if errors.Is(err, store.ErrNotFound) {
				if n, ok := new(big.Int).SetString(strings.ToLower(strings.ReplaceAll(k, ":", "")), 16); ok {
					c, err = store.ACMECertificateBy(ctx, tx, "serial", n.Text(16), true)
				}
			}
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := s.markEarly(ctx, tx, &c, now, reason); err != nil {
				return err
			}
			marked = append(marked, c.ID)
		}
		return audit.Record(ctx, tx, now, actor, AuditReplaceEarly, "acme", map[string]any{"certificates": marked, "reason": reason})
	})
	return marked, err
}

func (s *ACME) markEarly(ctx context.Context, tx pgx.Tx, c *acme.Certificate, now time.Time, reason string) error {
	if c.ReplaceEarly != nil {
		return nil
	}
	c.ReplaceEarly, c.ReplaceReason = &now, reason
	return store.ACMEUpdateCertificate(ctx, tx, *c)
}

// ACMERevokeRequest is revokeCert's payload (RFC 8555 §7.6).
type ACMERevokeRequest struct {
	Certificate string `json:"certificate"`
	Reason      *int   `json:"reason"`
}

// revocationReasons are the RFC 5280 codes a subscriber may give.
var revocationReasons = map[int]string{0: "cessationOfOperation", 1: "keyCompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation"}

// ParseRevocation decodes revokeCert's certificate and reason.
func ParseRevocation(req ACMERevokeRequest) (*x509.Certificate, string, error) {
	der, err := base64.RawURLEncoding.DecodeString(req.Certificate)
	if err != nil {
		return nil, "", acme.Malformed("certificate is not base64url DER")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", acme.Malformed("certificate: %v", err)
	}
	reason := "cessationOfOperation"
	if req.Reason != nil {
		r, ok := revocationReasons[*req.Reason]
		if !ok {
			return nil, "", acme.Prob(acme.ErrBadRevocationReason, 400, "reason %d is not accepted (0, 1, 3, 4, 5)", *req.Reason)
		}
		reason = r
	}
	return cert, reason, nil
}

// Revoke asks the issuer to revoke a certificate this server delivered
// (RFC 8555 §7.6): by the account that ordered it (account set) or by the
// certificate's own key (account nil, checked by the caller). Its ARI
// window moves into the past at once.
func (s *ACME) Revoke(ctx context.Context, cert *x509.Certificate, reason string, account *acme.Account) error {
	now := s.Clock.Now()
	return s.tx(ctx, func(tx pgx.Tx) error {
		c, err := store.ACMECertificateBy(ctx, tx, "serial", cert.SerialNumber.Text(16), true)
		if errors.Is(err, store.ErrNotFound) {
			return acme.Prob(acme.ErrMalformed, 404, "no certificate of this server has this serial")
		}
		if err != nil {
			return err
		}
		if block, _ := pem.Decode([]byte(c.PEMChain)); block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
			return acme.Unauthorized("the certificate is not the one this server delivered")
		}
		if account != nil && c.AccountID != account.ID {
			return acme.Unauthorized("the account did not order this certificate")
		}
		if c.RevokedAt != nil {
			return acme.Prob(acme.ErrAlreadyRevoked, 400, "the certificate is already revoked")
		}
		actor := "acme:certificate-key"
		if account != nil {
			actor = "acme:" + account.ID.String()
		}
		if err := s.markEarly(ctx, tx, &c, now, "revocation requested"); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, events.ACMERevocationRequested{CertificateID: c.ID, Serial: c.Serial, Reason: reason,
			Requester: actor, RequestedAt: now}, c.OrderID.String()); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, actor, AuditRevokeRequested, c.ID, map[string]any{"serial": c.Serial, "reason": reason})
	})
}

// ACMEHandlers are the handlers of ConsumerACME.
func (s *ACME) Handlers() map[string]bus.Handler {
	return map[string]bus.Handler{
		events.TypeACMEChallengeValidated:    s.onValidated,
		events.TypeACMEChallengeFailed:       s.onFailed,
		events.TypeCertificateIssued:         s.onIssued,
		events.TypeCertificateIssuanceFailed: s.onIssuanceFailed,
		events.TypeCertificateRevoked:        s.onRevoked,
		events.TypeReviewRejected:            s.onRejected,
	}
}

func (s *ACME) onValidated(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ACMEChallengeValidated](env)
	if err != nil {
		return err
	}
	return s.challengeResult(ctx, tx, ev.AuthzID, ev.Method, nil, ev.ValidatedAt, ev.ValidUntil)
}

func (s *ACME) onFailed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ACMEChallengeFailed](env)
	if err != nil {
		return err
	}
	p := &acme.Problem{Type: ev.ErrorType, Detail: ev.Detail, Status: 403, Identifier: &acme.Ident{Type: "dns", Value: ev.Domain}}
	return s.challengeResult(ctx, tx, ev.AuthzID, ev.Method, p, ev.FailedAt, time.Time{})
}

// challengeResult records a challenge's outcome on its authorization and
// the orders that hold it.
func (s *ACME) challengeResult(ctx context.Context, tx pgx.Tx, authzID, method string, failure *acme.Problem, at, validUntil time.Time) error {
	id, err := uuid.Parse(authzID)
	if err != nil {
		return bus.Permanent(err)
	}
	az, err := store.ACMEAuthz(ctx, tx, id, true)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	i := slices.IndexFunc(az.Challenges, func(c acme.Challenge) bool { return c.Type == method })
	if i < 0 || az.Challenges[i].Status != acme.StatusProcessing || az.Status != acme.StatusPending {
		return nil // answered before (a redelivery under another event ID)
	}
	now := s.Clock.Now()
	if at.IsZero() {
		at = now
	}
	if failure == nil {
		az.Challenges[i].Status, az.Challenges[i].Validated = acme.StatusValid, &at
		az.Status = acme.StatusValid
		az.ExpiresAt = now.Add(acme.ValidAuthzReuse)
		if !validUntil.IsZero() && validUntil.Before(az.ExpiresAt) {
			az.ExpiresAt = validUntil
		}
	} else {
		az.Challenges[i].Status, az.Challenges[i].Error = acme.StatusInvalid, failure
		az.Status = acme.StatusInvalid
	}
	if err := store.ACMEUpdateAuthz(ctx, tx, az); err != nil {
		return err
	}
	s.Metrics.challenge(ctx, method, az.Challenges[i].Status)
	orders, err := store.ACMEOrdersWithAuthz(ctx, tx, az.ID)
	if err != nil {
		return err
	}
	for _, o := range orders {
		authzs, err := store.ACMEAuthzs(ctx, tx, o.AuthzIDs)
		if err != nil {
			return err
		}
		st := acme.OrderStatus(o, authzs, now)
		if st == o.Status {
			continue
		}
		o.Status, o.UpdatedAt = st, now
		if st == acme.StatusInvalid && failure != nil {
			o.Error = failure
		}
		if err := store.ACMEUpdateOrder(ctx, tx, o); err != nil {
			return err
		}
		s.Metrics.order(ctx, st)
	}
	return nil
}

// onIssued delivers a certificate to its ACME order: the order becomes
// valid, the certificate is kept with its ARI certID, and a certificate
// it replaces is marked replaced.
func (s *ACME) onIssued(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateIssued](env)
	if err != nil {
		return err
	}
	appID, err := uuid.Parse(ev.ApplicationID)
	if err != nil {
		return nil
	}
	o, err := store.ACMEOrderByApplication(ctx, tx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not an ACME order
	}
	if err != nil {
		return err
	}
	block, _ := pem.Decode([]byte(ev.PEMChain))
	if block == nil {
		return bus.Permanent(errors.New("CertificateIssued for an ACME order carries no PEM chain"))
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return bus.Permanent(err)
	}
	certID, err := acme.CertID(leaf)
	if err != nil {
		return bus.Permanent(err)
	}
	inserted, err := store.ACMEInsertCertificate(ctx, tx, acme.Certificate{ID: ev.CertificateID, OrderID: o.ID, AccountID: o.AccountID,
		Serial: leaf.SerialNumber.Text(16), CertID: certID, PEMChain: ev.PEMChain, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter})
	if err != nil || !inserted {
		return err
	}
	o.Status, o.CertificateID, o.UpdatedAt = acme.StatusValid, ev.CertificateID, s.Clock.Now()
	if err := store.ACMEUpdateOrder(ctx, tx, o); err != nil {
		return err
	}
	s.Metrics.order(ctx, acme.StatusValid)
	if err := s.serverCertificate(ctx, tx, o, ev, leaf); err != nil {
		return err
	}
	if o.Replaces != "" {
		old, err := store.ACMECertificateBy(ctx, tx, "cert_id", o.Replaces, true)
		if err == nil && old.ReplacedBy == nil {
			old.ReplacedBy = &o.ID
			return store.ACMEUpdateCertificate(ctx, tx, old)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// onRejected makes an ACME order invalid when validation refused it at
// finalization (CAA rechecked before issuance). The reason starts with
// the RFC 8555 error type ("urn:…: detail").
func (s *ACME) onRejected(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ReviewRejected](env)
	if err != nil {
		return err
	}
	appID, err := uuid.Parse(ev.ApplicationID)
	if err != nil {
		return nil
	}
	o, err := store.ACMEOrderByApplication(ctx, tx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || o.Status != acme.StatusProcessing {
		return err
	}
	typ, detail := acme.ErrUnauthorized, ev.Reason
	if t, d, ok := strings.Cut(ev.Reason, ": "); ok && strings.HasPrefix(t, "urn:ietf:params:acme:error:") {
		typ, detail = t, d
	}
	o.Status, o.UpdatedAt = acme.StatusInvalid, s.Clock.Now()
	o.Error = &acme.Problem{Type: typ, Status: 403, Detail: detail}
	s.Metrics.order(ctx, acme.StatusInvalid)
	return store.ACMEUpdateOrder(ctx, tx, o)
}

// serverCertificate records an ACME order's certificate as the
// customer's (AC-4: visible and renewable through both front doors, SV-5,
// SV-11) and marks the order of part 1 issued.
func (s *ACME) serverCertificate(ctx context.Context, tx pgx.Tx, o acme.Order, ev events.CertificateIssued, leaf *x509.Certificate) error {
	certID, err := uuid.Parse(ev.CertificateID)
	if err != nil {
		return nil
	}
	if _, err := store.UpdateOrder(ctx, tx, o.ID, func(row *domain.Order) error {
		row.CertificateID = &certID
		return nil
	}); errors.Is(err, store.ErrNotFound) {
		return nil // not an order of part 1 (no customer)
	} else if err != nil {
		return err
	}
	a, err := store.ACMEAccount(ctx, tx, o.AccountID, false)
	if err != nil {
		return err
	}
	prof, err := s.profileOf(ctx, tx, a)
	if err != nil || prof == nil {
		return err
	}
	custID, err := uuid.Parse(a.CustomerID)
	if err != nil {
		return nil
	}
	po := prof.Organization
	org := events.ServerOrganization{DUNS: po.DUNS, NameEn: po.NameEn, Address: events.ServerAddress{Street: po.Address.Street,
		City: po.Address.City, State: po.Address.State, PostalCode: po.Address.PostalCode, Country: po.Address.Country}}
	cn := leaf.Subject.CommonName
	if cn == "" && len(leaf.DNSNames) > 0 {
		cn = leaf.DNSNames[0]
	}
	coverage := prof.CoverageEnd
	if coverage.Before(leaf.NotAfter) {
		coverage = leaf.NotAfter
	}
	_, err = store.InsertServerCertificate(ctx, tx, domain.ServerCertificate{
		ID: certID, CustomerID: custID, ApplicationID: o.ApplicationID, OrderID: &o.ID,
		DN: domain.IssuedDN(cn, org), DNSNames: leaf.DNSNames, Serial: ev.Serial, IssuerDN: ev.Issuer,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, CoverageEnd: coverage, Organization: org, CreatedAt: s.Clock.Now(),
	})
	if errors.Is(err, store.ErrExists) {
		return nil
	}
	return err
}

func (s *ACME) onIssuanceFailed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateIssuanceFailed](env)
	if err != nil {
		return err
	}
	if !ev.Final {
		return nil
	}
	appID, err := uuid.Parse(ev.ApplicationID)
	if err != nil {
		return nil
	}
	o, err := store.ACMEOrderByApplication(ctx, tx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || o.Status != acme.StatusProcessing {
		return err
	}
	typ := acme.ErrServerInternal
	if ev.Stage == events.IssuanceStageCSR {
		typ = acme.ErrBadCSR
	}
	o.Status, o.UpdatedAt = acme.StatusInvalid, s.Clock.Now()
	o.Error = &acme.Problem{Type: typ, Status: 500, Detail: fmt.Sprintf("issuance failed (%s): %s", ev.Stage, ev.Detail)}
	s.Metrics.order(ctx, acme.StatusInvalid)
	return store.ACMEUpdateOrder(ctx, tx, o)
}

// onRevoked records a revocation and moves the certificate's ARI window
// into the past (AC-3: a mass revocation, OP-5, asks for early renewal).
func (s *ACME) onRevoked(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateRevoked](env)
	if err != nil {
		return err
	}
	c, err := store.ACMECertificateBy(ctx, tx, "id", ev.CertificateID, true)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	at := ev.RevokedAt
	c.RevokedAt, c.RevokedReason = &at, ev.Reason
	if c.ReplaceEarly == nil {
		now := s.Clock.Now()
		c.ReplaceEarly, c.ReplaceReason = &now, "revoked ("+ev.Reason+")"
	}
	return store.ACMEUpdateCertificate(ctx, tx, c)
}
