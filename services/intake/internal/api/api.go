// Package api is intake's HTTP edge: the applicant routes of SPEC §5 and
// the maintenance-window ops routes. It decodes, authenticates, calls a
// use case, and writes the answer; it is the only package of intake that
// knows HTTP, and errors become RFC 9457 problems here (httpx.WriteError).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/intake/internal/app"
	"github.com/certlife/platform/services/intake/internal/domain"
)

// API serves intake's routes.
type API struct {
	App     *app.Service
	Ops     *opsauth.Tokens
	Log     *slog.Logger
	Proxies Proxies
	// Idempotent applies Idempotency-Key (SE-6) to the creating POSTs.
	Idempotent func(http.Handler) http.Handler
}

// Routes mounts the routes.
func (a *API) Routes(r chi.Router) {
	idem := r.With(a.Idempotent)
	idem.Post("/v1/applications", a.submit)
	r.Get("/v1/applications/{id}", a.get)
	idem.Post("/v1/applications/{id}/cancellation", a.cancel)
	// Not idempotent by key: the answer holds a session token, which must
	// not be stored (SE-6 excludes sessions).
	r.Post("/v1/sessions", a.login)
	// Not idempotent by key either: its body holds the password, which an
	// idempotency record would keep a fast hash of. The hourly bound
	// (PC-16) keeps repeats harmless.
	r.Post("/v1/certificate-codes", a.requestCode)
	r.Get("/v1/certificates/{id}/prefill", a.prefill)
	idem.Post("/v1/certificates/{id}/renewals", a.renew)
	idem.Post("/v1/certificates/{id}/reissues", a.reissue)
	r.Group(func(r chi.Router) {
		r.Use(a.Ops.Require(opsauth.Admin))
		r.Get("/ops/v1/maintenance-windows", a.listWindows)
		r.With(a.Idempotent).Post("/ops/v1/maintenance-windows", a.addWindow)
		r.Delete("/ops/v1/maintenance-windows/{id}", a.deleteWindow)
	})
	r.Group(func(r chi.Router) {
		r.Use(a.Ops.Require(opsauth.Reviewer))
		r.Get("/ops/v1/applications", a.searchApplications)
		r.Get("/ops/v1/applications/{id}", a.opsApplication)
	})
	a.serverRoutes(r)
}

// fail writes err as a problem; a 401 says how to authenticate.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errs.Is(err, errs.KindUnauthorized) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="certlife", Basic realm="certlife"`)
	}
	httpx.WriteError(w, r, a.Log, err)
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	var body domain.NewApplication
	if p := httpx.DecodeJSON(w, r, &body, httpx.MaxBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	if body.Product != nil && strings.TrimSpace(*body.Product) == events.ProductServer {
		a.submitServer(w, r, body)
		return
	}
	v, bad := body.Validate()
	if err := bad.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	acc, err := a.App.Submit(r.Context(), v)
	a.accepted(w, r, acc, err)
}

func pathID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return id, domain.ErrNotFound()
	}
	return id, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, who, err := a.applicationAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.App.Get(r.Context(), id, who)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	id, who, err := a.applicationAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// An optional empty JSON body is accepted; anything else is refused.
	if r.ContentLength != 0 {
		var body struct{}
		if p := httpx.DecodeJSON(w, r, &body, 1024); p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
	}
	if err := a.App.Cancel(r.Context(), id, who); err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.App.Get(r.Context(), id, who)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

type loginBody struct {
	Email           *string `json:"email"`
	Password        *string `json:"password"`
	CertificateCode *string `json:"certificate_code"`
}

// login opens a session (PC-7): with the certificate code for every step,
// or without it for applications and orders only (SPEC §5).
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var body loginBody
	if p := httpx.DecodeJSON(w, r, &body, 4096); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	missing := required(field{"email", body.Email}, field{"password", body.Password})
	if body.CertificateCode != nil && *body.CertificateCode == "" {
		missing = append(missing, errs.Field{Name: "certificate_code",
			Message: "must not be empty (omit it to open a session without certificate steps)"})
	}
	if len(missing) > 0 {
		a.fail(w, r, errs.Invalid(missing...))
		return
	}
	c := app.Credentials{Email: *body.Email, Password: *body.Password, Addr: a.clientKey(r)}
	if body.CertificateCode != nil {
		c.Code, c.HasCode = *body.CertificateCode, true
	}
	if err := domain.CredentialFields("email", c.Email, "password", c.Password, "certificate_code", c.Code); err != nil {
		a.fail(w, r, err)
		return
	}
	s, err := a.App.Login(r.Context(), c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusCreated, s)
}

type codeRequestBody struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

// codeRequested is the one answer of POST /v1/certificate-codes, whether
// or not the e-mail and password matched (PC-16).
var codeRequested = map[string]string{
	"status": "accepted",
	"detail": "If the e-mail address and application password match an applicant, a new certificate code " +
		"has been sent to that mailbox. It replaces the previous code and validates the mailbox when used " +
		"to sign in within 24 hours.",
}

// requestCode mails a fresh certificate code for mailbox validation
// (PC-16): always 202 with the same body, the same work whether or not
// the account exists, at most 3 an hour per e-mail.
func (a *API) requestCode(w http.ResponseWriter, r *http.Request) {
	var body codeRequestBody
	if p := httpx.DecodeJSON(w, r, &body, 4096); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	missing := required(field{"email", body.Email}, field{"password", body.Password})
	if len(missing) > 0 {
		a.fail(w, r, errs.Invalid(missing...))
		return
	}
	if err := domain.CredentialFields("email", *body.Email, "password", *body.Password); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.App.RequestCode(r.Context(), *body.Email, *body.Password, a.clientKey(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusAccepted, codeRequested)
}

type windowBody struct {
	StartsAt *string `json:"starts_at"`
	EndsAt   *string `json:"ends_at"`
}

// rfc3339 parses a required time field, adding a field error when bad.
func rfc3339(bad *[]errs.Field, field string, v *string) time.Time {
	if v == nil {
		*bad = append(*bad, errs.Field{Name: field, Message: "is required (RFC 3339)"})
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		*bad = append(*bad, errs.Field{Name: field, Message: "must be an RFC 3339 date-time"})
	}
	return t
}

func (a *API) addWindow(w http.ResponseWriter, r *http.Request) {
	var body windowBody
	if p := httpx.DecodeJSON(w, r, &body, 4096); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var bad []errs.Field
	starts := rfc3339(&bad, "starts_at", body.StartsAt)
	ends := rfc3339(&bad, "ends_at", body.EndsAt)
	if len(bad) > 0 {
		a.fail(w, r, errs.Invalid(bad...))
		return
	}
	win, err := a.App.AddWindow(r.Context(), starts, ends, opsauth.Actor(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, win)
}

func (a *API) listWindows(w http.ResponseWriter, r *http.Request) {
	list, err := a.App.Windows(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"windows": list})
}

func (a *API) deleteWindow(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		err = a.App.DeleteWindow(r.Context(), id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) prefill(w http.ResponseWriter, r *http.Request) {
	id, who, err := a.certificateAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := a.App.Prefill(r.Context(), id, who)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) renew(w http.ResponseWriter, r *http.Request) { followUp(a, w, r, a.App.Renew) }

// reissue serves a client reissue (a session opened with the code), or,
// with a customer session, the new CSR of a server certificate's reissue
// inside its coverage (IS-4): body {"csr": PEM}.
func (a *API) reissue(w http.ResponseWriter, r *http.Request) {
	if tok, ok := bearer(r); ok {
		if who, err := a.App.SessionPrincipal(r.Context(), tok); err == nil && who.Customer {
			id, err := pathID(r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			var body struct {
				CSR string `json:"csr"`
			}
			if p := httpx.DecodeJSON(w, r, &body, httpx.MaxBody); p != nil {
				httpx.WriteProblem(w, r, p)
				return
			}
			acc, err := a.App.SubmitCoverageCSR(r.Context(), id, who, body.CSR)
			a.accepted(w, r, acc, err)
			return
		}
	}
	followUp(a, w, r, a.App.Reissue)
}

// followUp serves a renewal or reissue: session first, then the body of
// type B, then the use case.
func followUp[B any](a *API, w http.ResponseWriter, r *http.Request,
	run func(context.Context, uuid.UUID, domain.Principal, B) (app.Accepted, error)) {
	id, who, err := a.certificateAuth(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body B
	if p := httpx.DecodeJSON(w, r, &body, httpx.MaxBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	acc, err := run(r.Context(), id, who, body)
	a.accepted(w, r, acc, err)
}

func (a *API) accepted(w http.ResponseWriter, r *http.Request, acc app.Accepted, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/applications/"+acc.ID.String())
	httpx.WriteJSON(w, http.StatusAccepted, acc)
}

const (
	defaultSearchLimit = 50
	maxSearchLimit     = 200
)

// searchApplications handles GET /ops/v1/applications?email=&status=&id=
// &limit=&before=: operators' search, newest first (reviewer role).
func (a *API) searchApplications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad []errs.Field
	for k := range q {
		switch k {
		case "email", "status", "id", "limit", "before":
		default:
			bad = append(bad, errs.Field{Name: k, Message: "unknown parameter"})
		}
	}
	s := domain.ApplicationSearch{Email: q.Get("email"), Status: q.Get("status"), Limit: defaultSearchLimit}
	if len(s.Email) > 254 {
		bad = append(bad, errs.Field{Name: "email", Message: "must be at most 254 characters"})
	}
	if s.Status != "" && !domain.KnownStatus(s.Status) {
		bad = append(bad, errs.Field{Name: "status", Message: "must be one of provisional, cancelled, accepted, awaiting_payment, validating, in_review, approved, issued, rejected"})
	}
	for _, p := range []struct {
		name, msg string
		dst       **uuid.UUID
	}{{"id", "must be an application ID", &s.ID}, {"before", "must be the next value of the previous page", &s.Before}} {
		if v := q.Get(p.name); v != "" {
			id, err := uuid.Parse(v)
			if err != nil {
				bad = append(bad, errs.Field{Name: p.name, Message: p.msg})
				continue
			}
			*p.dst = &id
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSearchLimit {
			bad = append(bad, errs.Field{Name: "limit", Message: "must be a number from 1 to " + strconv.Itoa(maxSearchLimit)})
		}
		s.Limit = n
	}
	if len(bad) > 0 {
		a.fail(w, r, errs.Invalid(bad...))
		return
	}
	page, err := a.App.SearchApplications(r.Context(), s)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, page)
}

// opsApplication handles GET /ops/v1/applications/{id}: the application
// and its timeline (reviewer role).
func (a *API) opsApplication(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.App.OpsApplication(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// field is a named optional string of a request body.
type field struct {
	name string
	v    *string
}

// required lists, as field errors, the fields that are absent or empty.
func required(fields ...field) []errs.Field {
	var missing []errs.Field
	for _, f := range fields {
		if f.v == nil || *f.v == "" {
			missing = append(missing, errs.Field{Name: f.name, Message: "is required"})
		}
	}
	return missing
}
