// Package api is the issuer's HTTP edge: applicant routes under
// /v1/certificates (intake's session token, verified locally),
// the operator's revocations, and the public CA certificates and CRLs.
// Use-case errors (pkg/errs) become RFC 9457 problems here and only here,
// through httpx.WriteError.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/issuance"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// Handler serves the issuer's routes.
type Handler struct {
	Svc      *issuance.Service
	Sessions *session.Verifier
	Clock    clock.Clock
	Ops      *opsauth.Tokens
	Log      *slog.Logger
	// Idempotent applies Idempotency-Key (SE-6) to the creating POSTs.
	Idempotent func(http.Handler) http.Handler
}

// Body bounds (SE-4).
const (
	maxRetrievalBody  = 32 << 10 // room for a CSR (profile.MaxCSR) in JSON
	maxRevocationBody = 4 << 10
)

// Routes mounts every route as its own path (no sub-router mounts), so
// that other services can add routes under /v1/certificates beside these
// in the all-in-one router.
func (h *Handler) Routes(r chi.Router) {
	r.Get("/ca/{file}", h.caCertificate)
	r.Get("/crl/{file}", h.crl)
	auth := r.With(h.applicant)
	auth.Get("/v1/certificates", h.list)
	auth.With(h.Idempotent).Post("/v1/certificates/{id}/retrieval", h.startRetrieval)
	auth.Get("/v1/certificates/{id}/retrieval", h.retrievalProgress)
	auth.Get("/v1/certificates/{id}/retrieval/pkcs12", h.downloadPKCS12)
	// The chain is also a server certificate's download (SV-10), for its
	// owner's session with or without a certificate code: the service
	// decides (issuance.Owns, issuance.Chain).
	r.With(h.session).Get("/v1/certificates/{id}/chain", h.chain)
	r.With(h.Ops.Require(opsauth.Admin), h.Idempotent).Post("/ops/v1/revocations", h.revoke)
	r.With(h.Ops.Require(opsauth.Admin), h.Idempotent).Post("/ops/v1/mass-revocations", h.massRevoke)
	r.With(h.Ops.Require(opsauth.Admin)).Get("/ops/v1/mass-revocations/{id}", h.massRevocation)
	r.With(h.Ops.Require(opsauth.Admin)).Get("/ops/v1/issuance-failures", h.issuanceFailures)
	r.With(h.Ops.Require(opsauth.Admin)).Post("/ops/v1/issuance-failures/{id}/retry", h.retryIssuance)
}

type sessionKey struct{}

func claimsOf(ctx context.Context) session.Claims {
	c, _ := ctx.Value(sessionKey{}).(session.Claims)
	return c
}

// mailbox is the latest mailbox validation the session carries (PC-16).
func mailbox(ctx context.Context) (string, time.Time) {
	email, at, _ := claimsOf(ctx).MailboxValidated()
	return email, at
}

func applicantID(ctx context.Context) string { return claimsOf(ctx).Subject }

// session verifies the session bearer token locally with intake's
// public key (pkg/session): no call to intake per request.
func (h *Handler) session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tok = strings.TrimSpace(tok)
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="applicant"`)
			httpx.WriteError(w, r, h.Log, errs.Unauthorized("a session bearer token is required"))
			return
		}
		claims, err := h.Sessions.Verify(tok, h.Clock.Now())
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="applicant", error="invalid_token"`)
			httpx.WriteError(w, r, h.Log, errs.Unauthorized("the session is unknown or has expired"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, claims)))
	})
}

// applicant is session plus the rule of the client certificate steps:
// each needs a session opened with the certificate code (PC-7, SPEC §5);
// a password-only session is authenticated but not allowed here (403).
func (h *Handler) applicant(next http.Handler) http.Handler {
	return h.session(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !claimsOf(r.Context()).CodeVerified {
			w.Header().Set("WWW-Authenticate", `Bearer realm="applicant", error="insufficient_scope"`)
			httpx.WriteError(w, r, h.Log, issuance.CodeRequired())
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// certificateID reads {id}; a malformed one cannot name a certificate.
func certificateID(r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	return id, err == nil
}

// caCertificate serves a CA certificate: /ca/{name}.der in DER
// (application/pkix-cert, RFC 2585) — what AIA caIssuers points to, as
// RFC 5280 4.2.2.1 wants — and /ca/{name}.pem in PEM for people.
func (h *Handler) caCertificate(w http.ResponseWriter, r *http.Request) {
	file := chi.URLParam(r, "file")
	name, ext, _ := strings.Cut(file, ".")
	c, ok := h.Svc.CA.Certificate(name)
	if !ok || (ext != "pem" && ext != "der") {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=86400")
	if ext == "der" {
		w.Header().Set("Content-Type", "application/pkix-cert")
		_, _ = w.Write(c.Raw)
		return
	}
	pem, _ := h.Svc.CA.PEM(name)
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(pem)
}

func (h *Handler) crl(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(chi.URLParam(r, "file"), ".crl")
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	der, thisUpdate, err := h.Svc.LatestCRL(r.Context(), name)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Last-Modified", thisUpdate.UTC().Format(http.TimeFormat))
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(der)
}

// certificateView is an item of the applicant's certificate list.
type certificateView struct {
	ID            string         `json:"id"`
	ApplicationID string         `json:"application_id"`
	Product       string         `json:"product"`
	Kind          string         `json:"kind"`
	Status        string         `json:"status"`
	Retrieval     string         `json:"retrieval_status,omitempty"`
	Serial        string         `json:"serial,omitempty"`
	NotBefore     *time.Time     `json:"not_before,omitempty"`
	NotAfter      *time.Time     `json:"not_after,omitempty"`
	Subject       subjectSummary `json:"subject"`
}

type subjectSummary struct {
	CommonName   string `json:"common_name"`
	Organization string `json:"organization"`
	Email        string `json:"email"`
}

func view(c *store.Certificate) certificateView {
	status := c.Status
	if c.Revoked() {
		status = "revoked"
	}
	return certificateView{
		ID: c.ID.String(), ApplicationID: c.ApplicationID, Product: c.Product, Kind: c.Kind, Status: status,
		Retrieval: c.RetrievalStatus, Serial: c.Serial, NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		Subject: subjectSummary{CommonName: c.NameEn, Organization: c.OrganizationEn, Email: c.Email},
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()["eligible_for"]
	if len(q) != 1 || (q[0] != store.EligibleRetrieval && q[0] != store.EligibleRenewal && q[0] != store.EligibleReissue) {
		httpx.WriteProblem(w, r, httpx.Invalid(httpx.FieldError{Field: "eligible_for",
			Message: "must be one of retrieval, renewal, reissue"}))
		return
	}
	certs, err := h.Svc.List(r.Context(), applicantID(r.Context()), q[0])
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	items := make([]certificateView, 0, len(certs))
	for _, c := range certs {
		items = append(items, view(c))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"eligible_for": q[0], "certificates": items})
}

type retrievalBody struct {
	AcceptTerms    *bool   `json:"accept_terms"`
	PKCS12Password *string `json:"pkcs12_password"`
	PKCS12Profile  *string `json:"pkcs12_profile"`
	CSR            *string `json:"csr"`
}

// startRetrieval is the applicant's "agree" (PC-13). Every check that
// needs no database runs first, so bad input stores nothing. Without a
// csr the retrieval is a PKCS#12 file (IS-8): in the modern profile
// unless pkcs12_profile is "legacy", protected by pkcs12_password or,
// when that is omitted, by a password generated here and returned in
// this answer only.
func (h *Handler) startRetrieval(w http.ResponseWriter, r *http.Request) {
	id, ok := certificateID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	var body retrievalBody
	if p := httpx.DecodeJSON(w, r, &body, maxRetrievalBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var errs []httpx.FieldError
	if body.AcceptTerms == nil || !*body.AcceptTerms {
		errs = append(errs, httpx.FieldError{Field: "accept_terms", Message: "the terms of use must be accepted (true)"})
	}
	req := issuance.Retrieval{}
	if body.CSR != nil {
		req.Mode = issuance.ModeCSR
		if body.PKCS12Password != nil {
			errs = append(errs, httpx.FieldError{Field: "pkcs12_password", Message: "give either a csr or the PKCS#12 fields, not both"})
		}
		if body.PKCS12Profile != nil {
			errs = append(errs, httpx.FieldError{Field: "pkcs12_profile", Message: "give either a csr or the PKCS#12 fields, not both"})
		}
		pub, err := profile.ParseCSR(*body.CSR)
		if err != nil {
			errs = append(errs, httpx.FieldError{Field: "csr", Message: err.Error()})
		}
		req.PublicKey = pub
	} else {
		req.Mode, req.PKCS12Profile = issuance.ModePKCS12, issuance.PKCS12Modern
		if body.PKCS12Profile != nil {
			switch *body.PKCS12Profile {
			case issuance.PKCS12Modern, issuance.PKCS12Legacy:
				req.PKCS12Profile = *body.PKCS12Profile
			default:
				errs = append(errs, httpx.FieldError{Field: "pkcs12_profile", Message: "must be modern or legacy"})
			}
		}
		if body.PKCS12Password != nil {
			req.Password = *body.PKCS12Password
			if msg := checkPassword(req.Password); msg != "" {
				errs = append(errs, httpx.FieldError{Field: "pkcs12_password", Message: msg})
			}
		}
	}
	if len(errs) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(errs...))
		return
	}
	req.MailboxEmail, req.MailboxValidatedAt = mailbox(r.Context())
	st, err := h.Svc.Retrieve(r.Context(), applicantID(r.Context()), id, req)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	w.Header().Set("Location", "/v1/certificates/"+id.String()+"/retrieval")
	if st.PKCS12Password != "" {
		// The generated password is in this answer only: no cache keeps it.
		w.Header().Set("Cache-Control", "no-store")
	}
	httpx.WriteJSON(w, http.StatusAccepted, st)
}

// checkPassword: the PKCS#12 password the applicant chose protects the
// private key in transit (IS-8): at least 12 characters, printable, and
// within the Basic Multilingual Plane, which is all a PKCS#12 password
// (a BMPString, RFC 7292 B.1) can hold.
func checkPassword(pw string) string {
	if !utf8.ValidString(pw) {
		return "must be valid UTF-8"
	}
	n := utf8.RuneCountInString(pw)
	if n < issuance.MinPasswordLen {
		return fmt.Sprintf("must have at least %d characters", issuance.MinPasswordLen)
	}
	if n > issuance.MaxPasswordLen {
		return fmt.Sprintf("must have at most %d characters", issuance.MaxPasswordLen)
	}
	for _, c := range pw {
		if unicode.IsControl(c) {
			return "must not contain control characters"
		}
		if c > 0xFFFF {
			return "must not contain characters outside the Basic Multilingual Plane (e.g. emoji)"
		}
	}
	return ""
}

func (h *Handler) retrievalProgress(w http.ResponseWriter, r *http.Request) {
	id, ok := certificateID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	st, err := h.Svc.Progress(r.Context(), applicantID(r.Context()), id)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, st)
}

func (h *Handler) downloadPKCS12(w http.ResponseWriter, r *http.Request) {
	id, ok := certificateID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	p12, err := h.Svc.DownloadPKCS12(r.Context(), applicantID(r.Context()), id)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-pkcs12")
	w.Header().Set("Content-Disposition", `attachment; filename="certificate.p12"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(p12)
}

func (h *Handler) chain(w http.ResponseWriter, r *http.Request) {
	id, ok := certificateID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	claims := claimsOf(r.Context())
	pem, err := h.Svc.Chain(r.Context(), claims.Subject, claims.CodeVerified, id)
	if err != nil {
		if errs.Is(err, errs.KindForbidden) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="applicant", error="insufficient_scope"`)
		}
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	// RFC 8555 §9.1: the end-entity certificate first, then its issuer.
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	_, _ = w.Write(pem)
}

// issuanceFailures lists failed server issuance attempts, newest first
// (IS-3, IS-9): ?certificate_id=, ?application_id=, ?final=true,
// ?before=<id> (paging), ?limit= (≤ 500).
func (h *Handler) issuanceFailures(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f store.FailureFilter
	var bad []httpx.FieldError
	for k := range q {
		switch k {
		case "certificate_id", "application_id", "final", "before", "limit":
			if len(q[k]) != 1 {
				bad = append(bad, httpx.FieldError{Field: k, Message: "give it once"})
			}
		default:
			bad = append(bad, httpx.FieldError{Field: k, Message: "unknown parameter"})
		}
	}
	if v := q.Get("certificate_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			bad = append(bad, httpx.FieldError{Field: "certificate_id", Message: "must be a certificate ID (UUID)"})
		} else {
			f.CertificateID = &id
		}
	}
	if v := q.Get("application_id"); len(v) > 200 {
		bad = append(bad, httpx.FieldError{Field: "application_id", Message: "is too long"})
	} else {
		f.ApplicationID = v
	}
	switch q.Get("final") {
	case "", "false":
	case "true":
		f.FinalOnly = true
	default:
		bad = append(bad, httpx.FieldError{Field: "final", Message: "must be true or false"})
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			bad = append(bad, httpx.FieldError{Field: "before", Message: "must be a positive failure id"})
		}
		f.Before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			bad = append(bad, httpx.FieldError{Field: "limit", Message: "must be between 1 and 500"})
		}
		f.Limit = n
	}
	if len(bad) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(bad...))
		return
	}
	list, err := h.Svc.IssuanceFailures(r.Context(), f)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	if list == nil {
		list = []store.Failure{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"failures": list})
}

// retryIssuance is an operator's retry of a server certificate whose
// issuance failed for good: it becomes pending and is attempted at once.
func (h *Handler) retryIssuance(w http.ResponseWriter, r *http.Request) {
	id, ok := certificateID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	if err := h.Svc.RetryIssuance(r.Context(), id, opsauth.Actor(r.Context())); err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"certificate_id": id.String(), "status": store.StatusPending})
}

type revocationBody struct {
	Serial *string `json:"serial"`
	Reason *string `json:"reason"`
}

// revoke is the operator's revocation (IS-6, OP-2).
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request) {
	var body revocationBody
	if p := httpx.DecodeJSON(w, r, &body, maxRevocationBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var errs []httpx.FieldError
	if body.Serial == nil || strings.TrimSpace(*body.Serial) == "" {
		errs = append(errs, httpx.FieldError{Field: "serial", Message: "is required"})
	} else if _, err := ca.ParseSerialHex(strings.TrimSpace(*body.Serial)); err != nil {
		errs = append(errs, httpx.FieldError{Field: "serial", Message: err.Error()})
	}
	if body.Reason == nil {
		errs = append(errs, httpx.FieldError{Field: "reason", Message: "is required"})
	} else if _, ok := profile.ReasonCode(*body.Reason); !ok {
		errs = append(errs, httpx.FieldError{Field: "reason",
			Message: "must be one of " + strings.Join(profile.Reasons(), ", ")})
	}
	if len(errs) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(errs...))
		return
	}
	out, err := h.Svc.Revoke(r.Context(), strings.TrimSpace(*body.Serial), *body.Reason, opsauth.Actor(r.Context()))
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// maxMassRevocationBody (the Idempotency-Key bound too) leaves room for
// 150,000 serials of 20 bytes.
const maxMassRevocationBody = 8 << 20

type massRevocationBody struct {
	Reason          *string   `json:"reason"`
	Serials         *[]string `json:"serials"`
	Organization    *string   `json:"organization"`
	PublicKeySHA256 *string   `json:"public_key_sha256"`
}

// massRevoke starts a mass revocation (OP-5): 202 with its ID; the
// certificates are revoked in batches after the answer.
func (h *Handler) massRevoke(w http.ResponseWriter, r *http.Request) {
	var body massRevocationBody
	if p := httpx.DecodeJSON(w, r, &body, maxMassRevocationBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var errs []httpx.FieldError
	if body.Reason == nil {
		errs = append(errs, httpx.FieldError{Field: "reason", Message: "is required"})
	} else if _, ok := profile.ReasonCode(*body.Reason); !ok {
		errs = append(errs, httpx.FieldError{Field: "reason",
			Message: "must be one of " + strings.Join(profile.Reasons(), ", ")})
	}
	given := 0
	req := issuance.MassRequest{}
	if body.Reason != nil {
		req.Reason = *body.Reason
	}
	if body.Serials != nil {
		given++
		req.Serials = *body.Serials
		if req.Serials == nil {
			req.Serials = []string{}
		}
	}
	if body.Organization != nil {
		given++
		req.Organization = strings.TrimSpace(*body.Organization)
		if req.Organization == "" {
			errs = append(errs, httpx.FieldError{Field: "organization", Message: "must not be empty"})
		}
	}
	if body.PublicKeySHA256 != nil {
		given++
		req.PublicKeySHA256 = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(*body.PublicKeySHA256), ":", ""))
		if req.PublicKeySHA256 == "" {
			errs = append(errs, httpx.FieldError{Field: "public_key_sha256", Message: "must not be empty"})
		}
	}
	if given != 1 {
		errs = append(errs, httpx.FieldError{Field: "serials",
			Message: "give exactly one of serials, organization, public_key_sha256"})
	}
	if len(errs) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(errs...))
		return
	}
	m, err := h.Svc.StartMassRevocation(r.Context(), req, opsauth.Actor(r.Context()))
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	w.Header().Set("Location", "/ops/v1/mass-revocations/"+m.ID.String())
	httpx.WriteJSON(w, http.StatusAccepted, massView(m))
}

func (h *Handler) massRevocation(w http.ResponseWriter, r *http.Request) {
	id, ok := certificateID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	m, err := h.Svc.MassRevocation(r.Context(), id)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, massView(m))
}

// massProgress is a mass revocation as operators see it.
type massProgress struct {
	*store.MassRevocation
	Done bool `json:"done"`
}

func massView(m *store.MassRevocation) massProgress {
	if m.Issuers == nil {
		m.Issuers = []string{}
	}
	return massProgress{MassRevocation: m, Done: m.CompletedAt != nil}
}
