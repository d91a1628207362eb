package app

// Mails of server orders (SPEC §5 "Server orders"): the renewal notice
// with its invoice (SV-1), the invoice of a new order, the welcome of an
// imported certificate, the application guidance after payment (SV-3,
// SV-4), a failed payment, a declined renewal (SV-2), and an automatic
// re-application (SV-4). Each is queued in the event's transaction like
// every other mail (enqueue); secrets (the notice's one-click links, a
// password setup link) stay sealed in the delivery row until the send.

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/invoicepdf"
	"github.com/certlife/platform/services/notifier/internal/domain"
	"github.com/certlife/platform/services/notifier/internal/smtpsend"
	"github.com/certlife/platform/services/notifier/internal/store"
	"github.com/certlife/platform/services/notifier/internal/templates"
)

// onInvoiceIssued mails an invoice with its PDF: as the renewal notice
// when it carries one (one mail per certificate and notice offset, SV-1),
// else as the invoice of a new order (one mail per invoice).
func (a *App) onInvoiceIssued(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	inv, err := events.Decode[events.InvoiceIssued](env)
	if err != nil {
		return err
	}
	data := domain.Data{
		Product: events.ProductServer, OrderID: inv.OrderID, InvoiceID: inv.InvoiceID, Name: inv.Recipient.Name,
		Organization: inv.OrganizationName, Invoice: &inv,
	}
	r := domain.Request{
		Reason: domain.ReasonInvoiceIssued, Recipient: inv.Recipient.Email, Language: inv.Recipient.Language,
		Key: inv.InvoiceID, SubjectID: inv.OrderID, Data: data,
	}
	if n := inv.Notice; n != nil {
		r.Reason, r.Key = domain.ReasonServerRenewalNotice, domain.RenewalNoticeKey(n.CertificateID, n.DaysBefore)
		r.Data.CertificateID, r.Data.CommonName, r.Data.NotAfter = n.CertificateID, n.CommonName, n.NotAfter
		r.Data.DaysBefore, r.Data.Imported = n.DaysBefore, n.Imported
		r.Data.DaysLeft = domain.DaysLeft(n.NotAfter, a.Clock.Now())
		r.SealedLinks = n.SealedLinks
		// An imported certificate's setup link, kept because its notice
		// was due at once (onCertificateImported), rides with it.
		if r.SealedSetup, err = store.SetupLink(ctx, tx, n.CertificateID); err != nil {
			return err
		}
	}
	if err := a.enqueue(ctx, tx, env, r); err != nil {
		return err
	}
	if len(r.SealedSetup) > 0 {
		// It travels with this notice from here on; no copy stays behind.
		return store.ClearSetupLink(ctx, tx, inv.Notice.CertificateID)
	}
	return nil
}

// onCertificateImportedMail welcomes the customer of a certificate bought
// elsewhere, with the link to set their password, when its first notice
// is not due within domain.NoticeSoonWithin; otherwise the link rides with
// that notice and nothing is sent now (one mail, not two at once).
func (a *App) onCertificateImportedMail(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateImported](env)
	if err != nil {
		return err
	}
	offsets, err := store.Offsets(ctx, tx, domain.ScheduleServerImported)
	if err != nil {
		return err
	}
	if domain.NoticeSoon(p.NotAfter, env.OccurredAt, offsets) {
		return nil
	}
	data := domain.Data{
		Product: events.ProductServer, CertificateID: p.CertificateID, CommonName: p.CommonName,
		DNSNames: p.DNSNames, Serial: p.Serial, Name: p.Recipient.Name, Organization: p.Organization.NameEn,
		NotBefore: p.NotBefore, NotAfter: p.NotAfter, Imported: true,
	}
	if len(offsets) > 0 {
		data.NoticeAt, data.DaysBefore = domain.ReminderDue(p.NotAfter, offsets[0]), offsets[0]
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonCertificateImported, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.CertificateID, SubjectID: p.CertificateID, Data: data, SealedSetup: p.SealedSetupLink,
	})
}

// onOrderPlaced records the order's application, if any, for the mail
// of its payment (no mail of its own: the invoice follows).
func (a *App) onOrderPlaced(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.OrderPlaced](env)
	if err != nil {
		return err
	}
	return store.RecordOrder(ctx, tx, p.OrderID, p.ApplicationID, p.Kind, p.Source, p.PlacedAt)
}

// onPaymentConfirmed sends the application guidance once an order is paid
// (SV-3). A client application's payment (coupon) mails nothing.
func (a *App) onPaymentConfirmed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.PaymentConfirmed](env)
	if err != nil {
		return err
	}
	if p.OrderID == "" {
		return nil
	}
	if p.Recipient.Email == "" {
		a.Log.Warn("order paid without a recipient: no guidance mail", "order", p.OrderID, "event", env.ID)
		return nil
	}
	if p.ApplicationID == "" {
		// An order placed by its application: the mail says it proceeds.
		if p.ApplicationID, err = store.OrderApplication(ctx, tx, p.OrderID); err != nil {
			return err
		}
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonApplicationGuidance, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.OrderID, SubjectID: p.OrderID,
		Data: domain.Data{
			Product: events.ProductServer, OrderID: p.OrderID, ApplicationID: p.ApplicationID, Name: p.Recipient.Name,
			Amount: p.Amount, Currency: p.Currency, Method: p.Method, PaidAt: p.PaidAt, InvoiceID: p.InvoiceID,
		},
	})
}

// onPaymentFailed tells the customer a card payment failed: one mail per
// failure event (each is one attempt at the processor).
func (a *App) onPaymentFailed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.PaymentFailed](env)
	if err != nil {
		return err
	}
	if p.Recipient.Email == "" {
		a.Log.Warn("payment failed without a recipient: no mail", "order", p.OrderID, "event", env.ID)
		return nil
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonPaymentFailed, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.InvoiceID + "/" + env.ID.String(), SubjectID: p.OrderID,
		Data: domain.Data{
			Product: events.ProductServer, OrderID: p.OrderID, Name: p.Recipient.Name, Reason: p.Reason,
			InvoiceID: p.InvoiceID,
		},
	})
}

// onRenewalDeclinedMail confirms a declined renewal with what the
// customer's plan must change (SV-2).
func (a *App) onRenewalDeclinedMail(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.RenewalDeclined](env)
	if err != nil {
		return err
	}
	if p.Recipient.Email == "" {
		a.Log.Warn("renewal declined without a recipient: no mail", "certificate", p.CertificateID, "event", env.ID)
		return nil
	}
	c, err := store.CertificateFacts(ctx, tx, p.CertificateID)
	if err != nil {
		return err
	}
	declinedAt := p.DeclinedAt
	if declinedAt.IsZero() {
		declinedAt = env.OccurredAt
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonRenewalDeclined, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.CertificateID, SubjectID: p.CertificateID,
		Data: domain.Data{
			Product: events.ProductServer, CertificateID: p.CertificateID, OrderID: p.OrderID, Name: p.Recipient.Name,
			CommonName: c.CommonName, NotAfter: c.NotAfter, Advice: p.Advice, DeclinedAt: declinedAt,
		},
	})
}

// autoReapplied is the mail of a renewal application the platform made
// itself (SV-4), instead of the acceptance mail.
func (a *App) autoReapplied(ctx context.Context, tx pgx.Tx, env events.Envelope, p events.ApplicationProvisional, name, org string) error {
	ap, s := p.Application, p.Application.Server
	if org == "" {
		org = s.Organization.NameEn
	}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonAutoReapplied, Recipient: ap.Applicant.Email, Language: ap.Language,
		Key: ap.ID, SubjectID: ap.ID,
		Data: domain.Data{
			Product: ap.Product, Kind: ap.Kind, ApplicationID: ap.ID, OrderID: s.OrderID, Name: name, Organization: org,
			CommonName: s.CommonName, DNSNames: s.Names(), AcceptedAt: p.AcceptedAt, CancelDeadline: p.CancelDeadline,
			PreviousCertificateID: firstNonEmpty(s.RenewalOf, ap.PreviousCertificateID),
		},
	})
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// openLinks opens the sealed one-click links and setup link of a delivery
// into the view; they live only in this message's memory.
func (a *App) openLinks(d domain.Delivery, v *templates.View) error {
	if len(d.SealedLinks) > 0 {
		raw, err := a.Key.Open(d.SealedLinks)
		if err != nil {
			return fmt.Errorf("the notice's sealed links: %w", err)
		}
		var l domain.NoticeLinks
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("the notice's sealed links are not JSON: %w", err)
		}
		v.RenewURL, v.DeclineURL, v.SetupURL = l.Renew, l.Decline, l.Setup
	}
	if len(d.SealedSetup) > 0 && v.SetupURL == "" {
		raw, err := a.Key.Open(d.SealedSetup)
		if err != nil {
			return fmt.Errorf("the sealed setup link: %w", err)
		}
		v.SetupURL = string(raw)
	}
	return nil
}

// invoicePDF is the invoice's PDF attachment, in the mail's language.
func invoicePDF(d domain.Delivery) ([]smtpsend.Attachment, error) {
	inv := d.Data.Invoice
	if inv == nil || len(inv.Lines) == 0 {
		return nil, nil
	}
	pdf, err := invoicepdf.Render(*inv, domain.Language(d.Language))
	if err != nil {
		return nil, fmt.Errorf("invoice %s PDF: %w", inv.Number, err)
	}
	return []smtpsend.Attachment{{Name: domain.InvoicePDFName(inv.Number), ContentType: "application/pdf", Data: pdf}}, nil
}
