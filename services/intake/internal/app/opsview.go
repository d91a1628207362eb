package app

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// OpsApplication is an application as operators see it: what was applied
// for and what became of it, with no secret (no password hash, no coupon
// number, no certificate code).
type OpsApplication struct {
	ID                    uuid.UUID           `json:"id"`
	Product               string              `json:"product"`
	Kind                  string              `json:"kind"`
	Status                string              `json:"status"`
	Language              string              `json:"language"`
	Organization          events.Organization `json:"organization"`
	Applicant             events.Applicant    `json:"applicant"`
	AcceptedAt            time.Time           `json:"accepted_at"`
	CancelDeadline        time.Time           `json:"cancel_deadline"`
	ClosedAt              *time.Time          `json:"closed_at,omitempty"`
	CertificateID         *uuid.UUID          `json:"certificate_id,omitempty"`
	PreviousCertificateID *uuid.UUID          `json:"previous_certificate_id,omitempty"`
	ReissueReason         *string             `json:"reissue_reason,omitempty"`
	RejectionReason       *string             `json:"rejection_reason,omitempty"`
	// Server is a server application's part: CSR (public), names, DCV,
	// technical contact, registry organization, order and decision.
	Server *events.ServerApplication `json:"server,omitempty"`
}

// OpsDetail is one application with its timeline.
type OpsDetail struct {
	OpsApplication
	Timeline []domain.TimelineEntry `json:"timeline"`
}

// OpsPage is one page of a search, newest first.
type OpsPage struct {
	Applications []OpsApplication `json:"applications"`
	// Next is the value of `before` for the next page; absent on the last.
	Next *uuid.UUID `json:"next,omitempty"`
}

func opsApplication(a domain.Application) OpsApplication {
	return OpsApplication{ID: a.ID, Product: a.Product, Kind: a.Kind, Status: a.Status, Language: a.Language,
		Organization: a.Organization, Applicant: a.Applicant, AcceptedAt: a.AcceptedAt, CancelDeadline: a.CancelDeadline,
		ClosedAt: a.ClosedAt, CertificateID: a.CertificateID, PreviousCertificateID: a.PreviousCertificateID,
		ReissueReason: a.ReissueReason, RejectionReason: a.RejectionReason, Server: a.Server}
}

// SearchApplications finds applications for operators.
func (s *Service) SearchApplications(ctx context.Context, q domain.ApplicationSearch) (OpsPage, error) {
	list, err := store.SearchApplications(ctx, s.Pool, q)
	if err != nil {
		return OpsPage{}, err
	}
	page := OpsPage{Applications: make([]OpsApplication, 0, len(list))}
	for _, a := range list {
		page.Applications = append(page.Applications, opsApplication(a))
	}
	if n := len(list); n > 0 && n == q.Limit {
		page.Next = &list[n-1].ID
	}
	return page, nil
}

// OpsApplication returns one application and its timeline for operators.
func (s *Service) OpsApplication(ctx context.Context, id uuid.UUID) (OpsDetail, error) {
	a, err := store.GetApplication(ctx, s.Pool, id)
	if err != nil {
		return OpsDetail{}, notFound(err)
	}
	tl, err := store.Timeline(ctx, s.Pool, id)
	if err != nil {
		return OpsDetail{}, err
	}
	if tl == nil {
		tl = []domain.TimelineEntry{}
	}
	return OpsDetail{OpsApplication: opsApplication(a), Timeline: tl}, nil
}
