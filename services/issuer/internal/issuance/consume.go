package issuance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// ConsumerName is the issuer's durable consumer.
const ConsumerName = "issuer-certificates"

// ReissueKeyCompromise is intake's reissue reason for a lost or
// compromised key (PC-12).
const ReissueKeyCompromise = "key_compromise"

// Handlers are the event handlers of ConsumerName.
func (s *Service) Handlers() map[string]bus.Handler {
	return map[string]bus.Handler{
		events.TypeReviewApproved:          s.OnReviewApproved,
		events.TypeApplicationProvisional:  s.OnApplicationProvisional,
		events.TypeACMERevocationRequested: s.OnACMERevocationRequested, // §4.10
	}
}

// OnReviewApproved records the approved client certificate, ready for
// retrieval, and announces it (PC-6). The key and the certificate are
// made only at retrieval (PC-15). A server application's certificate is
// recorded pending and issued by its timer (onServerApproved). A second
// approval of the same application — a redelivery under another event
// ID — changes nothing (IS-5).
func (s *Service) OnReviewApproved(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ReviewApproved](env)
	if err != nil {
		return err
	}
	a := p.Application
	if a.Product == events.ProductServer && a.Server != nil {
		return s.onServerApproved(ctx, tx, env, a)
	}
	if a.Product != events.ProductClient {
		return nil
	}
	if strings.TrimSpace(a.Applicant.NameEn) == "" || strings.TrimSpace(a.Organization.NameEn) == "" {
		return bus.Permanent(fmt.Errorf("application %s: applicant.name_en and organization.name_en are required", a.ID))
	}
	var prevID *uuid.UUID
	if a.Kind != events.KindNew {
		prev, err := s.previous(ctx, tx, a)
		if err != nil {
			return err
		}
		prevID = &prev.ID
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	inserted, err := store.InsertReady(ctx, tx, &store.Certificate{
		ID: id, ApplicationID: a.ID, ApplicantID: a.ApplicantID, Product: a.Product, Kind: a.Kind,
		PreviousCertificateID: prevID, ReissueReason: a.ReissueReason, CorrelationID: env.CorrelationID,
		NameEn: strings.TrimSpace(a.Applicant.NameEn), OrganizationEn: strings.TrimSpace(a.Organization.NameEn),
		OrganizationID: strings.TrimSpace(a.Organization.Identifier),
		Email:          a.Applicant.Email, Language: a.Language, RecipientName: a.Recipient().Name, CreatedAt: s.Clock.Now(),
	})
	if err != nil || !inserted {
		return err
	}
	return s.emit(ctx, tx, events.CertificateReady{
		CertificateID: id.String(), ApplicationID: a.ID, ApplicantID: a.ApplicantID,
		Product: a.Product, Kind: a.Kind, Recipient: a.Recipient(),
	}, env.CorrelationID)
}

// OnApplicationProvisional revokes, at once and with reason keyCompromise,
// the certificate a reissue replaces because its key was lost or
// compromised (PC-12). Other applications need nothing from the issuer yet.
func (s *Service) OnApplicationProvisional(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.ApplicationProvisional](env)
	if err != nil {
		return err
	}
	a := p.Application
	if a.Product != events.ProductClient || a.Kind != events.KindReissue || a.ReissueReason != ReissueKeyCompromise {
		return nil
	}
	prev, err := s.previous(ctx, tx, a)
	if err != nil {
		return err
	}
	if prev.Status != store.StatusIssued {
		s.Log.Warn("key compromise reported for a certificate never issued; nothing to revoke",
			"certificate_id", prev.ID, "application_id", a.ID)
		return nil
	}
	_, _, err = s.revoke(ctx, tx, prev, profile.ReasonKeyCompromise, "applicant:"+a.ApplicantID, env.CorrelationID)
	return err
}

// previous locks the certificate a renewal or reissue follows. One that
// does not exist, or is another applicant's, can never be processed.
func (s *Service) previous(ctx context.Context, tx pgx.Tx, a events.Application) (*store.Certificate, error) {
	id, err := uuid.Parse(a.PreviousCertificateID)
	if err != nil {
		return nil, bus.Permanent(fmt.Errorf("application %s: previous_certificate_id %q is not a certificate ID", a.ID, a.PreviousCertificateID))
	}
	prev, err := store.Lock(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bus.Permanent(fmt.Errorf("application %s: previous certificate %s is unknown", a.ID, id))
	}
	if err != nil {
		return nil, err
	}
	if prev.ApplicantID != a.ApplicantID {
		return nil, bus.Permanent(fmt.Errorf("application %s: previous certificate %s belongs to another applicant", a.ID, id))
	}
	return prev, nil
}
