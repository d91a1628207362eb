package domain

import (
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// Certificate statuses, as the issuer's events tell them; they only move
// forward: ready → issued → revoked.
const (
	CertReady   = "ready"
	CertIssued  = "issued"
	CertRevoked = "revoked"
)

// Certificate is what intake knows of a certificate from the issuer's
// events: enough to decide what may be renewed or reissued and to
// prefill the forms.
type Certificate struct {
	ID            uuid.UUID
	ApplicationID uuid.UUID
	ApplicantID   uuid.UUID
	Status        string
	NotAfter      *time.Time
	RetrievedAt   *time.Time
	// Windows are the renewal and reissue windows the issuer announced in
	// CertificateIssued. The issuer owns PC-8 and PC-11; intake only
	// compares the clock with them (events.Windows).
	Windows *events.Windows
}

// RenewalOpen: an issued, unrevoked certificate inside its renewal window (PC-8).
func (c Certificate) RenewalOpen(now time.Time) bool {
	return c.Status == CertIssued && c.Windows != nil && c.Windows.RenewalOpen(now)
}

// ReissueOpen: an issued, unrevoked certificate inside its reissue window (PC-11).
func (c Certificate) ReissueOpen(now time.Time) bool {
	return c.Status == CertIssued && c.Windows != nil && c.Windows.ReissueOpen(now)
}

// CheckOpen refuses a renewal or reissue outside its window (409).
func (c Certificate) CheckOpen(kind string, now time.Time) error {
	switch {
	case kind == events.KindRenewal && !c.RenewalOpen(now):
		return errs.Conflict("not-eligible", "this certificate can be renewed from 30 days before its expiry until 365 days after it")
	case kind == events.KindReissue && !c.ReissueOpen(now):
		return errs.Conflict("not-eligible", "a reissue is offered only for an issued, unrevoked certificate with more than 30 days left")
	}
	return nil
}

// FollowUpOf is a renewal or reissue of cert, applied for at now with the
// checked data, before its acceptance sets the deadline (PC-8 … PC-11).
func FollowUpOf(prev Application, cert Certificate, kind string, data FollowUp, now time.Time) Application {
	certID := cert.ID
	return Application{
		ID: NewID(), ApplicantID: prev.ApplicantID, Product: prev.Product, Kind: kind, Status: StatusProvisional,
		Language: data.Language, Organization: data.Organization, Applicant: data.Applicant,
		PreviousCertificateID: &certID, AcceptedAt: now,
	}
}

// ImmutableFields can not be changed by a renewal or reissue (PC-9).
var ImmutableFields = []string{"organization.company_code", "organization.name_ja", "organization.name_en", "applicant.name_ja", "applicant.name_en"}

// Immutable lists the fields a renewal or reissue of an application with
// org cannot change: the organization's identifier too, once it has one
// (PC-1; an older application without one may add it).
func Immutable(org events.Organization) []string {
	if org.Identifier == "" {
		return ImmutableFields
	}
	return append(append([]string{}, ImmutableFields[:3]...), append([]string{"organization.identifier"}, ImmutableFields[3:]...)...)
}
