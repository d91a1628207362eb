package notifier

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/notifier/internal/notice"
	"github.com/certlife/platform/services/notifier/internal/store"
)

// enqueue queues a message in the event's transaction: a delivery row and
// a send timer due now. A message that already exists (same Message-ID) is
// left alone: that is what makes a republished event send nothing twice.
func (s *Service) enqueue(ctx context.Context, tx pgx.Tx, env events.Envelope, r notice.Request) error {
	r.CausedBy, r.Correlation = env.ID.String(), env.CorrelationID
	if r.SubjectID == "" {
		r.SubjectID = env.SubjectID
	}
	now := s.d.Clock.Now()
	fresh, err := store.InsertDelivery(ctx, tx, r, now)
	if err != nil {
		return err
	}
	if !fresh {
		s.metrics.duplicates.WithLabelValues(r.Reason).Inc()
		s.d.Log.Info("message already queued or sent, not queued again",
			"message_id", r.MessageID(), "reason", r.Reason, "event", env.ID)
		return nil
	}
	return timer.Schedule(ctx, tx, timerSend, r.MessageID(), now, nil)
}

func (s *Service) onApplicationProvisional(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationProvisional](env)
	if err != nil {
		return err
	}
	a := p.Application
	lang := notice.Language(a.Language)
	name, org := pick(lang, a.Applicant.NameJa, a.Applicant.NameEn), pick(lang, a.Organization.NameJa, a.Organization.NameEn)
	return s.enqueue(ctx, tx, env, notice.Request{
		Reason: notice.ReasonApplicationProvisional, Recipient: a.Applicant.Email, Language: a.Language,
		Key: a.ID, SubjectID: a.ID,
		Data: notice.Data{
			Product: a.Product, Kind: a.Kind, ApplicationID: a.ID, Name: name, Organization: org,
			AcceptedAt: p.AcceptedAt, CancelDeadline: p.CancelDeadline,
		},
	})
}

func (s *Service) onApplicationCancelled(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationCancelled](env)
	if err != nil {
		return err
	}
	return s.enqueue(ctx, tx, env, notice.Request{
		Reason: notice.ReasonApplicationCancelled, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.ApplicationID, SubjectID: p.ApplicationID,
		Data: notice.Data{ApplicationID: p.ApplicationID, CancelledAt: p.CancelledAt, CouponReleased: p.Coupon != ""},
	})
}

// A review rejection and the application's rejection that may follow it
// share one reason and key: the applicant gets one rejection mail, from
// whichever event comes first.
func (s *Service) onReviewRejected(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ReviewRejected](env)
	if err != nil {
		return err
	}
	return s.rejection(ctx, tx, env, p.ApplicationID, p.Reason, p.Recipient)
}

func (s *Service) onApplicationRejected(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationRejected](env)
	if err != nil {
		return err
	}
	if p.Recipient.Email == "" {
		s.d.Log.Info("application rejected without a recipient: no mail", "application", p.ApplicationID, "event", env.ID)
		return nil
	}
	return s.rejection(ctx, tx, env, p.ApplicationID, p.Reason, p.Recipient)
}

func (s *Service) rejection(ctx context.Context, tx pgx.Tx, env events.Envelope, applicationID, reason string, to events.Recipient) error {
	return s.enqueue(ctx, tx, env, notice.Request{
		Reason: notice.ReasonApplicationRejected, Recipient: to.Email, Language: to.Language,
		Key: applicationID, SubjectID: applicationID,
		Data: notice.Data{ApplicationID: applicationID, Reason: reason},
	})
}

// onCertificateCodeIssued queues a code mail. The code stays sealed in the
// row until the send (SE-1).
func (s *Service) onCertificateCodeIssued(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateCodeIssued](env)
	if err != nil {
		return err
	}
	key := p.CertificateID
	switch p.Reason {
	case events.CodeForCertificateReady, events.CodeForReissue:
	case events.CodeForRenewalNotice:
		// One notice per reminder offset of the certificate.
		key = notice.RenewalNoticeKey(p.CertificateID, p.DaysBefore)
	default:
		return bus.Permanent(fmt.Errorf("CertificateCodeIssued: unknown reason %q", p.Reason))
	}
	return s.enqueue(ctx, tx, env, notice.Request{
		Reason: p.Reason, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: key, SubjectID: env.SubjectID,
		Data: notice.Data{
			// Certificate codes exist for client certificates only (PC-7).
			Product: events.ProductClient, ApplicationID: p.ApplicationID, CertificateID: p.CertificateID,
			NotAfter: p.NotAfter, DaysBefore: p.DaysBefore,
		},
		SealedCode: p.SealedCode,
	})
}

// onCertificateRevokedMail tells the holder, when the event names one.
func (s *Service) onCertificateRevokedMail(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateRevoked](env)
	if err != nil {
		return err
	}
	if p.Recipient.Email == "" {
		return nil
	}
	// The product is known when the issuance was seen (reminder consumer).
	product, err := store.CertificateProduct(ctx, tx, p.CertificateID)
	if err != nil {
		return err
	}
	return s.enqueue(ctx, tx, env, notice.Request{
		Reason: notice.ReasonCertificateRevoked, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.CertificateID, SubjectID: p.CertificateID,
		Data: notice.Data{
			Product: product, CertificateID: p.CertificateID, ApplicationID: p.ApplicationID,
			Serial: p.Serial, Reason: p.Reason, RevokedAt: p.RevokedAt,
		},
	})
}

// pick returns the value in the mail's language, else the other one.
func pick(lang, ja, en string) string {
	ja, en = strings.TrimSpace(ja), strings.TrimSpace(en)
	if lang == notice.Japanese && ja != "" || en == "" {
		return ja
	}
	return en
}
