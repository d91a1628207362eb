// Package api is the notifier's HTTP edge: the delivery log for operators
// (NO-4). It decodes, calls a use case and encodes; errors become RFC 9457
// problems here and only here (httpx.WriteError).
package api

import (
	"log/slog"
	"net/http"
	"net/mail"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/notifier/internal/app"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// Handlers serve the notifier's routes.
type Handlers struct {
	App *app.App
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

// Delivery is one row of the delivery log as operators see it: never the
// sealed code, nor the template inputs.
type Delivery struct {
	ID            int64      `json:"id"`
	MessageID     string     `json:"message_id"`
	Reason        string     `json:"reason"`
	Recipient     string     `json:"recipient"`
	Language      string     `json:"language"`
	SubjectID     string     `json:"subject_id"`
	CausedBy      string     `json:"caused_by"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastError     *string    `json:"last_error"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time  `json:"created_at"`
	SentAt        *time.Time `json:"sent_at"`
	FailedAt      *time.Time `json:"failed_at"`
}

// listDeliveries: GET /ops/v1/deliveries?recipient=&reason=&status=&limit=
func (h *Handlers) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := app.DeliveryFilter{Recipient: q.Get("recipient"), Reason: q.Get("reason"), Status: q.Get("status"), Limit: defaultLimit}
	var bad []errs.Field
	if f.Recipient != "" {
		if len(f.Recipient) > 320 {
			bad = append(bad, errs.Field{Name: "recipient", Message: "at most 320 characters"})
		} else if _, err := mail.ParseAddress(f.Recipient); err != nil {
			bad = append(bad, errs.Field{Name: "recipient", Message: "must be an e-mail address"})
		}
	}
	if f.Reason != "" && !domain.KnownReason(f.Reason) {
		bad = append(bad, errs.Field{Name: "reason", Message: "unknown reason"})
	}
	switch f.Status {
	case "", domain.StatusPending, domain.StatusSent, domain.StatusFailed:
	default:
		bad = append(bad, errs.Field{Name: "status", Message: "must be pending, sent or failed"})
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			bad = append(bad, errs.Field{Name: "limit", Message: "must be an integer from 1 to 1000"})
		}
		f.Limit = n
	}
	if len(bad) > 0 {
		httpx.WriteError(w, r, h.Log, errs.Invalid(bad...))
		return
	}
	ds, err := h.App.Deliveries(r.Context(), f)
	if err != nil {
		httpx.WriteError(w, r, h.Log, err)
		return
	}
	out := make([]Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, Delivery{
			ID: d.ID, MessageID: d.MessageID, Reason: d.Reason, Recipient: d.Recipient, Language: d.Language,
			SubjectID: d.SubjectID, CausedBy: d.CausedBy, Status: d.Status, Attempts: d.Attempts,
			LastError: d.LastError, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt,
			SentAt: d.SentAt, FailedAt: d.FailedAt,
		})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}
