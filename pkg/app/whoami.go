package app

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
)

// Whoami is the answer of GET /ops/v1/whoami.
type Whoami struct {
	Actor string   `json:"actor"` // "ops:<fingerprint>", never the token
	Roles []string `json:"roles"`
}

// WhoamiRoutes mounts GET /ops/v1/whoami: the identity and roles of the
// token shown, for any valid token (SE-5). The ops console signs in with
// it and shows only the pages the roles allow; every route still
// enforces its own role.
func WhoamiRoutes(r chi.Router, ops *opsauth.Tokens) {
	r.With(ops.Require(opsauth.Any)).Get("/ops/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, Whoami{Actor: opsauth.Actor(r.Context()), Roles: opsauth.Roles(r.Context())})
	})
}
