package app

// Coverage longer than a certificate (IS-4): the issuer announces, before
// a server certificate's last 30 days, that its coverage goes on after it
// (CoverageReissueDue); intake makes the reissue application — from the
// previous CSR where the customer opted in to reusing the key, else once
// the customer has posted a new CSR to POST /v1/certificates/{id}/reissues
// (CoverageCSRRequested asks them, through the notifier). The reissue
// keeps the order, organization, domains, DCV choice and coverage end;
// validation re-validates (or reuses within VA-5) and the issuer issues.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// DecisionCoverageReissue is a coverage reissue's decision, as the
// customer sees it on the application.
const DecisionCoverageReissue = "reissue inside the coverage (IS-4)"

// onCoverageReissueDue makes the reissue of a certificate whose coverage
// outlasts it, once per certificate.
func (s *Service) onCoverageReissueDue(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CoverageReissueDue](env)
	if err != nil {
		return err
	}
	certID, err1 := uuid.Parse(ev.CertificateID)
	prevID, err2 := uuid.Parse(ev.ApplicationID)
	if err1 != nil || err2 != nil {
		s.Log.Warn("coverage reissue with malformed IDs", "certificate", ev.CertificateID, "application", ev.ApplicationID)
		return nil
	}
	prev, err := store.GetApplication(ctx, tx, prevID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && prev.Server == nil) {
		s.Log.Warn("coverage reissue of an unknown server application", "application", ev.ApplicationID)
		return nil
	}
	if err != nil {
		return err
	}
	cust, err := store.GetCustomer(ctx, tx, prev.ApplicantID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	r := store.CoverageReissue{CertificateID: certID, ApplicationID: domain.NewID(), PreviousApplication: prev.ID,
		CustomerID: cust.ID, ReuseKey: ev.ReuseKey, Deadline: ev.NotAfter, RequestedAt: now}
	if oid, err := uuid.Parse(prev.Server.OrderID); err == nil {
		r.OrderID = &oid
	}
	if ev.ReuseKey {
		r.CSRReceivedAt = &now
	}
	inserted, err := store.InsertCoverageReissue(ctx, tx, r)
	if err != nil || !inserted {
		return err
	}
	if ev.ReuseKey {
		_, err := s.acceptCoverageReissue(ctx, tx, prev, r, prev.Server.CSR)
		return err
	}
	rcpt := cust.Recipient()
	if rcpt.Language == "" {
		rcpt.Language = prev.Language
	}
	return s.emit(ctx, tx, events.CoverageCSRRequested{
		ApplicationID: r.ApplicationID.String(), CertificateID: certID.String(), CustomerID: cust.ID.String(),
		OrderID: prev.Server.OrderID, Recipient: rcpt, CommonName: prev.Server.CommonName, Deadline: ev.NotAfter,
		CoverageEnd: prev.Server.CoverageEnd, RequestedAt: now,
	}, r.ApplicationID.String())
}

// acceptCoverageReissue makes and accepts the reissue application with
// csr: the previous application's data, same order and coverage end. A
// reissue has no cancel window; the order is paid, so validation may
// start at once.
func (s *Service) acceptCoverageReissue(ctx context.Context, tx pgx.Tx, prev domain.Application, r store.CoverageReissue, csr string) (domain.Application, error) {
	now := s.Clock.Now()
	srv := *prev.Server
	srv.CSR, srv.RenewalOf, srv.Decision, srv.CarryOverDays, srv.AutoReapplied = csr, "", DecisionCoverageReissue, 0, false
	certID := r.CertificateID
	app := domain.Application{
		ID: r.ApplicationID, ApplicantID: prev.ApplicantID, Product: events.ProductServer, Kind: events.KindReissue,
		Status: domain.StatusProvisional, Language: prev.Language, Organization: prev.Organization, Applicant: prev.Applicant,
		PreviousCertificateID: &certID, AcceptedAt: now, Server: &srv,
	}
	if err := s.accept(ctx, tx, &app); err != nil {
		return app, err
	}
	if err := store.AddTimeline(ctx, tx, app.ID, now, events.TypePaymentConfirmed, nil); err != nil {
		return app, err
	}
	s.Log.Info("coverage reissue accepted", "application", app.ID, "certificate", certID, "reuse_key", r.ReuseKey)
	return app, nil
}

// SubmitCoverageCSR is the customer's new CSR for the reissue inside the
// coverage of their certificate id (IS-4): checked as at application
// (SV-6), with the certificate's common name; it makes the reissue
// application. No reissue waiting → 404; a CSR already given → 409.
func (s *Service) SubmitCoverageCSR(ctx context.Context, id uuid.UUID, who domain.Principal, csr string) (Accepted, error) {
	if err := who.RequireCustomer(); err != nil {
		return Accepted{}, err
	}
	csr = strings.TrimSpace(csr)
	if csr == "" {
		return Accepted{}, errs.InvalidField("csr", "is required: the PEM certificate request of the reissue's key")
	}
	dn, msg := domain.CheckCSR(csr)
	if msg != "" {
		return Accepted{}, errs.InvalidField("csr", msg)
	}
	if err := s.refuseDuringMaintenance(ctx, s.Clock.Now()); err != nil {
		return Accepted{}, err
	}
	var app domain.Application
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r, err := store.LockCoverageReissue(ctx, tx, id, who.ApplicantID)
		if errors.Is(err, store.ErrNotFound) {
			return errs.NotFound("no reissue of this certificate waits for a CSR")
		}
		if err != nil {
			return err
		}
		if r.CSRReceivedAt != nil {
			return errs.Conflict("already-under-way", "the reissue of this certificate already has its CSR (application "+r.ApplicationID.String()+")")
		}
		prev, err := store.GetApplication(ctx, tx, r.PreviousApplication)
		if err != nil {
			return err
		}
		if !strings.EqualFold(dn.CommonName, prev.Server.CommonName) {
			return errs.InvalidField("csr", "the CSR's common name "+dn.CommonName+" must be the certificate's: "+prev.Server.CommonName)
		}
		if app, err = s.acceptCoverageReissue(ctx, tx, prev, r, csr+"\n"); err != nil {
			return err
		}
		return store.CoverageCSRReceived(ctx, tx, id, s.Clock.Now())
	})
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{ID: app.ID, Status: app.Status, CancelDeadline: app.CancelDeadline}, nil
}

// CoverageReissueView is the latest reissue inside an order's coverage,
// as the customer sees it on the order (SV-12, IS-4).
type CoverageReissueView struct {
	CertificateID uuid.UUID  `json:"certificate_id"` // the certificate replaced
	ApplicationID uuid.UUID  `json:"application_id"`
	ReuseKey      bool       `json:"reuse_key"`
	Status        string     `json:"status"` // awaiting_csr | applied
	CSRDue        time.Time  `json:"csr_due"`
	RequestedAt   time.Time  `json:"requested_at"`
	CSRReceivedAt *time.Time `json:"csr_received_at,omitempty"`
}

func (s *Service) coverageReissueView(ctx context.Context, q store.Q, orderID uuid.UUID) (*CoverageReissueView, error) {
	r, err := store.LatestCoverageReissue(ctx, q, orderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := &CoverageReissueView{CertificateID: r.CertificateID, ApplicationID: r.ApplicationID, ReuseKey: r.ReuseKey,
		Status: "awaiting_csr", CSRDue: r.Deadline, RequestedAt: r.RequestedAt, CSRReceivedAt: r.CSRReceivedAt}
	if r.CSRReceivedAt != nil {
		v.Status = "applied"
	}
	return v, nil
}
