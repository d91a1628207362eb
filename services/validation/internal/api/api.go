// Package api is validation's HTTP edge: the operators' review queue
// (OP-1), behind the reviewer role.
package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/validation/internal/queue"
	"github.com/certlife/platform/services/validation/internal/review"
	"github.com/certlife/platform/services/validation/internal/store"
)

// API serves the review routes.
type API struct {
	Pool  *pgxpool.Pool
	Queue *queue.Queue
	Log   *slog.Logger
}

// Routes mounts the routes; the caller applies the reviewer role.
func (a *API) Routes(r chi.Router) {
	r.Get("/ops/v1/reviews", a.list)
	r.Get("/ops/v1/reviews/{id}", a.get)
	r.Post("/ops/v1/reviews/{id}/approve", a.approve)
	r.Post("/ops/v1/reviews/{id}/reject", a.reject)
}

// Review is a review as operators see it, with its evidence.
type Review struct {
	ID            uuid.UUID  `json:"id"`
	ApplicationID string     `json:"application_id"`
	Status        string     `json:"status"`
	Product       string     `json:"product,omitempty"`
	Kind          string     `json:"kind,omitempty"`
	WaitingFor    []string   `json:"waiting_for,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	FinalAt       *time.Time `json:"final_at,omitempty"`
	PendingAt     *time.Time `json:"pending_at,omitempty"`
	Evidence      Evidence   `json:"evidence"`
	Decision      *Decision  `json:"decision,omitempty"`
}

// Evidence is what an operator decides on (OP-1).
type Evidence struct {
	Organization          *events.Organization `json:"organization,omitempty"`
	Applicant             *events.Applicant    `json:"applicant,omitempty"`
	Language              string               `json:"language,omitempty"`
	PreviousCertificateID string               `json:"previous_certificate_id,omitempty"`
	ReissueReason         string               `json:"reissue_reason,omitempty"`
	Payment               Payment              `json:"payment"`
	// PreviousApprovals are earlier approved applications of the same
	// organization (company code) seen by this service, newest first.
	PreviousApprovals []store.Approval `json:"previous_approvals"`
}

// Payment is the payment status of the application.
type Payment struct {
	Paid      bool       `json:"paid"`
	Method    string     `json:"method,omitempty"`
	Reference string     `json:"reference,omitempty"`
	PaidAt    *time.Time `json:"paid_at,omitempty"`
}

// Decision is who decided, when, and why (for a rejection).
type Decision struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

const (
	defaultLimit = 100
	maxLimit     = 500
)

// list handles GET /ops/v1/reviews?status=pending|approved|rejected&limit=n.
func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	if status == "" {
		status = review.StatusPending
	}
	var errs []httpx.FieldError
	if status != review.StatusPending && status != review.StatusApproved && status != review.StatusRejected {
		errs = append(errs, httpx.FieldError{Field: "status", Message: "must be pending, approved or rejected"})
	}
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, httpx.FieldError{Field: "limit", Message: "must be a number from 1 to " + strconv.Itoa(maxLimit)})
		}
		limit = n
	}
	if len(errs) > 0 {
		httpx.WriteProblem(w, r, httpx.Invalid(errs...))
		return
	}
	reviews, err := store.List(r.Context(), a.Pool, status, limit)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	out, err := a.views(r, reviews)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	// Lists are wrapped in an object, like every list of the API.
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"reviews": out})
}

// get handles GET /ops/v1/reviews/{id}.
func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, ok := reviewID(w, r)
	if !ok {
		return
	}
	rv, err := store.Get(r.Context(), a.Pool, id)
	if err != nil {
		httpx.WriteError(w, r, a.Log, problem(err))
		return
	}
	a.writeOne(w, r, rv)
}

// approve handles POST /ops/v1/reviews/{id}/approve.
func (a *API) approve(w http.ResponseWriter, r *http.Request) {
	a.decide(w, r, true, "")
}

type rejectBody struct {
	Reason string `json:"reason"`
}

// reject handles POST /ops/v1/reviews/{id}/reject {"reason": "..."}.
func (a *API) reject(w http.ResponseWriter, r *http.Request) {
	var body rejectBody
	if p := httpx.DecodeJSON(w, r, &body, 8<<10); p != nil {
		httpx.WriteProblem(w, r, p)
		return
	}
	reason := strings.TrimSpace(body.Reason)
	switch {
	case reason == "":
		httpx.WriteProblem(w, r, httpx.Invalid(httpx.FieldError{Field: "reason", Message: "is required"}))
		return
	case utf8.RuneCountInString(reason) > review.MaxReasonLen:
		httpx.WriteProblem(w, r, httpx.Invalid(httpx.FieldError{Field: "reason",
			Message: "must be at most " + strconv.Itoa(review.MaxReasonLen) + " characters"}))
		return
	}
	a.decide(w, r, false, reason)
}

func (a *API) decide(w http.ResponseWriter, r *http.Request, approve bool, reason string) {
	id, ok := reviewID(w, r)
	if !ok {
		return
	}
	var rv review.Review
	err := db.InTx(r.Context(), a.Pool, func(tx pgx.Tx) error {
		var err error
		rv, err = a.Queue.Decide(r.Context(), tx, id, approve, opsauth.Actor(r.Context()), reason)
		return err
	})
	if err != nil {
		httpx.WriteError(w, r, a.Log, problem(err))
		return
	}
	a.writeOne(w, r, rv)
}

func (a *API) writeOne(w http.ResponseWriter, r *http.Request, rv review.Review) {
	out, err := a.views(r, []review.Review{rv})
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out[0])
}

func reviewID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return id, false
	}
	return id, true
}

// problem maps the queue's refusals to problem documents.
func problem(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return httpx.NotFound()
	case errors.Is(err, review.ErrDecided):
		return httpx.Conflict("review-decided", "the review is already decided")
	case errors.Is(err, review.ErrNotPending):
		return httpx.Conflict("review-not-pending", "the review waits for final acceptance or payment")
	}
	return err
}

// views turns reviews into their API form, with the approval history of
// their organizations read in one query.
func (a *API) views(r *http.Request, reviews []review.Review) ([]Review, error) {
	var codes []string
	seen := map[string]bool{}
	for _, rv := range reviews {
		if rv.Application != nil {
			if c := rv.Application.Organization.CompanyCode; c != "" && !seen[c] {
				seen[c] = true
				codes = append(codes, c)
			}
		}
	}
	history, err := store.History(r.Context(), a.Pool, codes)
	if err != nil {
		return nil, err
	}
	out := make([]Review, 0, len(reviews))
	for _, rv := range reviews {
		out = append(out, view(rv, history))
	}
	return out, nil
}

func view(rv review.Review, history map[string][]store.Approval) Review {
	v := Review{
		ID: rv.ID, ApplicationID: rv.ApplicationID, Status: rv.Status, CreatedAt: rv.CreatedAt,
		FinalAt: rv.FinalAt, PendingAt: rv.PendingAt,
		Evidence: Evidence{PreviousApprovals: []store.Approval{}},
	}
	if rv.Status == review.StatusWaiting {
		v.WaitingFor = rv.WaitingFor()
	}
	if a := rv.Application; a != nil {
		v.Product, v.Kind = a.Product, a.Kind
		v.Evidence.Organization, v.Evidence.Applicant = &a.Organization, &a.Applicant
		v.Evidence.Language = a.Language
		v.Evidence.PreviousCertificateID, v.Evidence.ReissueReason = a.PreviousCertificateID, a.ReissueReason
		for _, h := range history[a.Organization.CompanyCode] {
			if h.ReviewID != rv.ID && len(v.Evidence.PreviousApprovals) < 20 {
				v.Evidence.PreviousApprovals = append(v.Evidence.PreviousApprovals, h)
			}
		}
	}
	if p := rv.Payment; p != nil {
		v.Evidence.Payment = Payment{Paid: true, Method: p.Method, Reference: p.Reference, PaidAt: &p.At}
	}
	if rv.DecidedAt != nil {
		v.Decision = &Decision{By: rv.DecidedBy, At: *rv.DecidedAt, Reason: rv.Reason}
	}
	return v
}
