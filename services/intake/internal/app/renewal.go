package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

func auditRecord(ctx context.Context, tx pgx.Tx, at time.Time, actor, action, subject string, details any) error {
	return audit.Record(ctx, tx, at, actor, action, subject, details)
}

// onServerRenewalDue turns the notifier's renewal notice of a server
// certificate (SV-1: 60 days before expiry, 90 for imported ones) into a
// renewal order — one per certificate and cycle, none once declined or
// renewed — and emits OrderPlaced with the notice, for billing's invoice
// and the notifier's one mail. The notice carries signed one-click
// intent links (SV-2), sealed for the notifier.
func (s *Service) onServerRenewalDue(ctx context.Context, tx pgx.Tx, env events.Envelope, ev events.RenewalDue) error {
	certID, err := uuid.Parse(ev.CertificateID)
	if err != nil {
		return nil
	}
	cert, err := store.GetServerCertificate(ctx, tx, certID, true)
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn("renewal notice of an unknown server certificate", "certificate", ev.CertificateID)
		return nil
	}
	if err != nil {
		return err
	}
	if cert.DeclinedAt != nil {
		return nil
	}
	renewed, err := store.Renewed(ctx, tx, cert.ID)
	if err != nil || renewed {
		return err
	}
	cust, err := store.GetCustomer(ctx, tx, cert.CustomerID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	cycle := cert.NotAfter
	o := domain.Order{ID: domain.NewID(), CustomerID: cust.ID, Kind: events.KindRenewal, Source: events.OrderSourceNotice,
		TermMonths: s.ServerTermMonths, RenewalOf: &cert.ID, Cycle: &cycle,
		Decision:  "renewal, to be confirmed by the application (SV-5: a changed name or an expired certificate makes it new)",
		CreatedAt: now}
	inserted, err := store.InsertNoticeOrder(ctx, tx, o)
	if err != nil || !inserted {
		return err // a second notice of this cycle: the order exists
	}
	links := map[string]string{
		"renew":   s.IntentURL(cert.ID, true, cert.NotAfter),
		"decline": s.IntentURL(cert.ID, false, cert.NotAfter),
	}
	if cust.PasswordHash == nil {
		if links["setup"], err = s.setupLink(ctx, tx, cust.ID, now); err != nil {
			return err
		}
	}
	raw, _ := json.Marshal(links)
	sealed, err := seal.Seal(s.NotifierKey, raw)
	if err != nil {
		return err
	}
	out, err := events.Follow(env, events.OrderPlaced{OrderID: o.ID.String(), CustomerID: cust.ID.String(),
		Product: events.ProductServer, Kind: o.Kind, Source: o.Source, TermMonths: o.TermMonths, Recipient: cust.Recipient(),
		OrganizationName: cert.Organization.NameEn, CommonName: cert.DN.CommonName, RenewalOf: cert.ID.String(),
		Notice: &events.RenewalNotice{CertificateID: cert.ID.String(), CommonName: cert.DN.CommonName, NotAfter: cert.NotAfter,
			DaysBefore: ev.DaysBefore, Imported: cert.Imported, SealedLinks: sealed},
		PlacedAt: now}, now)
	if err != nil {
		return err
	}
	return busEmit(ctx, tx, out)
}

// intentMAC signs a one-click intent link: certificate, choice, expiry.
func (s *Service) intentMAC(cert uuid.UUID, renew bool, expires int64) string {
	m := hmac.New(sha256.New, s.CodeKey)
	m.Write([]byte("certlife renewal intent v1\x00" + cert.String() + "\x00" + strconv.FormatBool(renew) + "\x00" +
		strconv.FormatInt(expires, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// IntentURL is the signed one-click link recording the intent (SV-2); it
// works until the certificate's expiry.
func (s *Service) IntentURL(cert uuid.UUID, renew bool, until time.Time) string {
	exp := until.Unix()
	q := url.Values{"certificate": {cert.String()}, "renew": {strconv.FormatBool(renew)},
		"expires": {strconv.FormatInt(exp, 10)}, "sig": {s.intentMAC(cert, renew, exp)}}
	return s.PublicURL + "/v1/renewal-intents?" + q.Encode()
}

// CheckIntentLink verifies a signed intent link's parameters.
func (s *Service) CheckIntentLink(q url.Values) (uuid.UUID, bool, error) {
	bad := errs.Forbidden("this link is not valid or has expired")
	cert, err := uuid.Parse(q.Get("certificate"))
	if err != nil {
		return cert, false, bad
	}
	renew, err := strconv.ParseBool(q.Get("renew"))
	if err != nil {
		return cert, false, bad
	}
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return cert, false, bad
	}
	want := s.intentMAC(cert, renew, exp)
	if !hmac.Equal([]byte(want), []byte(q.Get("sig"))) || s.Clock.Now().Unix() > exp {
		return cert, false, bad
	}
	return cert, renew, nil
}

// Intent is the recorded renewal intent (SV-2).
type Intent struct {
	CertificateID uuid.UUID  `json:"certificate_id"`
	Renew         bool       `json:"renew"`
	RecordedAt    time.Time  `json:"recorded_at"`
	Cancelled     []string   `json:"cancelled_orders,omitempty"`
	Advice        string     `json:"advice,omitempty"`
	DeclinedAt    *time.Time `json:"declined_at,omitempty"`
}

// RenewalIntent records whether the customer will renew the certificate
// (SV-2). customer nil: a signed link, which names the certificate's
// customer itself. Declining stops the notices (RenewalDeclined, with
// what a hosting plan needing a dedicated certificate must change) and
// cancels the open renewal orders; an order already paid or applied for
// cannot be declined (409). Declining twice changes nothing.
func (s *Service) RenewalIntent(ctx context.Context, certID uuid.UUID, renew bool, customer *uuid.UUID) (Intent, error) {
	now := s.Clock.Now()
	out := Intent{CertificateID: certID, Renew: renew, RecordedAt: now}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		cert, err := store.GetServerCertificate(ctx, tx, certID, true)
		if err != nil {
			return notFound(err)
		}
		if customer != nil && cert.CustomerID != *customer {
			return domain.ErrNotFound()
		}
		cust, err := store.GetCustomer(ctx, tx, cert.CustomerID)
		if err != nil {
			return err
		}
		if renew {
			return store.SetRenewalIntent(ctx, tx, cert.ID, true, now)
		}
		out.Advice = domain.DeclineAdvice(cust.Language)
		if cert.DeclinedAt != nil {
			out.RecordedAt, out.DeclinedAt = *cert.DeclinedAt, cert.DeclinedAt
			return nil
		}
		ids, err := store.OpenRenewalOrders(ctx, tx, cert.ID)
		if err != nil {
			return err
		}
		var first string
		for _, id := range ids {
			o, err := store.GetOrder(ctx, tx, id)
			if err != nil {
				return err
			}
			if o.PaidAt != nil || o.ApplicationID != nil {
				return errs.Conflict("renewal-under-way", "the renewal of this certificate is already paid or applied for; it cannot be declined here")
			}
		}
		for _, id := range ids {
			if _, err := store.UpdateOrder(ctx, tx, id, func(o *domain.Order) error {
				o.CancelledAt = &now
				return nil
			}); err != nil {
				return err
			}
			if first == "" {
				first = id.String()
			}
			out.Cancelled = append(out.Cancelled, id.String())
			if err := s.emit(ctx, tx, events.OrderCancelled{OrderID: id.String(), CustomerID: cust.ID.String(),
				Reason: events.OrderCancelledDeclined, CancelledAt: now}, id.String()); err != nil {
				return err
			}
		}
		if err := store.SetRenewalIntent(ctx, tx, cert.ID, false, now); err != nil {
			return err
		}
		out.DeclinedAt = &now
		return s.emit(ctx, tx, events.RenewalDeclined{CertificateID: cert.ID.String(), CustomerID: cust.ID.String(),
			OrderID: first, Recipient: cust.Recipient(), Advice: out.Advice, DeclinedAt: now}, cert.ID.String())
	})
	return out, err
}

// AutoReapply is the SV-4 timer: a paid renewal order with no application
// after AUTO_REAPPLY_AFTER gets the renewal application made with the
// previous application's data and CSR, marked AutoReapplied so that the
// notifier tells the customer. Nothing happens when the order was
// applied for, cancelled or refunded meanwhile, or when there is no
// previous application (a certificate bought elsewhere).
func (s *Service) AutoReapply(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	id, err := uuid.Parse(t.Key)
	if err != nil {
		return nil
	}
	o, err := store.GetOrder(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.Status() != domain.OrderAwaitingApplication || o.RenewalOf == nil {
		return nil
	}
	prev, err := store.GetServerCertificate(ctx, tx, *o.RenewalOf, false)
	if err != nil {
		return nil
	}
	if prev.ApplicationID == nil {
		s.Log.Info("no previous application to re-apply with (imported certificate)", "order", o.ID)
		return nil
	}
	prevApp, err := store.GetApplication(ctx, tx, *prev.ApplicationID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && prevApp.Server == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	cust, err := store.GetCustomer(ctx, tx, o.CustomerID)
	if err != nil {
		return err
	}
	p := prevApp.Server
	v := domain.ServerValidated{Language: prevApp.Language, TermMonths: o.TermMonths, CSR: p.CSR,
		Subject: domain.DN{CommonName: p.CommonName}, Domains: p.Domains, DCV: p.DCV, Contact: p.TechnicalContact,
		Organization: p.Organization, Customer: cust, ReuseKey: p.ReuseKey}
	_, err = s.applyServer(ctx, tx, cust, v, &o.ID, true)
	return err
}
