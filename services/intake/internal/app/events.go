package app

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// Handlers are intake's reactions to the other services' events. Each
// runs in the consumer's transaction (with the inbox row).
func (s *Service) Handlers() map[string]bus.Handler {
	return map[string]bus.Handler{
		events.TypeCouponReserved:       s.onTimeline,
		events.TypeReviewApproved:       s.onReviewApproved,
		events.TypeCouponRejected:       s.onCouponRejected,
		events.TypePaymentConfirmed:     s.onPaymentConfirmed,
		events.TypeReviewRejected:       s.onReviewRejected,
		events.TypeCertificateReady:     s.onCertificateReady,
		events.TypeCertificateIssued:    s.onCertificateIssued,
		events.TypeCertificateRetrieved: s.onCertificateRetrieved,
		events.TypeCertificateRevoked:   s.onCertificateRevoked,
		events.TypeRenewalDue:           s.onRenewalDue,
		// Server orders (SV-12).
		events.TypeInvoiceIssued:             s.onInvoiceIssued,
		events.TypePaymentFailed:             s.onPaymentFailed,
		events.TypePaymentRefunded:           s.onPaymentRefunded,
		events.TypeDomainValidated:           s.onDomainValidated,
		events.TypeDomainValidationFailed:    s.onDomainValidationFailed,
		events.TypeOrganizationVerified:      s.onOrganizationVerified,
		events.TypePhoneVerified:             s.onPhoneVerified,
		events.TypeCertificateIssuanceFailed: s.onIssuanceFailed,
		// Coverage longer than a certificate (IS-4).
		events.TypeCoverageReissueDue: s.onCoverageReissueDue,
	}
}

// withApplication lets fn change the event's application (locked) and
// adds the event to its timeline, in the consumer's transaction.
func (s *Service) withApplication(ctx context.Context, tx pgx.Tx, env events.Envelope, id string, fn func(app *domain.Application) error) error {
	appID, err := uuid.Parse(id)
	if err != nil {
		return bus.Permanent(err)
	}
	if fn == nil {
		fn = func(*domain.Application) error { return nil }
	}
	app, err := store.UpdateApplication(ctx, tx, appID, fn)
	if errors.Is(err, store.ErrNotFound) {
		// Not ours (e.g. an application another intake database holds):
		// nothing to do, and retrying would not change that.
		s.Log.Warn("event for unknown application", "type", env.Type, "application", id)
		return nil
	}
	if err != nil {
		return err
	}
	return store.AddTimeline(ctx, tx, app.ID, env.OccurredAt, env.Type, &env.ID)
}

func (s *Service) onTimeline(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	return s.withApplication(ctx, tx, env, env.SubjectID, nil)
}

func (s *Service) onPaymentConfirmed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.PaymentConfirmed](env)
	if err != nil {
		return err
	}
	if ev.OrderID != "" {
		return s.onOrderPaid(ctx, tx, env, ev)
	}
	if ev.ApplicationID == "" {
		return nil
	}
	return s.withApplication(ctx, tx, env, ev.ApplicationID, func(app *domain.Application) error {
		app.Status = domain.Advance(app.Status, domain.StatusInReview)
		return nil
	})
}

// onCouponRejected ends an application whose coupon could not be
// reserved after all (it was used elsewhere between check and reserve).
func (s *Service) onCouponRejected(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CouponRejected](env)
	if err != nil {
		return err
	}
	return s.withApplication(ctx, tx, env, ev.ApplicationID, func(app *domain.Application) error {
		if domain.Terminal(app.Status) {
			return nil
		}
		reason := "coupon " + ev.Reason
		app.Status, app.RejectionReason = domain.StatusRejected, &reason
		if err := timer.Cancel(ctx, tx, TimerCancelWindow, app.ID.String()); err != nil {
			return err
		}
		out, err := events.Follow(env, events.ApplicationRejected{
			ApplicationID: app.ID.String(), Reason: reason, Recipient: app.Event().Recipient(),
		}, s.Clock.Now())
		if err != nil {
			return err
		}
		return bus.Emit(ctx, tx, out)
	})
}

func (s *Service) onReviewRejected(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ReviewRejected](env)
	if err != nil {
		return err
	}
	if err := s.reviewRejectedStep(ctx, tx, env, ev); err != nil {
		return err
	}
	return s.withApplication(ctx, tx, env, ev.ApplicationID, func(app *domain.Application) error {
		app.Status = domain.Advance(app.Status, domain.StatusRejected)
		if app.Status == domain.StatusRejected {
			app.RejectionReason = &ev.Reason
		}
		return nil
	})
}

// onCertificateReady gives the applicant a new certificate code (PC-6,
// PC-7, PC-11): the previous code stops working, and the new one leaves
// this service only sealed for the notifier (SE-1).
func (s *Service) onCertificateReady(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateReady](env)
	if err != nil {
		return err
	}
	certID, err := uuid.Parse(ev.CertificateID)
	if err != nil {
		return bus.Permanent(err)
	}
	return s.withApplication(ctx, tx, env, ev.ApplicationID, func(app *domain.Application) error {
		before := app.Status
		app.Status = domain.Advance(app.Status, domain.StatusApproved)
		s.reached(ctx, app, before)
		app.CertificateID = &certID
		if err := store.UpsertCertificate(ctx, tx, domain.Certificate{
			ID: certID, ApplicationID: app.ID, ApplicantID: app.ApplicantID, Status: domain.CertReady,
		}); err != nil {
			return err
		}
		reason := events.CodeForCertificateReady
		if app.Kind == events.KindReissue {
			reason = events.CodeForReissue
		}
		return s.issueCode(ctx, tx, env.CorrelationID, app.ApplicantID, events.CertificateCodeIssued{
			ApplicationID: app.ID.String(), CertificateID: ev.CertificateID, ApplicantID: app.ApplicantID.String(),
			Reason: reason, Recipient: app.Event().Recipient(),
		})
	})
}

// issueCode makes a code, stores only its MAC (SE-7) with the mailbox it
// is sent to (PC-16), and emits it sealed for the notifier (SE-1).
func (s *Service) issueCode(ctx context.Context, tx pgx.Tx, correlation string, applicant uuid.UUID, ev events.CertificateCodeIssued) error {
	code, err := domain.NewCode()
	if err != nil {
		return err
	}
	if err := store.SetCode(ctx, tx, applicant, s.CodeKey.MAC(code), ev.Recipient.Email, s.Clock.Now()); err != nil {
		return err
	}
	if ev.SealedCode, err = seal.Seal(s.NotifierKey, []byte(code)); err != nil {
		return err
	}
	return s.emit(ctx, tx, ev, correlation)
}

// recipient is where mail to the applicant goes: its current e-mail and
// language, addressed by the name of its latest application (names do
// not change across renewals and reissues, PC-9).
func (s *Service) recipient(ctx context.Context, q store.Q, a domain.Applicant) (events.Recipient, error) {
	r := events.Recipient{Email: a.Email, Language: a.Language}
	app, err := store.LatestApplication(ctx, q, a.ID)
	if errors.Is(err, store.ErrNotFound) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	app.Language = a.Language
	r.Name = app.Event().Recipient().Name
	return r, nil
}

func (s *Service) onCertificateIssued(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateIssued](env)
	if err != nil {
		return err
	}
	if ev.Product == events.ProductServer {
		return s.onServerIssued(ctx, tx, env, ev)
	}
	notAfter := ev.NotAfter
	if ev.Windows == nil {
		// An issuer older than the windows in its events: the certificate
		// is recorded, but offered for renewal or reissue only once an
		// event with windows says when.
		s.Log.Warn("CertificateIssued without renewal and reissue windows", "certificate", ev.CertificateID)
	}
	return s.recordIssued(ctx, tx, env, ev.ApplicationID, ev.CertificateID, domain.Certificate{NotAfter: &notAfter, Windows: ev.Windows})
}

func (s *Service) onCertificateRetrieved(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateRetrieved](env)
	if err != nil {
		return err
	}
	at := ev.RetrievedAt
	return s.recordIssued(ctx, tx, env, ev.ApplicationID, ev.CertificateID, domain.Certificate{RetrievedAt: &at})
}

// recordIssued marks the application issued and records what the event
// says of its certificate (cert carries the event's own facts).
func (s *Service) recordIssued(ctx context.Context, tx pgx.Tx, env events.Envelope, applicationID, certificateID string, cert domain.Certificate) error {
	certID, err := uuid.Parse(certificateID)
	if err != nil {
		return bus.Permanent(err)
	}
	return s.withApplication(ctx, tx, env, applicationID, func(app *domain.Application) error {
		before := app.Status
		app.Status = domain.Advance(app.Status, domain.StatusIssued)
		s.reached(ctx, app, before)
		app.CertificateID = &certID
		cert.ID, cert.ApplicationID, cert.ApplicantID, cert.Status = certID, app.ID, app.ApplicantID, domain.CertIssued
		return store.UpsertCertificate(ctx, tx, cert)
	})
}

func (s *Service) onCertificateRevoked(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateRevoked](env)
	if err != nil {
		return err
	}
	certID, err := uuid.Parse(ev.CertificateID)
	if err != nil {
		return bus.Permanent(err)
	}
	if ev.MassRevocationID != "" {
		// A server certificate a mass revocation took: its free
		// replacement (OP-5).
		if handled, err := s.offerRevocationReplacement(ctx, tx, env, ev, certID); err != nil || handled {
			return err
		}
	}
	cert, err := store.GetCertificate(ctx, tx, certID, true)
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn("revocation of an unknown certificate", "certificate", ev.CertificateID)
		return nil
	}
	if err != nil {
		return err
	}
	cert.Status = domain.CertRevoked
	if err := store.UpsertCertificate(ctx, tx, cert); err != nil {
		return err
	}
	return s.withApplication(ctx, tx, env, cert.ApplicationID.String(), nil)
}

// onRenewalDue answers a renewal reminder with a fresh code for the
// renewal steps (PC-10): only the latest code is accepted.
func (s *Service) onRenewalDue(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.RenewalDue](env)
	if err != nil {
		return err
	}
	if ev.Product == events.ProductServer {
		return s.onServerRenewalDue(ctx, tx, env, ev)
	}
	applicant, err := uuid.Parse(ev.ApplicantID)
	if err != nil {
		return bus.Permanent(err)
	}
	a, err := store.GetApplicant(ctx, tx, applicant)
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn("renewal reminder for an unknown applicant", "applicant", ev.ApplicantID)
		return nil
	}
	if err != nil {
		return err
	}
	to, err := s.recipient(ctx, tx, a)
	if err != nil {
		return err
	}
	return s.issueCode(ctx, tx, env.CorrelationID, a.ID, events.CertificateCodeIssued{
		CertificateID: ev.CertificateID, ApplicantID: a.ID.String(), Reason: events.CodeForRenewalNotice,
		Recipient: to, NotAfter: ev.NotAfter, DaysBefore: ev.DaysBefore,
	})
}

func busEmit(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	return bus.Emit(ctx, tx, env)
}
