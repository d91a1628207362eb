package api

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// Server serves the server order flow's routes: the customer's domain
// validation (GET/PUT /v1/applications/{id}/dcv), the e-mailed link
// (/v1/dcv/confirm) and the operators' phone checks.
type Server struct {
	Flow *app.Server
	DCV  *app.DCV
	// Sessions verifies customer sessions (intake's key); nil: the
	// customer routes answer 503.
	Sessions *session.Verifier
	Clock    clock.Clock
	Log      *slog.Logger
}

// CustomerRoutes mounts the routes of a customer session and the link.
func (a *Server) CustomerRoutes(r chi.Router) {
	r.With(a.customer).Get("/v1/applications/{id}/dcv", a.status)
	r.With(a.customer).Put("/v1/applications/{id}/dcv", a.change)
	r.Get("/v1/dcv/confirm", a.confirmPage)
	r.Post("/v1/dcv/confirm", a.confirm)
}

// PhoneRoutes mounts the phone checks; the caller applies the reviewer
// or admin role.
func (a *Server) PhoneRoutes(r chi.Router) {
	r.Get("/ops/v1/phone-checks", a.phoneChecks)
	r.Post("/ops/v1/phone-checks/{id}", a.recordPhone)
}

type customerKey struct{}

// customer verifies the customer's session bearer token locally with
// intake's public key (pkg/session): a server customer's token
// (Claims.Customer) names the customer.
func (a *Server) customer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Sessions == nil {
			httpx.WriteError(w, r, a.Log, errs.Unavailable("sessions-unavailable", "customer sessions are not configured (SESSION_PUBLIC_KEY)", time.Minute, nil))
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tok = strings.TrimSpace(tok)
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="customer"`)
			httpx.WriteError(w, r, a.Log, errs.Unauthorized("a session bearer token is required"))
			return
		}
		claims, err := a.Sessions.Verify(tok, a.Clock.Now())
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="customer", error="invalid_token"`)
			httpx.WriteError(w, r, a.Log, errs.Unauthorized("the session is unknown or has expired"))
			return
		}
		if !claims.Customer {
			// An applicant's session has no server application: as if none.
			httpx.WriteError(w, r, a.Log, errs.NotFound(""))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), customerKey{}, claims.Subject)))
	})
}

func customerID(ctx context.Context) string { s, _ := ctx.Value(customerKey{}).(string); return s }

// DCVStatus is GET /v1/applications/{id}/dcv: per domain exactly what to
// publish, and the organization and phone checks (SV-8, SV-12).
type DCVStatus struct {
	ApplicationID string                `json:"application_id"`
	Domains       []domain.Instructions `json:"domains"`
	Organization  OrgStatus             `json:"organization"`
	Phone         PhoneStatus           `json:"phone"`
}

// OrgStatus is the organization check as the customer sees it: a
// mismatch names each field with both values (SV-7).
type OrgStatus struct {
	DUNS       string            `json:"duns"`
	Status     string            `json:"status"`
	Detail     string            `json:"detail,omitempty"`
	Mismatches []domain.Mismatch `json:"mismatches,omitempty"`
	VerifiedAt *time.Time        `json:"verified_at,omitempty"`
	ValidUntil *time.Time        `json:"valid_until,omitempty"`
	Reused     bool              `json:"reused,omitempty"`
}

// PhoneStatus is the phone check's status (SV-9).
type PhoneStatus struct {
	Status string `json:"status"`
}

func statusView(st app.Status) DCVStatus {
	c := st.Check
	out := DCVStatus{ApplicationID: st.ApplicationID, Domains: st.Domains,
		Organization: OrgStatus{DUNS: c.DUNS, Status: c.OrgStatus, Detail: c.OrgDetail, Mismatches: c.Mismatches,
			VerifiedAt: c.OrgVerifiedAt, ValidUntil: c.OrgValidUntil, Reused: c.OrgReusedFrom != ""},
		Phone: PhoneStatus{Status: c.PhoneStatus}}
	if out.Domains == nil {
		out.Domains = []domain.Instructions{}
	}
	return out
}

func (a *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := a.Flow.StatusFor(r.Context(), customerID(r.Context()), chi.URLParam(r, "id"))
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, statusView(st))
}

type changeBody struct {
	Method        string   `json:"method"`
	ApproverEmail string   `json:"approver_email"`
	Domains       []string `json:"domains"`
}

// change is PUT /v1/applications/{id}/dcv {method, approver_email?,
// domains?}: a new random value per domain changed (SV-8).
func (a *Server) change(w http.ResponseWriter, r *http.Request) {
	var body changeBody
	if p := httpx.DecodeJSON(w, r, &body, 16<<10); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	m, err := domain.ParseMethod(body.Method)
	if err != nil || (m != domain.MethodDNS && m != domain.MethodHTTP && m != domain.MethodEmail) {
		httpx.WriteError(w, r, a.Log, errs.InvalidField("method", "must be dns, http or email"))
		return
	}
	if len(body.Domains) > 100 {
		httpx.WriteError(w, r, a.Log, errs.InvalidField("domains", "at most 100"))
		return
	}
	st, err := a.Flow.ChangeMethod(r.Context(), customerID(r.Context()), chi.URLParam(r, "id"),
		app.ChangeRequest{Method: m, ApproverEmail: strings.TrimSpace(body.ApproverEmail), Domains: body.Domains})
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, statusView(st))
}

var confirmTemplate = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Confirm domain control</title></head>
<body><h1>Confirm domain control</h1>
<p>You were e-mailed this link as the approver of a domain in a certificate application.
Confirm that the applicant controls the domain only if you are its administrator.</p>
<form method="post" action="/v1/dcv/confirm"><input type="hidden" name="value" value="{{.}}">
<button type="submit">I confirm</button></form></body></html>
`))

// confirmPage is GET /v1/dcv/confirm?value=…: the e-mailed link (VA-2).
// It changes nothing (mail scanners open links); its button posts the
// value.
func (a *Server) confirmPage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("value")
	if v == "" || len(v) > 200 {
		httpx.WriteError(w, r, a.Log, errs.NotFound(""))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
	_ = confirmTemplate.Execute(w, v)
}

// ConfirmResult is the outcome of following the e-mailed link.
type ConfirmResult struct {
	Domain  string          `json:"domain"`
	Status  string          `json:"status"`
	Failure *domain.Failure `json:"failure,omitempty"`
}

// confirm is POST /v1/dcv/confirm (value in the query or a form):
// the approver confirms; CAA is checked (VA-4) before it validates.
func (a *Server) confirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	v := r.URL.Query().Get("value")
	if v == "" {
		if err := r.ParseForm(); err == nil {
			v = r.PostForm.Get("value")
		}
	}
	res, err := a.DCV.ConfirmEmail(r.Context(), v)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, ConfirmResult{Domain: res.Domain, Status: res.Status, Failure: res.Failure})
}

const maxPhoneChecks = 500

// phoneChecks is GET /ops/v1/phone-checks?status=pending|confirmed|failed&limit=.
func (a *Server) phoneChecks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad []errs.Field
	for k := range q {
		if k != "status" && k != "limit" {
			bad = append(bad, errs.Field{Name: k, Message: "unknown parameter"})
		}
	}
	status := q.Get("status")
	if status == "" {
		status = domain.PhonePending
	}
	if status != domain.PhonePending && status != domain.PhoneConfirmed && status != domain.PhoneFailed {
		bad = append(bad, errs.Field{Name: "status", Message: "must be pending, confirmed or failed"})
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPhoneChecks {
			bad = append(bad, errs.Field{Name: "limit", Message: "must be a number from 1 to " + strconv.Itoa(maxPhoneChecks)})
		}
		limit = n
	}
	if len(bad) > 0 {
		httpx.WriteError(w, r, a.Log, errs.Invalid(bad...))
		return
	}
	ps, err := a.Flow.PhoneChecks(r.Context(), status, limit)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"phone_checks": ps})
}

type phoneBody struct {
	Result string `json:"result"`
	Note   string `json:"note"`
}

// recordPhone is POST /ops/v1/phone-checks/{id} {result, note} (SV-9).
func (a *Server) recordPhone(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		httpx.WriteError(w, r, a.Log, errs.NotFound(""))
		return
	}
	var body phoneBody
	if p := httpx.DecodeJSON(w, r, &body, 8<<10); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	p, err := a.Flow.RecordPhoneCheck(r.Context(), id, body.Result, body.Note, opsauth.Actor(r.Context()))
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}
