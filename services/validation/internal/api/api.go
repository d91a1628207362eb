// Package api is validation's HTTP edge: the operators' review queue
// (OP-1), behind the reviewer role. It decodes, calls a use case and
// encodes; errors become RFC 9457 problems here and only here
// (httpx.WriteError).
package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// API serves the review routes.
type API struct {
	Queue *app.Queue
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
	PreviousApprovals []Approval `json:"previous_approvals"`
	// Server is a server application's evidence (SV-7 … SV-9, VA-9).
	Server *ServerEvidence `json:"server,omitempty"`
}

// ServerEvidence is a server application as an operator reviews it: what
// the certificate will say, the registry's record and the organization
// check, the phone check, and each name's validation (the attempts are
// at GET /ops/v1/validations).
type ServerEvidence struct {
	CommonName       string               `json:"common_name"`
	Domains          []string             `json:"domains,omitempty"`
	OrderID          string               `json:"order_id"`
	TermMonths       int                  `json:"term_months"`
	CoverageEnd      time.Time            `json:"coverage_end"`
	RenewalOf        string               `json:"renewal_of,omitempty"`
	Decision         string               `json:"decision,omitempty"`
	TechnicalContact events.Contact       `json:"technical_contact"`
	Organization     OrgStatus            `json:"organization"`
	Registry         *domain.Organization `json:"registry,omitempty"`
	Phone            *domain.PhoneCheck   `json:"phone_check,omitempty"`
	Validations      []DomainEvidence     `json:"validations"`
}

// DomainEvidence is one name's validation.
type DomainEvidence struct {
	ValidationID uuid.UUID       `json:"validation_id"`
	Domain       string          `json:"domain"`
	Method       domain.Method   `json:"method"`
	Status       string          `json:"status"`
	ValueSHA256  string          `json:"value_sha256"`
	ValidatedAt  *time.Time      `json:"validated_at,omitempty"`
	ReusedFrom   *uuid.UUID      `json:"reused_from,omitempty"`
	ExpiresAt    time.Time       `json:"expires_at"`
	LastFailure  *domain.Failure `json:"last_failure,omitempty"`
}

// Approval is one approved application of the organization.
type Approval struct {
	ReviewID              uuid.UUID `json:"review_id"`
	ApplicationID         string    `json:"application_id"`
	Product               string    `json:"product"`
	Kind                  string    `json:"kind"`
	ApplicantNameEn       string    `json:"applicant_name_en"`
	ApplicantEmail        string    `json:"applicant_email"`
	PreviousCertificateID string    `json:"previous_certificate_id,omitempty"`
	ApprovedBy            string    `json:"approved_by"`
	ApprovedAt            time.Time `json:"approved_at"`
}

// Payment is the payment status of the application.
type Payment struct {
	Paid      bool       `json:"paid"`
	Method    string     `json:"method,omitempty"`
	Reference string     `json:"reference,omitempty"`
	PaidAt    *time.Time `json:"paid_at,omitempty"`
	// RefundedAt: the payment was refunded (BI-2); the review waits for
	// payment again.
	RefundedAt *time.Time `json:"refunded_at,omitempty"`
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
		status = domain.StatusPending
	}
	var bad []errs.Field
	if status != domain.StatusPending && status != domain.StatusApproved && status != domain.StatusRejected {
		bad = append(bad, errs.Field{Name: "status", Message: "must be pending, approved or rejected"})
	}
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			bad = append(bad, errs.Field{Name: "limit", Message: "must be a number from 1 to " + strconv.Itoa(maxLimit)})
		}
		limit = n
	}
	if len(bad) > 0 {
		httpx.WriteError(w, r, a.Log, errs.Invalid(bad...))
		return
	}
	ds, err := a.Queue.List(r.Context(), status, limit)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	out := make([]Review, 0, len(ds))
	for _, d := range ds {
		out = append(out, view(d, a.Queue.Clock.Now()))
	}
	// Lists are wrapped in an object, like every list of the API.
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"reviews": out})
}

// get handles GET /ops/v1/reviews/{id}.
func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, err := reviewID(r)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	d, err := a.Queue.Get(r.Context(), id)
	a.writeOne(w, r, d, err)
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
	reason, err := domain.RejectionReason(body.Reason)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	a.decide(w, r, false, reason)
}

func (a *API) decide(w http.ResponseWriter, r *http.Request, approve bool, reason string) {
	id, err := reviewID(r)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	d, err := a.Queue.Decide(r.Context(), id, approve, opsauth.Actor(r.Context()), reason)
	a.writeOne(w, r, d, err)
}

func (a *API) writeOne(w http.ResponseWriter, r *http.Request, d app.Dossier, err error) {
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, view(d, a.Queue.Clock.Now()))
}

// reviewID reads {id}; a malformed one names no review.
func reviewID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return id, errs.NotFound("")
	}
	return id, nil
}

func view(d app.Dossier, now time.Time) Review {
	rv := d.Review
	v := Review{
		ID: rv.ID, ApplicationID: rv.ApplicationID, Status: rv.Status, CreatedAt: rv.CreatedAt,
		FinalAt: rv.FinalAt, PendingAt: rv.PendingAt,
		Evidence: Evidence{PreviousApprovals: make([]Approval, 0, len(d.PreviousApprovals))},
	}
	if rv.Status == domain.StatusWaiting {
		v.WaitingFor = rv.WaitingFor()
	}
	if a := rv.Application; a != nil {
		v.Product, v.Kind = a.Product, a.Kind
		v.Evidence.Organization, v.Evidence.Applicant = &a.Organization, &a.Applicant
		v.Evidence.Language = a.Language
		v.Evidence.PreviousCertificateID, v.Evidence.ReissueReason = a.PreviousCertificateID, a.ReissueReason
	}
	for _, h := range d.PreviousApprovals {
		v.Evidence.PreviousApprovals = append(v.Evidence.PreviousApprovals, Approval(h))
	}
	if a := rv.Application; a != nil && a.Server != nil && d.Server != nil {
		sv, c := a.Server, d.Server.Check
		ev := &ServerEvidence{CommonName: sv.CommonName, Domains: sv.Domains, OrderID: sv.OrderID, TermMonths: sv.TermMonths,
			CoverageEnd: sv.CoverageEnd, RenewalOf: sv.RenewalOf, Decision: sv.Decision, TechnicalContact: sv.TechnicalContact,
			Organization: OrgStatus{DUNS: c.DUNS, Status: c.OrgStatus, Detail: c.OrgDetail, Mismatches: c.Mismatches,
				VerifiedAt: c.OrgVerifiedAt, ValidUntil: c.OrgValidUntil, Reused: c.OrgReusedFrom != ""},
			Registry: c.Registry, Phone: d.Server.Phone, Validations: []DomainEvidence{}}
		if rv.DecidedAt != nil {
			now = *rv.DecidedAt
		}
		for _, v := range d.Server.Validations {
			ev.Validations = append(ev.Validations, DomainEvidence{ValidationID: v.ID, Domain: v.Domain, Method: v.Method,
				Status: v.State(now), ValueSHA256: v.ValueHash, ValidatedAt: v.ValidatedAt, ReusedFrom: v.ReusedFrom,
				ExpiresAt: v.ExpiresAt, LastFailure: v.LastFailure})
		}
		v.Evidence.Server = ev
	}
	if p := rv.Payment; p != nil {
		v.Evidence.Payment = Payment{Paid: true, Method: p.Method, Reference: p.Reference, PaidAt: &p.At}
	} else {
		v.Evidence.Payment.RefundedAt = rv.RefundedAt
	}
	if rv.DecidedAt != nil {
		v.Decision = &Decision{By: rv.DecidedBy, At: *rv.DecidedAt, Reason: rv.Reason}
	}
	return v
}
