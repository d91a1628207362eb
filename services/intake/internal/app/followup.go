package app

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// Prefill is the previous application's data for a renewal or reissue
// form (PC-9), and whether each step is open now (PC-8, PC-11).
type Prefill struct {
	CertificateID string              `json:"certificate_id"`
	Language      string              `json:"language"`
	Organization  events.Organization `json:"organization"`
	Applicant     events.Applicant    `json:"applicant"`
	Immutable     []string            `json:"immutable"`
	RenewalOpen   bool                `json:"renewal_open"`
	ReissueOpen   bool                `json:"reissue_open"`
}

// certificate loads the principal's certificate and the application it
// came from; anything else is a 404.
func (s *Service) certificate(ctx context.Context, q store.Q, id uuid.UUID, who domain.Principal, lock bool) (domain.Certificate, domain.Application, error) {
	cert, err := store.GetCertificate(ctx, q, id, lock)
	if err != nil {
		return cert, domain.Application{}, notFound(err)
	}
	if cert.ApplicantID != who.ApplicantID {
		return cert, domain.Application{}, domain.ErrNotFound()
	}
	app, err := store.GetApplication(ctx, q, cert.ApplicationID)
	return cert, app, err
}

// Prefill returns the data a renewal or reissue form starts from.
func (s *Service) Prefill(ctx context.Context, id uuid.UUID, who domain.Principal) (Prefill, error) {
	if err := who.RequireCode(); err != nil {
		return Prefill{}, err
	}
	cert, app, err := s.certificate(ctx, s.Pool, id, who, false)
	if err != nil {
		return Prefill{}, err
	}
	now := s.Clock.Now()
	return Prefill{CertificateID: id.String(), Language: app.Language, Organization: app.Organization,
		Applicant: app.Applicant, Immutable: domain.Immutable(app.Organization),
		RenewalOpen: cert.RenewalOpen(now), ReissueOpen: cert.ReissueOpen(now)}, nil
}

// Renew accepts a renewal application: a new coupon, the previous data
// with allowed changes, validity chained by the issuer (PC-8, PC-9, PC-15).
func (s *Service) Renew(ctx context.Context, id uuid.UUID, who domain.Principal, body domain.Renewal) (Accepted, error) {
	var bad domain.Errors
	coupon := domain.CheckCoupon(&bad, body.Coupon)
	app, err := s.prepareFollowUp(ctx, id, who, events.KindRenewal, body.Changes, bad)
	if err != nil {
		return Accepted{}, err
	}
	if err := s.checkCoupon(ctx, coupon, app.Product); err != nil {
		return Accepted{}, err
	}
	app.Coupon = &coupon
	return s.acceptFollowUp(ctx, &app, who)
}

// Reissue accepts a reissue application. It has no cancel window: the
// applicant confirmed that the certificate will be revoked, irreversibly
// (seed 001). With key_compromise the issuer revokes at once (PC-12).
func (s *Service) Reissue(ctx context.Context, id uuid.UUID, who domain.Principal, body domain.Reissue) (Accepted, error) {
	var bad domain.Errors
	reason := domain.CheckReissueReason(&bad, body.Reason)
	app, err := s.prepareFollowUp(ctx, id, who, events.KindReissue, body.Changes, bad)
	if err != nil {
		return Accepted{}, err
	}
	app.ReissueReason = &reason
	return s.acceptFollowUp(ctx, &app, who)
}

// prepareFollowUp checks what renewals and reissues share: the code, the
// principal's certificate, the changes (with bad already found in the
// body), the step's window, maintenance; and builds the new application.
func (s *Service) prepareFollowUp(ctx context.Context, id uuid.UUID, who domain.Principal, kind string,
	changes *domain.Changes, bad domain.Errors) (domain.Application, error) {
	if err := who.RequireCode(); err != nil {
		return domain.Application{}, err
	}
	cert, prev, err := s.certificate(ctx, s.Pool, id, who, false)
	if err != nil {
		return domain.Application{}, err
	}
	data, changeErrs := changes.Apply(prev.Language, prev.Organization, prev.Applicant)
	if err := append(bad, changeErrs...).Err(); err != nil {
		return domain.Application{}, err
	}
	now := s.Clock.Now()
	if err := cert.CheckOpen(kind, now); err != nil {
		return domain.Application{}, err
	}
	if err := s.refuseDuringMaintenance(ctx, now); err != nil {
		return domain.Application{}, err
	}
	return domain.FollowUpOf(prev, cert, kind, data, now), nil
}

// acceptFollowUp stores the renewal or reissue, one at a time per
// certificate: the certificate's row is locked, and its window checked
// again under the lock.
func (s *Service) acceptFollowUp(ctx context.Context, app *domain.Application, who domain.Principal) (Accepted, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		cert, _, err := s.certificate(ctx, tx, *app.PreviousCertificateID, who, true)
		if err != nil {
			return err
		}
		if err := cert.CheckOpen(app.Kind, app.AcceptedAt); err != nil {
			return err
		}
		live, err := store.LiveFollowUp(ctx, tx, cert.ID, app.Kind)
		if err != nil {
			return err
		}
		if live {
			return errs.Conflict("already-under-way", "a "+app.Kind+" of this certificate is already under way")
		}
		return s.accept(ctx, tx, app)
	})
	if err != nil {
		return Accepted{}, couponInUse(err)
	}
	return Accepted{ID: app.ID, Status: app.Status, CancelDeadline: app.CancelDeadline}, nil
}
