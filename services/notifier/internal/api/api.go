// Package api is the notifier's HTTP edge: the delivery log for operators
// (NO-4).
package api

import (
	"log/slog"
	"net/http"
	"net/mail"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/notifier/internal/notice"
	"github.com/certlife/platform/services/notifier/internal/store"
)

// Handlers serve the notifier's routes.
type Handlers struct {
	DB  store.Queryer
	Ops *opsauth.Tokens
	Log *slog.Logger
}

// Mount adds the routes to r.
func (h *Handlers) Mount(r chi.Router) {
	r.With(h.Ops.Require(opsauth.Admin)).Get("/ops/v1/deliveries", h.listDeliveries)
}

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// listDeliveries: GET /ops/v1/deliveries?recipient=&reason=&status=&limit=
func (h *Handlers) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.Filter{Recipient: q.Get("recipient"), Reason: q.Get("reason"), Status: q.Get("status"), Limit: defaultLimit}
	var errs []httpx.FieldError
	if f.Recipient != "" {
		if len(f.Recipient) > 320 {
			errs = append(errs, httpx.FieldError{Field: "recipient", Message: "at most 320 characters"})
		} else if _, err := mail.ParseAddress(f.Recipient); err != nil {
			errs = append(errs, httpx.FieldError{Field: "recipient", Message: "must be an e-mail address"})
		}
	}
	if f.Reason != "" && !notice.KnownReason(f.Reason) {
		errs = append(errs, httpx.FieldError{Field: "reason", Message: "unknown reason"})
	}
	switch f.Status {
	case "", store.StatusPending, store.StatusSent, store.StatusFailed:
	default:
		errs = append(errs, httpx.FieldError{Field: "status", Message: "must be pending, sent or failed"})
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, httpx.FieldError{Field: "limit", Message: "must be an integer from 1 to 1000"})
		}
		f.Limit = n
	}
	if len(errs) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(errs...))
		return
	}
	out, err := store.ListDeliveries(r.Context(), h.DB, f)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}
