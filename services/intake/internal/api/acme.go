package api

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/intake/internal/acme"
	"github.com/certlife/platform/services/intake/internal/app"
)

// ACME serves the ACME server (SPEC §4.10, RFC 8555, RFC 9773) under
// /acme/ and its ops routes. HTTPS is the operator's proxy's job; the
// URLs it names are PUBLIC_URL's, or the request's own when unset.
type ACME struct {
	App       *app.ACME
	Ops       *opsauth.Tokens
	Log       *slog.Logger
	PublicURL string
}

// Routes mounts the ACME routes. The JWS POSTs take no Idempotency-Key:
// each carries a single-use nonce, so a replay is refused (badNonce).
func (a *ACME) Routes(r chi.Router) {
	r.Get("/acme/directory", a.directory)
	r.Head("/acme/new-nonce", a.newNonce)
	r.Get("/acme/new-nonce", a.newNonce)
	r.Post("/acme/new-account", a.post(a.newAccount))
	r.Post("/acme/acct/{id}", a.post(a.account))
	r.Post("/acme/acct/{id}/orders", a.post(a.accountOrders))
	r.Post("/acme/key-change", a.post(a.keyChange))
	r.Post("/acme/new-order", a.post(a.newOrder))
	r.Post("/acme/order/{id}", a.post(a.order))
	r.Post("/acme/order/{id}/finalize", a.post(a.finalize))
	r.Post("/acme/authz/{id}", a.post(a.authz))
	r.Post("/acme/chall/{id}/{type}", a.post(a.challenge))
	r.Post("/acme/cert/{id}", a.post(a.certificate))
	r.Post("/acme/revoke-cert", a.post(a.revoke))
	r.Get("/acme/renewal-info/{certID}", a.renewalInfo)
	r.Group(func(r chi.Router) {
		r.Use(a.Ops.Require(opsauth.Billing))
		// Not idempotent by key: the answer holds the MAC key, which an
		// idempotency record would keep in clear (SE-6 excludes secrets,
		// as for sessions). A repeat makes a second key; unused keys bind
		// nothing.
		r.Post("/ops/v1/acme/eab-keys", a.createEABKey)
	})
	r.Group(func(r chi.Router) {
		r.Use(a.Ops.Require(opsauth.Admin))
		r.Post("/ops/v1/acme/early-renewals", a.earlyRenewals)
	})
}

// base is the ACME server's URL as the client reaches it: behind an
// HTTPS front (the operator's proxy, X-Forwarded-Proto https) or over TLS,
// the host the client asked for; otherwise PUBLIC_URL, or the request's
// own host. The JWS url and the account URLs (CAA accounturi) follow it.
func (a *ACME) base(r *http.Request) string {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		host := r.Host
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
		return "https://" + host
	}
	if a.PublicURL != "" {
		return strings.TrimRight(a.PublicURL, "/")
	}
	return "http://" + r.Host
}

func (a *ACME) accountURL(base string, id uuid.UUID) string {
	return base + "/acme/acct/" + id.String()
}

// problem writes an ACME problem document with a fresh nonce.
func (a *ACME) problem(w http.ResponseWriter, r *http.Request, err error) {
	p, ok := acme.AsProblem(err)
	if !ok {
		// Not the protocol's: the platform's typed error, an outage (503
		// with Retry-After, SE-8) or an internal error, as an ACME problem.
		hp, known := httpx.FromError(err)
		if !known || hp.Status >= 500 {
			a.Log.Error("acme request failed", "path", r.URL.Path, "err", err)
		}
		typ := acme.ErrMalformed
		if hp.Status >= 500 {
			typ = acme.ErrServerInternal
		}
		if hp.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(hp.RetryAfter.Seconds())))
		}
		p = &acme.Problem{Type: typ, Status: hp.Status, Detail: hp.Detail}
	}
	if p.Title == "" {
		p.Title = strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
	}
	if p.Location != "" {
		w.Header().Set("Location", p.Location)
	}
	a.nonce(w, r)
	a.index(w, r)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func (a *ACME) nonce(w http.ResponseWriter, r *http.Request) {
	n, err := a.App.NewNonce(r.Context())
	if err != nil {
		a.Log.Error("acme nonce", "err", err)
		return
	}
	w.Header().Set("Replay-Nonce", n)
}

func (a *ACME) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Link", "<"+a.base(r)+"/acme/directory>;rel=\"index\"")
}

func (a *ACME) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	a.nonce(w, r)
	a.index(w, r)
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, status, v)
}

func (a *ACME) directory(w http.ResponseWriter, r *http.Request) {
	b := a.base(r) + "/acme/"
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"newNonce": b + "new-nonce", "newAccount": b + "new-account", "newOrder": b + "new-order",
		"revokeCert": b + "revoke-cert", "keyChange": b + "key-change", "renewalInfo": b + "renewal-info",
		"meta": map[string]any{"externalAccountRequired": a.App.EABRequired, "website": a.base(r) + "/"},
	})
}

func (a *ACME) newNonce(w http.ResponseWriter, r *http.Request) {
	a.nonce(w, r)
	a.index(w, r)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodGet {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// jwsRequest is an authenticated ACME POST.
type jwsRequest struct {
	*acme.Request
	Account *acme.Account // nil for a jwk-signed request
	Base    string
}

type handler func(w http.ResponseWriter, r *http.Request, req *jwsRequest) error

// post authenticates a JWS POST (RFC 8555 §6.2–6.5): size, content type,
// the JWS, the nonce (single use), the url, and the key: jwk for
// new-account and revoke-cert, kid (an existing, valid account)
// everywhere else. Nothing is stored for a request that fails here.
func (a *ACME) post(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "application/jose+json" {
			a.problem(w, r, acme.Prob(acme.ErrMalformed, 415, "Content-Type must be application/jose+json"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, acme.MaxJWS+1))
		if err != nil {
			a.problem(w, r, acme.Malformed("body: %v", err))
			return
		}
		if len(body) > acme.MaxJWS {
			a.problem(w, r, acme.Prob(acme.ErrMalformed, 413, "the JWS exceeds %d bytes", acme.MaxJWS))
			return
		}
		req, p := acme.ParseRequest(body)
		if p != nil {
			a.problem(w, r, p)
			return
		}
		if err := a.App.UseNonce(r.Context(), req.Nonce); err != nil {
			a.problem(w, r, err)
			return
		}
		base := a.base(r)
		if req.URL != base+r.URL.Path {
			a.problem(w, r, acme.Unauthorized("the protected header's url %q is not this request's %q", req.URL, base+r.URL.Path))
			return
		}
		jr := &jwsRequest{Request: req, Base: base}
		path := r.URL.Path
		jwkAllowed := path == "/acme/new-account" || path == "/acme/revoke-cert"
		var key *jose.JSONWebKey
		switch {
		case req.JWK != nil && !jwkAllowed:
			a.problem(w, r, acme.Malformed("this request must be signed with the account's kid, not a jwk"))
			return
		case req.JWK != nil:
			key = req.JWK
		case path == "/acme/new-account":
			a.problem(w, r, acme.Malformed("new-account must be signed with a jwk"))
			return
		default:
			id, ok := strings.CutPrefix(req.KID, base+"/acme/acct/")
			uid, err := uuid.Parse(id)
			if !ok || err != nil {
				a.problem(w, r, acme.Prob(acme.ErrAccountDoesNotExist, 400, "kid %q is not an account URL of this server", req.KID))
				return
			}
			acct, err := a.App.Account(r.Context(), uid)
			if err != nil {
				a.problem(w, r, err)
				return
			}
			if acct.Status != acme.StatusValid {
				a.problem(w, r, acme.Unauthorized("the account is %s", acct.Status))
				return
			}
			if key, err = app.AccountKey(acct); err != nil {
				a.problem(w, r, err)
				return
			}
			jr.Account = &acct
		}
		if p := req.Verify(key); p != nil {
			a.problem(w, r, p)
			return
		}
		if err := h(w, r, jr); err != nil {
			a.problem(w, r, err)
		}
	}
}

// decode reads a JSON payload; a POST-as-GET (empty payload) leaves v.
func decode(payload []byte, v any) error {
	if len(payload) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(v); err != nil {
		return acme.Malformed("payload: %v", err)
	}
	return nil
}

func postAsGet(req *jwsRequest) error {
	if len(req.Payload) != 0 {
		return acme.Malformed("this resource takes a POST-as-GET (empty payload)")
	}
	return nil
}

func (a *ACME) accountJSON(base string, acct acme.Account) map[string]any {
	contact := acct.Contact
	if contact == nil {
		contact = []string{}
	}
	m := map[string]any{"status": acct.Status, "contact": contact,
		"orders": a.accountURL(base, acct.ID) + "/orders", "createdAt": acct.CreatedAt.UTC().Format(time.RFC3339)}
	if acct.EABKID != "" {
		m["externalAccountBinding"] = map[string]string{"kid": acct.EABKID}
	}
	if key, err := app.AccountKey(acct); err == nil {
		m["key"] = key
	}
	return m
}

func (a *ACME) newAccount(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	var body app.ACMENewAccountRequest
	if err := decode(req.Payload, &body); err != nil {
		return err
	}
	acct, created, err := a.App.NewAccount(r.Context(), req.JWK, body, req.Base+"/acme/new-account")
	if err != nil {
		return err
	}
	w.Header().Set("Location", a.accountURL(req.Base, acct.ID))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	a.write(w, r, status, a.accountJSON(req.Base, acct))
	return nil
}

func (a *ACME) ownAccount(r *http.Request, req *jwsRequest) error {
	if id, err := uuid.Parse(chi.URLParam(r, "id")); err != nil || id != req.Account.ID {
		return acme.Unauthorized("the kid is not this account")
	}
	return nil
}

func (a *ACME) account(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	if err := a.ownAccount(r, req); err != nil {
		return err
	}
	var body struct {
		Contact *[]string `json:"contact"`
		Status  string    `json:"status"`
		EAB     any       `json:"externalAccountBinding"`
	}
	if err := decode(req.Payload, &body); err != nil {
		return err
	}
	acct := *req.Account
	if body.Contact != nil || body.Status != "" {
		var err error
		if acct, err = a.App.UpdateAccount(r.Context(), acct.ID, body.Contact, body.Status); err != nil {
			return err
		}
	}
	w.Header().Set("Location", a.accountURL(req.Base, acct.ID))
	a.write(w, r, http.StatusOK, a.accountJSON(req.Base, acct))
	return nil
}

func (a *ACME) accountOrders(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	if err := a.ownAccount(r, req); err != nil {
		return err
	}
	ids, err := a.App.AccountOrders(r.Context(), req.Account.ID)
	if err != nil {
		return err
	}
	urls := []string{}
	for _, id := range ids {
		urls = append(urls, req.Base+"/acme/order/"+id.String())
	}
	a.write(w, r, http.StatusOK, map[string]any{"orders": urls})
	return nil
}

// keyChange rolls the account over (RFC 8555 §7.3.5): the payload is a
// JWS signed by the new key, naming the account and its old key.
func (a *ACME) keyChange(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	inner, p := acme.ParseInnerKeyChange(req.Payload, req.URL)
	if p != nil {
		return p
	}
	var body struct {
		Account string          `json:"account"`
		OldKey  json.RawMessage `json:"oldKey"`
	}
	if err := json.Unmarshal(inner.Payload, &body); err != nil {
		return acme.Malformed("key-change payload: %v", err)
	}
	if body.Account != req.KID {
		return acme.Unauthorized("the inner payload's account is not the signer's")
	}
	var old jose.JSONWebKey
	if err := old.UnmarshalJSON(body.OldKey); err != nil {
		return acme.Malformed("oldKey: %v", err)
	}
	if err := a.App.KeyChange(r.Context(), req.Account.ID, &old, inner.JWK, func(id uuid.UUID) string { return a.accountURL(req.Base, id) }); err != nil {
		return err
	}
	acct, err := a.App.Account(r.Context(), req.Account.ID)
	if err != nil {
		return err
	}
	a.write(w, r, http.StatusOK, a.accountJSON(req.Base, acct))
	return nil
}

func (a *ACME) orderJSON(base string, v app.ACMEOrderView) map[string]any {
	authzs := []string{}
	for _, id := range v.Order.AuthzIDs {
		authzs = append(authzs, base+"/acme/authz/"+id.String())
	}
	m := map[string]any{"status": v.Status, "expires": v.Order.ExpiresAt.UTC().Format(time.RFC3339),
		"identifiers": v.Order.Identifiers, "authorizations": authzs,
		"finalize": base + "/acme/order/" + v.Order.ID.String() + "/finalize"}
	if v.Order.Replaces != "" {
		m["replaces"] = v.Order.Replaces
	}
	if v.Order.Error != nil && v.Status == acme.StatusInvalid {
		m["error"] = v.Order.Error
	}
	if v.Status == acme.StatusValid && v.Order.CertificateID != "" {
		m["certificate"] = base + "/acme/cert/" + v.Order.CertificateID
	}
	return m
}

func (a *ACME) writeOrder(w http.ResponseWriter, r *http.Request, base string, status int, v app.ACMEOrderView) {
	w.Header().Set("Location", base+"/acme/order/"+v.Order.ID.String())
	if v.Status == acme.StatusPending || v.Status == acme.StatusProcessing {
		w.Header().Set("Retry-After", strconv.Itoa(acme.RetryAfter))
	}
	a.write(w, r, status, a.orderJSON(base, v))
}

func (a *ACME) newOrder(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	var body app.ACMENewOrderRequest
	if err := decode(req.Payload, &body); err != nil {
		return err
	}
	v, err := a.App.NewOrder(r.Context(), *req.Account, body)
	if err != nil {
		return err
	}
	a.writeOrder(w, r, req.Base, http.StatusCreated, v)
	return nil
}

func pathUUID(r *http.Request, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return id, acme.Prob(acme.ErrMalformed, 404, "no such %s", what)
	}
	return id, nil
}

func (a *ACME) order(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	if err := postAsGet(req); err != nil {
		return err
	}
	id, err := pathUUID(r, "order")
	if err != nil {
		return err
	}
	v, err := a.App.Order(r.Context(), req.Account.ID, id)
	if err != nil {
		return err
	}
	a.writeOrder(w, r, req.Base, http.StatusOK, v)
	return nil
}

func (a *ACME) finalize(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	id, err := pathUUID(r, "order")
	if err != nil {
		return err
	}
	var body struct {
		CSR string `json:"csr"`
	}
	if err := decode(req.Payload, &body); err != nil {
		return err
	}
	der, err := base64.RawURLEncoding.DecodeString(body.CSR)
	if err != nil || len(der) == 0 {
		return acme.Prob(acme.ErrBadCSR, 400, "csr must be base64url DER")
	}
	v, err := a.App.Finalize(r.Context(), *req.Account, id, der, a.accountURL(req.Base, req.Account.ID))
	if err != nil {
		return err
	}
	a.writeOrder(w, r, req.Base, http.StatusOK, v)
	return nil
}

func (a *ACME) challengeJSON(base string, az acme.Authz, c acme.Challenge) map[string]any {
	m := map[string]any{"type": c.Type, "url": base + "/acme/chall/" + az.ID.String() + "/" + c.Type,
		"status": c.Status, "token": c.Token}
	if c.Validated != nil {
		m["validated"] = c.Validated.UTC().Format(time.RFC3339)
	}
	if c.Error != nil {
		m["error"] = c.Error
	}
	return m
}

func (a *ACME) authzJSON(base string, az acme.Authz) map[string]any {
	chs := []any{}
	for _, c := range az.Challenges {
		chs = append(chs, a.challengeJSON(base, az, c))
	}
	m := map[string]any{"identifier": acme.Ident{Type: "dns", Value: az.Domain}, "status": az.Status,
		"expires": az.ExpiresAt.UTC().Format(time.RFC3339), "challenges": chs}
	if az.Wildcard {
		m["wildcard"] = true
	}
	return m
}

func (a *ACME) authz(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	id, err := pathUUID(r, "authorization")
	if err != nil {
		return err
	}
	var body struct {
		Status string `json:"status"`
	}
	if err := decode(req.Payload, &body); err != nil {
		return err
	}
	var az acme.Authz
	switch body.Status {
	case "":
		az, err = a.App.Authz(r.Context(), req.Account.ID, id)
	case acme.StatusDeactivated:
		az, err = a.App.DeactivateAuthz(r.Context(), req.Account.ID, id)
	default:
		return acme.Malformed("status may only be set to deactivated")
	}
	if err != nil {
		return err
	}
	if az.Status == acme.StatusPending {
		w.Header().Set("Retry-After", strconv.Itoa(acme.RetryAfter))
	}
	a.write(w, r, http.StatusOK, a.authzJSON(req.Base, az))
	return nil
}

func (a *ACME) challenge(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	id, err := pathUUID(r, "challenge")
	if err != nil {
		return err
	}
	typ := chi.URLParam(r, "type")
	var az acme.Authz
	var ch acme.Challenge
	if len(req.Payload) == 0 {
		// POST-as-GET: the challenge as it stands.
		if az, err = a.App.Authz(r.Context(), req.Account.ID, id); err != nil {
			return err
		}
		found := false
		for _, c := range az.Challenges {
			if c.Type == typ {
				ch, found = c, true
			}
		}
		if !found {
			return acme.Prob(acme.ErrMalformed, 404, "no such challenge")
		}
	} else {
		var body map[string]any
		if err := decode(req.Payload, &body); err != nil {
			return err
		}
		if az, ch, err = a.App.RespondChallenge(r.Context(), *req.Account, id, typ, a.accountURL(req.Base, req.Account.ID)); err != nil {
			return err
		}
	}
	w.Header().Add("Link", "<"+req.Base+"/acme/authz/"+az.ID.String()+">;rel=\"up\"")
	if ch.Status == acme.StatusPending || ch.Status == acme.StatusProcessing {
		w.Header().Set("Retry-After", strconv.Itoa(acme.RetryAfter))
	}
	a.write(w, r, http.StatusOK, a.challengeJSON(req.Base, az, ch))
	return nil
}

func (a *ACME) certificate(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	if err := postAsGet(req); err != nil {
		return err
	}
	c, err := a.App.Certificate(r.Context(), req.Account.ID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	a.nonce(w, r)
	a.index(w, r)
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, c.PEMChain)
	return nil
}

func (a *ACME) revoke(w http.ResponseWriter, r *http.Request, req *jwsRequest) error {
	var body app.ACMERevokeRequest
	if err := decode(req.Payload, &body); err != nil {
		return err
	}
	cert, reason, err := app.ParseRevocation(body)
	if err != nil {
		return err
	}
	if req.Account == nil {
		// Signed by the certificate's own key (RFC 8555 §7.6).
		if !sameKey(cert, req.JWK) {
			return acme.Unauthorized("the jwk is not the certificate's key")
		}
	}
	if err := a.App.Revoke(r.Context(), cert, reason, req.Account); err != nil {
		return err
	}
	a.nonce(w, r)
	a.index(w, r)
	w.WriteHeader(http.StatusOK)
	return nil
}

func sameKey(cert *x509.Certificate, k *jose.JSONWebKey) bool {
	if k == nil {
		return false
	}
	if e, ok := cert.PublicKey.(interface{ Equal(x any) bool }); ok {
		return e.Equal(k.Key)
	}
	return reflect.DeepEqual(cert.PublicKey, k.Key)
}

// renewalInfo answers RFC 9773 §4.2: the suggested window, and when to
// ask again.
func (a *ACME) renewalInfo(w http.ResponseWriter, r *http.Request) {
	c, err := a.App.RenewalInfo(r.Context(), chi.URLParam(r, "certID"))
	if err != nil {
		a.problem(w, r, err)
		return
	}
	start, end := c.RenewalWindow()
	body := map[string]any{"suggestedWindow": map[string]string{
		"start": start.UTC().Format(time.RFC3339), "end": end.UTC().Format(time.RFC3339)}}
	if c.ReplaceEarly != nil {
		body["explanationURL"] = a.base(r) + "/acme/directory"
	}
	w.Header().Set("Retry-After", strconv.Itoa(int((6 * time.Hour).Seconds())))
	httpx.WriteJSON(w, http.StatusOK, body)
}

type eabKeyBody struct {
	Customer string `json:"customer"`
	acme.Profile
}

// createEABKey issues an EAB key for a customer (AC-2): 201 {kid,
// hmac_key}, the key shown this once.
func (a *ACME) createEABKey(w http.ResponseWriter, r *http.Request) {
	var body eabKeyBody
	if p := httpx.DecodeJSON(w, r, &body, 8192); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	out, err := a.App.CreateEABKey(r.Context(), body.Customer, body.Profile, opsauth.Actor(r.Context()))
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, out)
}

// earlyRenewals moves the ARI window of certificates into the past
// (AC-3): {certificates: [serial or certificate ID], reason}.
func (a *ACME) earlyRenewals(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Certificates []string `json:"certificates"`
		Reason       string   `json:"reason"`
	}
	if p := httpx.DecodeJSON(w, r, &body, httpx.MaxBody*16); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	marked, err := a.App.ReplaceEarly(r.Context(), body.Certificates, body.Reason, opsauth.Actor(r.Context()))
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	if marked == nil {
		marked = []string{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"marked": marked})
}
