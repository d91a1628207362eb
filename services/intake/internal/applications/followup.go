package applications

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/services/intake/internal/form"
	"github.com/certlife/platform/services/intake/internal/store"
)

// Renewal and reissue windows (PC-8, PC-11).
const (
	renewFrom      = 30 * 24 * time.Hour  // before expiry
	renewUntil     = 365 * 24 * time.Hour // after expiry
	reissueMinLeft = 30 * 24 * time.Hour
)

// RenewalOpen reports whether a certificate expiring at notAfter may be
// renewed at now: from 30 days before expiry to 365 days after (PC-8).
func RenewalOpen(notAfter, now time.Time) bool {
	return !now.Before(notAfter.Add(-renewFrom)) && !now.After(notAfter.Add(renewUntil))
}

// ReissueOpen reports whether a certificate may be reissued: more than 30
// days left (PC-11).
func ReissueOpen(notAfter, now time.Time) bool { return notAfter.Sub(now) > reissueMinLeft }

// Prefill is the previous application's data for a renewal or reissue
// form (PC-9).
type Prefill struct {
	CertificateID string              `json:"certificate_id"`
	Language      string              `json:"language"`
	Organization  events.Organization `json:"organization"`
	Applicant     events.Applicant    `json:"applicant"`
	Immutable     []string            `json:"immutable"`
	RenewalOpen   bool                `json:"renewal_open"`
	ReissueOpen   bool                `json:"reissue_open"`
}

var immutableFields = []string{"organization.company_code", "organization.name_ja", "organization.name_en", "applicant.name_ja", "applicant.name_en"}

// certificate loads the principal's certificate and the application it
// came from; anything else is a 404.
func (s *Service) certificate(ctx context.Context, q store.Q, id uuid.UUID, who Principal) (store.Certificate, store.Application, error) {
	cert, err := store.GetCertificate(ctx, q, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && cert.ApplicantID != who.ApplicantID) {
		return cert, store.Application{}, httpx.NotFound()
	}
	if err != nil {
		return cert, store.Application{}, err
	}
	app, err := store.GetApplication(ctx, q, cert.ApplicationID, false)
	return cert, app, err
}

// Prefill returns the data a renewal or reissue form starts from.
func (s *Service) Prefill(ctx context.Context, id uuid.UUID, who Principal) (Prefill, error) {
	cert, app, err := s.certificate(ctx, s.Pool, id, who)
	if err != nil {
		return Prefill{}, err
	}
	now := s.Clock.Now()
	p := Prefill{CertificateID: id.String(), Language: app.Language, Organization: app.Organization,
		Applicant: app.Applicant, Immutable: immutableFields}
	if cert.Status == "issued" && cert.NotAfter != nil {
		p.RenewalOpen = RenewalOpen(*cert.NotAfter, now)
		p.ReissueOpen = ReissueOpen(*cert.NotAfter, now)
	}
	return p, nil
}

func notEligible(detail string) *httpx.Problem {
	return httpx.Conflict("not-eligible", detail)
}

// Renew accepts a renewal application: a new coupon, the previous data
// with allowed changes, validity chained by the issuer (PC-8, PC-9, PC-15).
func (s *Service) Renew(ctx context.Context, id uuid.UUID, who Principal, body form.Renewal) (Accepted, error) {
	var errs form.Errors
	coupon := form.CheckCoupon(&errs, body.Coupon)
	app, err := s.prepareFollowUp(ctx, id, who, events.KindRenewal, body.Changes, errs, RenewalOpen,
		"this certificate can be renewed from 30 days before its expiry until 365 days after it")
	if err != nil {
		return Accepted{}, err
	}
	if err := s.checkCoupon(ctx, coupon, app.Product); err != nil {
		return Accepted{}, err
	}
	app.Coupon = &coupon
	return s.acceptFollowUp(ctx, &app)
}

// Reissue accepts a reissue application. It has no cancel window: the
// applicant confirmed that the certificate will be revoked, irreversibly
// (seed 001). With key_compromise the issuer revokes at once (PC-12).
func (s *Service) Reissue(ctx context.Context, id uuid.UUID, who Principal, body form.Reissue) (Accepted, error) {
	var errs form.Errors
	reason := form.CheckReissueReason(&errs, body.Reason)
	app, err := s.prepareFollowUp(ctx, id, who, events.KindReissue, body.Changes, errs, ReissueOpen,
		"a reissue is offered only for an issued, unrevoked certificate with more than 30 days left")
	if err != nil {
		return Accepted{}, err
	}
	app.ReissueReason = &reason
	return s.acceptFollowUp(ctx, &app)
}

// prepareFollowUp checks what renewals and reissues share: the
// principal's certificate, the changes (with errs already found in the
// body), the step's window, maintenance; and builds the new application.
func (s *Service) prepareFollowUp(ctx context.Context, id uuid.UUID, who Principal, kind string, changes *form.Changes,
	errs form.Errors, open func(notAfter, now time.Time) bool, closed string) (store.Application, error) {
	cert, prev, err := s.certificate(ctx, s.Pool, id, who)
	if err != nil {
		return store.Application{}, err
	}
	data, changeErrs := changes.Apply(prev.Language, prev.Organization, prev.Applicant)
	if p := append(errs, changeErrs...).Problem(); p != nil {
		return store.Application{}, p
	}
	now := s.Clock.Now()
	if cert.Status != "issued" || cert.NotAfter == nil || !open(*cert.NotAfter, now) {
		return store.Application{}, notEligible(closed)
	}
	if err := s.refuseDuringMaintenance(ctx, now); err != nil {
		return store.Application{}, err
	}
	return s.followUp(prev, cert, kind, data, now), nil
}

func (s *Service) followUp(prev store.Application, cert store.Certificate, kind string, data form.FollowUp, now time.Time) store.Application {
	certID := cert.ID
	return store.Application{
		ID: newID(), ApplicantID: prev.ApplicantID, Product: prev.Product, Kind: kind, Status: StatusProvisional,
		Language: data.Language, Organization: prev.Organization, Applicant: data.Applicant,
		PreviousCertificateID: &certID, AcceptedAt: now,
	}
}

// acceptFollowUp stores the renewal or reissue, one at a time per certificate.
func (s *Service) acceptFollowUp(ctx context.Context, app *store.Application) (Accepted, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// Serialize follow-ups of one certificate: lock its row.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM certificates WHERE id = $1 FOR UPDATE`, *app.PreviousCertificateID); err != nil {
			return err
		}
		live, err := store.LiveFollowUp(ctx, tx, *app.PreviousCertificateID, app.Kind)
		if err != nil {
			return err
		}
		if live {
			return httpx.Conflict("already-under-way", "a "+app.Kind+" of this certificate is already under way")
		}
		return s.accept(ctx, tx, app)
	})
	if errors.Is(err, store.ErrCouponInUse) {
		return Accepted{}, httpx.Invalid(httpx.FieldError{Field: "coupon", Message: "this coupon is already used by another application"})
	}
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{ID: app.ID, Status: app.Status, CancelDeadline: app.CancelDeadline}, nil
}
