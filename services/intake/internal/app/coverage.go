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
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
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

// DecisionRevocationReplacement is the decision of a revoked certificate's
// replacement (OP-5), as the customer sees it on the application.
const DecisionRevocationReplacement = "replacement of a certificate revoked by a mass revocation (OP-5)"

// offerRevocationReplacement offers the free replacement of a server
// certificate a mass revocation took (OP-5) while its paid coverage goes
// on: the reissue of IS-4, always with a new key — it waits for the
// customer's new CSR, asked for by CoverageCSRRequested naming the mass
// revocation and its reason. It reports whether the certificate is a
// server certificate intake knows (then nothing else is to be done with
// the event). ACME certificates are left to ACME (their renewal window
// moves, AC-3); imported ones were not bought here. Once per certificate:
// a redelivery, or a reissue already under way, adds nothing.
func (s *Service) offerRevocationReplacement(ctx context.Context, tx pgx.Tx, env events.Envelope, ev events.CertificateRevoked, certID uuid.UUID) (bool, error) {
	sc, err := store.GetServerCertificate(ctx, tx, certID, false)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := s.Clock.Now()
	if sc.Imported || sc.ApplicationID == nil || !sc.CoverageEnd.After(now) {
		s.Log.Info("revoked server certificate: no replacement offered", "certificate", certID,
			"imported", sc.Imported, "coverage_end", sc.CoverageEnd)
		return true, nil
	}
	if _, err := store.ACMECertificateBy(ctx, tx, "id", certID.String(), false); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return true, err
	}
	prev, err := store.GetApplication(ctx, tx, *sc.ApplicationID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && prev.Server == nil) {
		s.Log.Warn("revoked server certificate of an unknown application", "certificate", certID)
		return true, nil
	}
	if err != nil {
		return true, err
	}
	cust, err := store.GetCustomer(ctx, tx, prev.ApplicantID)
	if err != nil {
		return true, err
	}
	r := store.CoverageReissue{CertificateID: certID, ApplicationID: domain.NewID(), PreviousApplication: prev.ID,
		CustomerID: cust.ID, Deadline: sc.CoverageEnd, RequestedAt: now,
		MassRevocationID: ev.MassRevocationID, RevocationReason: ev.Reason}
	if sc.OrderID != nil {
		r.OrderID = sc.OrderID
	} else if oid, err := uuid.Parse(prev.Server.OrderID); err == nil {
		r.OrderID = &oid
	}
	inserted, err := store.InsertCoverageReissue(ctx, tx, r)
	if err != nil || !inserted {
		return true, err
	}
	rcpt := cust.Recipient()
	if rcpt.Language == "" {
		rcpt.Language = prev.Language
	}
	orderID := prev.Server.OrderID
	if r.OrderID != nil {
		orderID = r.OrderID.String()
	}
	s.Log.Info("replacement of a mass-revoked certificate offered", "certificate", certID,
		"mass_revocation", ev.MassRevocationID, "application", r.ApplicationID)
	return true, s.emit(ctx, tx, events.CoverageCSRRequested{
		ApplicationID: r.ApplicationID.String(), CertificateID: certID.String(), CustomerID: cust.ID.String(),
		OrderID: orderID, Recipient: rcpt, CommonName: prev.Server.CommonName, Deadline: sc.CoverageEnd,
		CoverageEnd: sc.CoverageEnd, RequestedAt: now, MassRevocationID: ev.MassRevocationID, RevocationReason: ev.Reason,
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
	if r.MassRevocationID != "" {
		srv.Decision = DecisionRevocationReplacement
	}
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
		if r.MassRevocationID != "" && sameKey(csr, prev.Server.CSR) {
			// A revoked certificate's key is not certified again (OP-5).
			return errs.InvalidField("csr", "the replacement of a revoked certificate needs a new key: this CSR has the revoked certificate's key")
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

// sameKey reports whether two PEM CSRs carry the same public key.
func sameKey(a, b string) bool {
	spki := func(s string) []byte {
		blk, _ := pem.Decode([]byte(s))
		if blk == nil {
			return nil
		}
		c, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			return nil
		}
		return c.RawSubjectPublicKeyInfo
	}
	ka, kb := spki(a), spki(b)
	return ka != nil && bytes.Equal(ka, kb)
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
	// A replacement of a certificate a mass revocation took (OP-5): its
	// ID and reason.
	MassRevocationID string `json:"mass_revocation_id,omitempty"`
	RevocationReason string `json:"revocation_reason,omitempty"`
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
		Status: "awaiting_csr", CSRDue: r.Deadline, RequestedAt: r.RequestedAt, CSRReceivedAt: r.CSRReceivedAt,
		MassRevocationID: r.MassRevocationID, RevocationReason: r.RevocationReason}
	if r.CSRReceivedAt != nil {
		v.Status = "applied"
	}
	return v, nil
}
