// Package api is intake's HTTP edge: the applicant routes of SPEC §5 and
// the maintenance-window ops routes. It decodes, calls a use case, and
// turns the result or problem into a response.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/intake/internal/applications"
	"github.com/certlife/platform/services/intake/internal/form"
)

// API serves intake's routes.
type API struct {
	Apps *applications.Service
	Ops  *opsauth.Tokens
	Log  *slog.Logger
}

// Routes mounts the routes.
func (a *API) Routes(r chi.Router) {
	r.Post("/v1/applications", a.submit)
	r.Get("/v1/applications/{id}", a.get)
	r.Post("/v1/applications/{id}/cancellation", a.cancel)
	r.Post("/v1/sessions", a.login)
	r.Get("/v1/certificates/{id}/prefill", a.prefill)
	r.Post("/v1/certificates/{id}/renewals", a.renew)
	r.Post("/v1/certificates/{id}/reissues", a.reissue)
	r.Group(func(r chi.Router) {
		r.Use(a.Ops.Require(opsauth.Admin))
		r.Get("/ops/v1/maintenance-windows", a.listWindows)
		r.Post("/ops/v1/maintenance-windows", a.addWindow)
		r.Delete("/ops/v1/maintenance-windows/{id}", a.deleteWindow)
	})
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *httpx.Problem
	if errors.As(err, &p) && p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="certlife", Basic realm="certlife"`)
	}
	httpx.WriteError(w, r, a.Log, err)
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	var body form.NewApplication
	if p := httpx.DecodeJSON(w, r, &body, httpx.MaxBody); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	v, errs := body.Validate()
	if p := errs.Problem(); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	acc, err := a.Apps.Submit(r.Context(), v)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/applications/"+acc.ID.String())
	httpx.WriteJSON(w, http.StatusAccepted, acc)
}

func pathID(r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	return id, err == nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	who, err := a.Apps.Authenticate(r.Context(), r, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.Apps.Get(r.Context(), id, who)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	who, err := a.Apps.Authenticate(r.Context(), r, id)
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
	if err := a.Apps.Cancel(r.Context(), id, who); err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.Apps.Get(r.Context(), id, who)
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

func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var body loginBody
	if p := httpx.DecodeJSON(w, r, &body, 4096); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var errs []httpx.FieldError
	for _, f := range []struct {
		name string
		v    *string
	}{{"email", body.Email}, {"password", body.Password}, {"certificate_code", body.CertificateCode}} {
		if f.v == nil || *f.v == "" {
			errs = append(errs, httpx.FieldError{Field: f.name, Message: "is required"})
		} else if len(*f.v) > 256 {
			errs = append(errs, httpx.FieldError{Field: f.name, Message: "is too long"})
		}
	}
	if len(errs) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(errs...))
		return
	}
	s, err := a.Apps.Login(r.Context(), *body.Email, *body.Password, *body.CertificateCode, applications.ClientAddr(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, s)
}

type windowBody struct {
	StartsAt *string `json:"starts_at"`
	EndsAt   *string `json:"ends_at"`
}

// rfc3339 parses a required time field, adding a field error when bad.
func rfc3339(errs *[]httpx.FieldError, field string, v *string) time.Time {
	if v == nil {
		*errs = append(*errs, httpx.FieldError{Field: field, Message: "is required (RFC 3339)"})
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		*errs = append(*errs, httpx.FieldError{Field: field, Message: "must be an RFC 3339 date-time"})
	}
	return t
}

func (a *API) addWindow(w http.ResponseWriter, r *http.Request) {
	var body windowBody
	if p := httpx.DecodeJSON(w, r, &body, 4096); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	var errs []httpx.FieldError
	starts := rfc3339(&errs, "starts_at", body.StartsAt)
	ends := rfc3339(&errs, "ends_at", body.EndsAt)
	if len(errs) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(errs...))
		return
	}
	win, err := a.Apps.AddWindow(r.Context(), starts, ends, opsauth.Actor(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, win)
}

func (a *API) listWindows(w http.ResponseWriter, r *http.Request) {
	list, err := a.Apps.Windows(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"windows": list})
}

func (a *API) deleteWindow(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	if err := a.Apps.DeleteWindow(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// session authenticates the certificate routes: a session only, since
// they need the certificate code (PC-7).
func (a *API) session(w http.ResponseWriter, r *http.Request) (applications.Principal, uuid.UUID, bool) {
	id, ok := pathID(r)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return applications.Principal{}, id, false
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		a.fail(w, r, httpx.Unauthorized("a session token is required (POST /v1/sessions)"))
		return applications.Principal{}, id, false
	}
	who, err := a.Apps.Authenticate(r.Context(), r, id)
	if err != nil {
		a.fail(w, r, err)
		return who, id, false
	}
	return who, id, true
}

func (a *API) prefill(w http.ResponseWriter, r *http.Request) {
	who, id, ok := a.session(w, r)
	if !ok {
		return
	}
	p, err := a.Apps.Prefill(r.Context(), id, who)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (a *API) renew(w http.ResponseWriter, r *http.Request) { followUp(a, w, r, a.Apps.Renew) }

func (a *API) reissue(w http.ResponseWriter, r *http.Request) { followUp(a, w, r, a.Apps.Reissue) }

// followUp serves a renewal or reissue: session first, then the body of
// type B, then the use case.
func followUp[B any](a *API, w http.ResponseWriter, r *http.Request,
	run func(context.Context, uuid.UUID, applications.Principal, B) (applications.Accepted, error)) {
	who, id, ok := a.session(w, r)
	if !ok {
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

func (a *API) accepted(w http.ResponseWriter, r *http.Request, acc applications.Accepted, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/applications/"+acc.ID.String())
	httpx.WriteJSON(w, http.StatusAccepted, acc)
}
