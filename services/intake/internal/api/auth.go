package api

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/intake/internal/domain"
)

// clientKey is the throttling key of the request's client (SE-3).
func (a *API) clientKey(r *http.Request) string {
	return domain.AddressKey(a.Proxies.ClientAddr(r))
}

func bearer(r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(tok), ok
}

// applicationAuth authenticates an application endpoint: a session (with
// or without the code) or Basic e-mail:password, which takes the same
// counted, bounded path as a login.
func (a *API) applicationAuth(r *http.Request) (uuid.UUID, domain.Principal, error) {
	id, err := pathID(r)
	if err != nil {
		return id, domain.Principal{}, err
	}
	if tok, ok := bearer(r); ok {
		who, err := a.App.SessionPrincipal(r.Context(), tok)
		return id, who, err
	}
	email, password, ok := r.BasicAuth()
	if !ok {
		return id, domain.Principal{}, errs.Unauthorized(
			"applicant authentication is required (Bearer session token or Basic e-mail and application password)")
	}
	if !credentialText(email) || !credentialText(password) {
		return id, domain.Principal{}, errs.Malformed("the Basic credentials must be UTF-8 text without control characters")
	}
	who, err := a.App.BasicAuth(r.Context(), id, email, password, a.clientKey(r))
	return id, who, err
}

// certificateAuth authenticates a certificate step: only a session
// opened with the certificate code (PC-7).
func (a *API) certificateAuth(r *http.Request) (uuid.UUID, domain.Principal, error) {
	id, err := pathID(r)
	if err != nil {
		return id, domain.Principal{}, err
	}
	tok, ok := bearer(r)
	if !ok {
		return id, domain.Principal{}, errs.Unauthorized("a session token is required (POST /v1/sessions)")
	}
	who, err := a.App.SessionPrincipal(r.Context(), tok)
	if err == nil {
		err = who.RequireCode()
	}
	return id, who, err
}

func credentialText(s string) bool {
	return len(s) <= 256 && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}
