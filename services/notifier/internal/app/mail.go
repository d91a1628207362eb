package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/notifier/internal/domain"
	"github.com/certlife/platform/services/notifier/internal/store"
)

// enqueue queues a message in the event's transaction: a delivery row and
// a send timer due now. A message that already exists (same Message-ID) is
// left alone: that is what makes a republished event send nothing twice.
func (a *App) enqueue(ctx context.Context, tx pgx.Tx, env events.Envelope, r domain.Request) error {
	r.CausedBy, r.Correlation, r.MailDomain = env.ID.String(), env.CorrelationID, a.MailDomain
	if r.SubjectID == "" {
		r.SubjectID = env.SubjectID
	}
	now := a.Clock.Now()
	fresh, err := store.InsertDelivery(ctx, tx, r, now)
	if err != nil {
		return err
	}
	if !fresh {
		a.Metrics.duplicates.WithLabelValues(r.Reason).Inc()
		a.Log.Info("message already queued or sent, not queued again",
			"message_id", r.MessageID(), "reason", r.Reason, "event", env.ID)
		return nil
	}
	return timer.Schedule(ctx, tx, TimerSend, r.MessageID(), now, nil)
}

func (a *App) onApplicationProvisional(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationProvisional](env)
	if err != nil {
		return err
	}
	ap := p.Application
	lang := domain.Language(ap.Language)
	name, org := pick(lang, ap.Applicant.NameJa, ap.Applicant.NameEn), pick(lang, ap.Organization.NameJa, ap.Organization.NameEn)
	if ap.Server != nil && ap.Server.AutoReapplied {
		return a.autoReapplied(ctx, tx, env, p, name, org)
	}
	if ap.Server != nil && ap.Kind == events.KindReissue {
		// A reissue inside the coverage (IS-4): the CSR is there, so no
		// reminder; the acceptance mail of a client reissue (code,
		// revocation) does not apply — the customer hears of it when the
		// certificate is issued.
		return a.coverageCSRReceived(ctx, tx, ap.ID)
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonApplicationProvisional, Recipient: ap.Applicant.Email, Language: ap.Language,
		Key: ap.ID, SubjectID: ap.ID,
		Data: domain.Data{
			Product: ap.Product, Kind: ap.Kind, ApplicationID: ap.ID, Name: name, Organization: org,
			AcceptedAt: p.AcceptedAt, CancelDeadline: p.CancelDeadline,
			// A reissue is final at acceptance (no cancel window): its mail
			// says when the old certificate is revoked, by its reason.
			Reason: ap.ReissueReason,
		},
	})
}

func (a *App) onApplicationCancelled(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationCancelled](env)
	if err != nil {
		return err
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonApplicationCancelled, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.ApplicationID, SubjectID: p.ApplicationID,
		Data: domain.Data{ApplicationID: p.ApplicationID, Name: p.Recipient.Name, CancelledAt: p.CancelledAt, CouponReleased: p.Coupon != ""},
	})
}

// A review rejection and the application's rejection that may follow it
// share one reason and key: the applicant gets one rejection mail, from
// whichever event comes first.
func (a *App) onReviewRejected(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ReviewRejected](env)
	if err != nil {
		return err
	}
	return a.rejection(ctx, tx, env, p.ApplicationID, p.Reason, p.Recipient)
}

func (a *App) onApplicationRejected(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationRejected](env)
	if err != nil {
		return err
	}
	if p.Recipient.Email == "" {
		a.Log.Info("application rejected without a recipient: no mail", "application", p.ApplicationID, "event", env.ID)
		return nil
	}
	return a.rejection(ctx, tx, env, p.ApplicationID, p.Reason, p.Recipient)
}

func (a *App) rejection(ctx context.Context, tx pgx.Tx, env events.Envelope, applicationID, reason string, to events.Recipient) error {
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonApplicationRejected, Recipient: to.Email, Language: to.Language,
		Key: applicationID, SubjectID: applicationID,
		Data: domain.Data{ApplicationID: applicationID, Name: to.Name, Reason: reason},
	})
}

// onCertificateCodeIssued queues a code mail. The code stays sealed in the
// row until the send (SE-1).
func (a *App) onCertificateCodeIssued(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateCodeIssued](env)
	if err != nil {
		return err
	}
	key := p.CertificateID
	switch p.Reason {
	case events.CodeForCertificateReady, events.CodeForReissue:
	case events.CodeForRenewalNotice:
		// One notice per reminder offset of the certificate.
		key = domain.RenewalNoticeKey(p.CertificateID, p.DaysBefore)
	case events.CodeForMailboxValidation:
		// One mail per request (each is its own event, with its own code);
		// a redelivered event is still the same mail.
		key = "mailbox/" + env.ID.String()
	default:
		return bus.Permanent(fmt.Errorf("CertificateCodeIssued: unknown reason %q", p.Reason))
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: p.Reason, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: key, SubjectID: env.SubjectID,
		Data: domain.Data{
			// Certificate codes exist for client certificates only (PC-7).
			Product: events.ProductClient, ApplicationID: p.ApplicationID, CertificateID: p.CertificateID,
			Name: p.Recipient.Name, NotAfter: p.NotAfter, DaysBefore: p.DaysBefore,
		},
		SealedCode: p.SealedCode,
	})
}

// onCertificateRevokedMail tells the holder, when the event names one.
func (a *App) onCertificateRevokedMail(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
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
	if p.MassRevocationID != "" {
		return a.massRevocationMail(ctx, tx, env, p, product)
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonCertificateRevoked, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.CertificateID, SubjectID: p.CertificateID,
		Data: domain.Data{
			Product: product, CertificateID: p.CertificateID, ApplicationID: p.ApplicationID, Name: p.Recipient.Name,
			Serial: p.Serial, Reason: p.Reason, RevokedAt: p.RevokedAt,
		},
	})
}

// massRevocationMail is a subscriber's one mail of a mass revocation
// (OP-5): every certificate of theirs it revoked, as the event carrying
// the recipient lists them (an event from before the list: its own
// certificate). Its key is the mass revocation, so the subscriber gets
// one, whatever is redelivered.
func (a *App) massRevocationMail(ctx context.Context, tx pgx.Tx, env events.Envelope, p events.CertificateRevoked, product string) error {
	list, total := p.Certificates, p.CertificatesTotal
	if len(list) == 0 {
		list = []events.RevokedCertificate{{Serial: p.Serial, Product: product}}
	}
	if total < len(list) {
		total = len(list)
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonMassRevocation, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.MassRevocationID, SubjectID: p.CertificateID,
		Data: domain.Data{
			Product: product, CertificateID: p.CertificateID, ApplicationID: p.ApplicationID, Name: p.Recipient.Name,
			Serial: p.Serial, Reason: p.Reason, RevokedAt: p.RevokedAt, MassRevocationID: p.MassRevocationID,
			Certificates: list, CertificatesTotal: total,
		},
	})
}

// onCertificateIssuedMail mails a server certificate and its chain to
// the technical contact (SV-10). Client certificates are delivered by
// their retrieval (PC-13): nothing to mail here.
func (a *App) onCertificateIssuedMail(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateIssued](env)
	if err != nil {
		return err
	}
	if p.Product != events.ProductServer {
		return nil
	}
	if p.PEMChain == "" || p.Recipient.Email == "" {
		return bus.Permanent(fmt.Errorf("CertificateIssued %s: a server certificate's event needs pem_chain and recipient", p.CertificateID))
	}
	name := ""
	if p.TechnicalContact != nil {
		name = p.TechnicalContact.Name
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonServerCertificateIssued, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.CertificateID, SubjectID: p.CertificateID,
		Data: domain.Data{
			Product: p.Product, Kind: p.Kind, ApplicationID: p.ApplicationID, CertificateID: p.CertificateID,
			Serial: p.Serial, Name: name, DNSNames: p.DNSNames, NotBefore: p.NotBefore, NotAfter: p.NotAfter,
			PEMChain: p.PEMChain,
		},
	})
}

// pick returns the value in the mail's language, else the other one.
func pick(lang, ja, en string) string {
	ja, en = strings.TrimSpace(ja), strings.TrimSpace(en)
	if lang == domain.Japanese && ja != "" || en == "" {
		return ja
	}
	return en
}
