package app

// Server certificates (SPEC §4.2, §5 "Server orders"): customers, server
// applications and the orders they belong to, the renewal-or-new
// decision (SV-5, SV-11), the order's steps (SV-12), imported
// certificates (SV-1), renewal notices and intents (SV-1, SV-2) and the
// automatic re-application (SV-4).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// TimerAutoReapply makes the renewal application of a paid renewal order
// nobody applied for (SV-4); key = order ID.
const TimerAutoReapply = "auto_reapply"

// SetupTokenTTL is how long a password-setup link works.
const SetupTokenTTL = 30 * 24 * time.Hour

// SubmitServer accepts a server application (SPEC §5): the customer is
// the session's, or the account the body's e-mail and password name (an
// existing one is signed in on the sign-in path; a new one is created).
func (s *Service) SubmitServer(ctx context.Context, v domain.ServerValidated, who *domain.Principal, addr string) (Accepted, error) {
	now := s.Clock.Now()
	if err := s.refuseDuringMaintenance(ctx, now); err != nil {
		return Accepted{}, err
	}
	var cust domain.Customer
	create := false
	switch {
	case who != nil:
		c, err := store.GetCustomer(ctx, s.Pool, who.ApplicantID)
		if err != nil {
			return Accepted{}, notFound(err)
		}
		cust = c
	default:
		_, err := store.CustomerByEmail(ctx, s.Pool, v.Customer.Email)
		switch {
		case err == nil:
			if cust, err = s.authCustomer(ctx, v.Customer.Email, v.Password, addr); err != nil {
				return Accepted{}, err
			}
		case errors.Is(err, store.ErrNotFound):
			hash, err := s.Hasher.Hash(ctx, v.Password)
			if err != nil {
				return Accepted{}, err
			}
			cust = v.Customer
			cust.ID, cust.PasswordHash, create = domain.NewID(), &hash, true
		default:
			return Accepted{}, err
		}
	}
	var app domain.Application
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if create {
			if err := store.InsertCustomer(ctx, tx, cust, now); err != nil {
				if errors.Is(err, store.ErrExists) {
					return errs.Conflict("customer-exists", "an account with this e-mail was created meanwhile; apply again")
				}
				return err
			}
		}
		var err error
		app, err = s.applyServer(ctx, tx, cust, v, v.OrderID, false)
		return err
	})
	if err != nil {
		return Accepted{}, err
	}
	return Accepted{ID: app.ID, Status: app.Status, CancelDeadline: app.CancelDeadline}, nil
}

// applyServer is a server application of the customer, in tx: for the
// named order (which must be the customer's and open) or a new one; the
// renewal-or-new decision (SV-5, SV-11); then the normal application
// flow (provisional acceptance, cancel window).
func (s *Service) applyServer(ctx context.Context, tx pgx.Tx, cust domain.Customer, v domain.ServerValidated,
	orderID *uuid.UUID, auto bool) (domain.Application, error) {
	now := s.Clock.Now()
	var order domain.Order
	var prev *domain.ServerCertificate
	if orderID != nil {
		o, err := store.UpdateOrder(ctx, tx, *orderID, func(o *domain.Order) error {
			if o.CustomerID != cust.ID {
				return domain.ErrNotFound()
			}
			if err := o.CheckApplicable(); err != nil {
				return err
			}
			if v.TermMonths != o.TermMonths {
				return errs.InvalidField("term_months", "must be the order's term: "+itoa(o.TermMonths)+" months")
			}
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			return domain.Application{}, errs.InvalidField("order", "must be the ID of one of your orders")
		}
		if err != nil {
			if errs.Is(err, errs.KindNotFound) {
				return domain.Application{}, errs.InvalidField("order", "must be the ID of one of your orders")
			}
			return domain.Application{}, err
		}
		order = o
		if o.RenewalOf != nil {
			c, err := store.GetServerCertificate(ctx, tx, *o.RenewalOf, false)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return domain.Application{}, err
			}
			if err == nil {
				prev = &c
			}
		}
	} else {
		c, err := store.LatestServerCertificate(ctx, tx, cust.ID, v.Subject.CommonName)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return domain.Application{}, err
		}
		if err == nil {
			prev = &c
		}
	}
	d := domain.Decide(prev, domain.IssuedDN(v.Subject.CommonName, v.Organization), v.TermMonths, now)
	appID := domain.NewID()
	if orderID == nil {
		order = domain.Order{ID: domain.NewID(), CustomerID: cust.ID, Kind: d.Kind, Source: events.OrderSourceApplication,
			TermMonths: v.TermMonths, CreatedAt: now}
	}
	order.Kind, order.Decision, order.CarryOverDays, order.ApplicationID = d.Kind, d.Reason, d.CarryOverDays, &appID
	end := d.CoverageEnd
	order.CoverageEnd = &end
	if d.RenewalOf != nil && order.RenewalOf == nil {
		order.RenewalOf = d.RenewalOf
	}
	srv := &events.ServerApplication{
		CustomerID: cust.ID.String(), OrderID: order.ID.String(), TermMonths: v.TermMonths, CSR: v.CSR,
		CommonName: v.Subject.CommonName, Domains: v.Domains, DCV: v.DCV, TechnicalContact: v.Contact,
		Organization: v.Organization, Decision: d.Reason, CarryOverDays: d.CarryOverDays, CoverageEnd: d.CoverageEnd,
		AutoReapplied: auto, ReuseKey: v.ReuseKey,
	}
	app := domain.Application{
		ID: appID, ApplicantID: cust.ID, Product: events.ProductServer, Kind: d.Kind, Status: domain.StatusProvisional,
		Language: v.Language, Organization: events.Organization{NameEn: v.Organization.NameEn},
		Applicant:  events.Applicant{NameJa: cust.Name, NameEn: cust.Name, Email: cust.Email},
		AcceptedAt: now, Server: srv,
	}
	if d.Kind == events.KindRenewal {
		srv.RenewalOf = d.RenewalOf.String()
		app.PreviousCertificateID = d.RenewalOf
	}
	if orderID == nil {
		if err := store.InsertOrder(ctx, tx, order); err != nil {
			return app, err
		}
		ev := events.OrderPlaced{OrderID: order.ID.String(), CustomerID: cust.ID.String(), Product: events.ProductServer,
			Kind: order.Kind, Source: order.Source, TermMonths: order.TermMonths, Recipient: cust.Recipient(),
			OrganizationName: v.Organization.NameEn, CommonName: v.Subject.CommonName, ApplicationID: app.ID.String(),
			PlacedAt: now}
		if d.RenewalOf != nil {
			ev.RenewalOf = d.RenewalOf.String()
		}
		if err := s.emit(ctx, tx, ev, order.ID.String()); err != nil {
			return app, err
		}
	} else {
		if _, err := store.UpdateOrder(ctx, tx, order.ID, func(o *domain.Order) error {
			*o = order
			return nil
		}); err != nil {
			return app, err
		}
		if err := timer.Cancel(ctx, tx, TimerAutoReapply, order.ID.String()); err != nil {
			return app, err
		}
	}
	if err := s.accept(ctx, tx, &app); err != nil {
		return app, err
	}
	if order.PaidAt != nil {
		// Paid already: validation may start as soon as it is final.
		if err := store.AddTimeline(ctx, tx, app.ID, now, events.TypePaymentConfirmed, nil); err != nil {
			return app, err
		}
	}
	return app, nil
}

func itoa(n int) string { return jsonNumber(n) }

func jsonNumber(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// releaseOrder is a cancelled server application's effect on its order:
// an order the application made is cancelled with it; an order of a
// notice waits for another application.
func (s *Service) releaseOrder(ctx context.Context, tx pgx.Tx, app domain.Application) error {
	if app.Server == nil {
		return nil
	}
	id, err := uuid.Parse(app.Server.OrderID)
	if err != nil {
		return nil
	}
	now := s.Clock.Now()
	mine := false
	o, err := store.UpdateOrder(ctx, tx, id, func(o *domain.Order) error {
		if o.ApplicationID == nil || *o.ApplicationID != app.ID {
			return nil
		}
		mine = true
		if o.Source == events.OrderSourceApplication {
			o.CancelledAt = &now
		} else {
			o.ApplicationID = nil
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || !mine {
		return nil
	}
	if err != nil {
		return err
	}
	if o.CancelledAt != nil {
		return s.emit(ctx, tx, events.OrderCancelled{OrderID: o.ID.String(), CustomerID: o.CustomerID.String(),
			Reason: events.OrderCancelledApplication, CancelledAt: now}, o.ID.String())
	}
	// A paid renewal order waits for an application again (SV-4).
	return s.scheduleReapply(ctx, tx, o)
}

// scheduleReapply sets the SV-4 timer of a paid renewal order that waits
// for an application.
func (s *Service) scheduleReapply(ctx context.Context, tx pgx.Tx, o domain.Order) error {
	if o.Status() != domain.OrderAwaitingApplication || o.RenewalOf == nil || s.AutoReapplyAfter <= 0 {
		return nil
	}
	return timer.Schedule(ctx, tx, TimerAutoReapply, o.ID.String(), s.Clock.Now().Add(s.AutoReapplyAfter), nil)
}

// OrderView is an order as its customer sees it: the "My page" (SV-12).
type OrderView struct {
	ID            uuid.UUID     `json:"id"`
	Kind          string        `json:"kind"`
	Status        string        `json:"status"`
	Source        string        `json:"source"`
	TermMonths    int           `json:"term_months"`
	CertificateID *uuid.UUID    `json:"certificate_id,omitempty"`
	InvoiceID     *string       `json:"invoice_id,omitempty"`
	InvoiceNumber *string       `json:"invoice_number,omitempty"`
	ApplicationID *uuid.UUID    `json:"application_id,omitempty"`
	RenewalOf     *uuid.UUID    `json:"renewal_of,omitempty"`
	CarryOverDays *int          `json:"carry_over_days,omitempty"`
	Decision      string        `json:"decision"`
	CoverageEnd   *time.Time    `json:"coverage_end,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	Steps         []domain.Step `json:"steps"`
	// CoverageReissue: the latest reissue inside the coverage (IS-4).
	CoverageReissue *CoverageReissueView `json:"coverage_reissue,omitempty"`
}

func (s *Service) orderView(ctx context.Context, q store.Q, o domain.Order) (OrderView, error) {
	v := OrderView{ID: o.ID, Kind: o.Kind, Status: o.Status(), Source: o.Source, TermMonths: o.TermMonths,
		CertificateID: o.CertificateID, InvoiceID: o.InvoiceID, InvoiceNumber: o.InvoiceNumber,
		ApplicationID: o.ApplicationID, RenewalOf: o.RenewalOf, Decision: o.Decision, CoverageEnd: o.CoverageEnd,
		CreatedAt: o.CreatedAt}
	if o.Kind == events.KindRenewal && o.ApplicationID != nil {
		n := o.CarryOverDays
		v.CarryOverDays = &n
	}
	var names []string
	if o.ApplicationID != nil {
		app, err := store.GetApplication(ctx, q, *o.ApplicationID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return v, err
		}
		if err == nil && app.Server != nil {
			names = app.Server.Names()
		}
	}
	rows, err := store.Steps(ctx, q, o.ID)
	if err != nil {
		return v, err
	}
	v.Steps = domain.Steps(names, rows)
	if v.CoverageReissue, err = s.coverageReissueView(ctx, q, o.ID); err != nil {
		return v, err
	}
	return v, nil
}

// Orders lists the customer's orders, newest first (SV-12).
func (s *Service) Orders(ctx context.Context, who domain.Principal) ([]OrderView, error) {
	if err := who.RequireCustomer(); err != nil {
		return nil, err
	}
	list, err := store.CustomerOrders(ctx, s.Pool, who.ApplicantID, 200)
	if err != nil {
		return nil, err
	}
	out := make([]OrderView, 0, len(list))
	for _, o := range list {
		v, err := s.orderView(ctx, s.Pool, o)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Order returns one of the customer's orders; another's is a 404.
func (s *Service) Order(ctx context.Context, id uuid.UUID, who domain.Principal) (OrderView, error) {
	if err := who.RequireCustomer(); err != nil {
		return OrderView{}, err
	}
	o, err := store.GetOrder(ctx, s.Pool, id)
	if err != nil {
		return OrderView{}, notFound(err)
	}
	if o.CustomerID != who.ApplicantID {
		return OrderView{}, domain.ErrNotFound()
	}
	return s.orderView(ctx, s.Pool, o)
}

// serverView adds a server application's order and steps to its view.
func (s *Service) serverView(ctx context.Context, app domain.Application, v *View) error {
	if app.Server == nil {
		return nil
	}
	id, err := uuid.Parse(app.Server.OrderID)
	if err != nil {
		return nil
	}
	o, err := store.GetOrder(ctx, s.Pool, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	ov, err := s.orderView(ctx, s.Pool, o)
	if err != nil {
		return err
	}
	v.OrderID, v.Steps, v.Decision = &ov.ID, ov.Steps, app.Server.Decision
	if app.Server.RenewalOf != "" {
		r := app.Server.RenewalOf
		n := app.Server.CarryOverDays
		v.RenewalOf, v.CarryOverDays = &r, &n
	}
	end := app.Server.CoverageEnd
	v.CoverageEnd = &end
	v.AutoReapplied = app.Server.AutoReapplied
	return nil
}

// --- imported certificates (SV-1) and password setup ---

// Import is an operator's import of a certificate bought elsewhere.
type Import struct {
	Certificate  domain.ServerCertificate
	Customer     domain.Customer
	Organization events.ServerOrganization
}

// Imported is the answer to an import.
type Imported struct {
	CertificateID uuid.UUID `json:"certificate_id"`
	CustomerID    uuid.UUID `json:"customer_id"`
}

// AuditCertificateImported is the audit action of an import (OP-4).
const AuditCertificateImported = "certificate.imported"

// ImportCertificate registers a server certificate bought elsewhere and
// its customer (created without a password, which a one-time link sets),
// so that it is renewed from 90 days before its expiry (SV-1).
func (s *Service) ImportCertificate(ctx context.Context, in Import, actor string) (Imported, error) {
	now := s.Clock.Now()
	if !now.Before(in.Certificate.NotAfter) {
		return Imported{}, errs.InvalidField("pem", "the certificate expired on "+in.Certificate.NotAfter.UTC().Format(time.RFC3339)+
			"; an expired certificate is not renewed, apply for a new one")
	}
	var out Imported
	err := s.tx(ctx, func(tx pgx.Tx) error {
		cust, err := store.CustomerByEmail(ctx, tx, in.Customer.Email)
		if errors.Is(err, store.ErrNotFound) {
			cust = in.Customer
			cust.ID = domain.NewID()
			err = store.InsertCustomer(ctx, tx, cust, now)
		}
		if err != nil {
			return err
		}
		if _, err := store.ServerCertificateBySerial(ctx, tx, in.Certificate.IssuerDN, in.Certificate.Serial); err == nil {
			return errs.Conflict("already-imported", "this certificate (issuer and serial) is already registered")
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c := in.Certificate
		c.ID, c.CustomerID, c.Imported, c.Organization, c.CreatedAt = domain.NewID(), cust.ID, true, in.Organization, now
		c.CoverageEnd = c.NotAfter
		if _, err := store.InsertServerCertificate(ctx, tx, c); err != nil {
			if errors.Is(err, store.ErrExists) {
				return errs.Conflict("already-imported", "this certificate (issuer and serial) is already registered")
			}
			return err
		}
		ev := events.CertificateImported{CertificateID: c.ID.String(), CustomerID: cust.ID.String(),
			Recipient: cust.Recipient(), Organization: in.Organization, CommonName: c.DN.CommonName, DNSNames: c.DNSNames,
			Serial: c.Serial, IssuerDN: c.IssuerDN, NotBefore: c.NotBefore, NotAfter: c.NotAfter}
		if cust.PasswordHash == nil {
			link, err := s.setupLink(ctx, tx, cust.ID, now)
			if err != nil {
				return err
			}
			if ev.SealedSetupLink, err = seal.Seal(s.NotifierKey, []byte(link)); err != nil {
				return err
			}
		}
		if err := auditRecord(ctx, tx, now, actor, AuditCertificateImported, c.ID.String(), map[string]any{
			"customer_id": cust.ID, "serial": c.Serial, "issuer": c.IssuerDN, "common_name": c.DN.CommonName,
			"not_after": c.NotAfter,
		}); err != nil {
			return err
		}
		out = Imported{CertificateID: c.ID, CustomerID: cust.ID}
		return s.emit(ctx, tx, ev, c.ID.String())
	})
	return out, err
}

// setupLink makes a one-time password-setup link; only the token's hash
// is stored.
func (s *Service) setupLink(ctx context.Context, tx pgx.Tx, customer uuid.UUID, now time.Time) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(tok))
	if err := store.InsertSetupToken(ctx, tx, h[:], customer, now.Add(SetupTokenTTL)); err != nil {
		return "", err
	}
	return s.PublicURL + "/customers/password?token=" + tok, nil
}

// SetPassword sets an imported customer's password with the one-time
// token of the setup link. A bad, used or expired token is a 422 and
// costs no password hash.
func (s *Service) SetPassword(ctx context.Context, token, password string) error {
	h := sha256.Sum256([]byte(token))
	bad := errs.InvalidField("token", "this link is not valid, was used already or has expired; ask for a new one")
	var live bool
	if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM customer_setup_tokens WHERE token_hash = $1
		AND used_at IS NULL AND expires_at > $2)`, h[:], s.Clock.Now()).Scan(&live); err != nil {
		return err
	}
	if !live {
		return bad
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		id, err := store.UseSetupToken(ctx, tx, h[:], s.Clock.Now())
		if errors.Is(err, store.ErrNotFound) {
			return bad
		}
		if err != nil {
			return err
		}
		return store.SetCustomerPassword(ctx, tx, id, hash)
	})
}

// --- the server events intake follows ---

// orderOf finds the order an event is about: its order ID, else its
// application's.
func (s *Service) orderOf(ctx context.Context, tx pgx.Tx, orderID, applicationID string) (uuid.UUID, bool, error) {
	if id, err := uuid.Parse(orderID); err == nil {
		return id, true, nil
	}
	id, err := uuid.Parse(applicationID)
	if err != nil {
		return uuid.Nil, false, nil
	}
	app, err := store.GetApplication(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, err
	}
	if app.Server == nil {
		return uuid.Nil, false, nil
	}
	oid, err := uuid.Parse(app.Server.OrderID)
	return oid, err == nil, nil
}

// step records a step of the event's order (when it is ours) and adds
// the event to the application's timeline.
func (s *Service) step(ctx context.Context, tx pgx.Tx, env events.Envelope, orderID, applicationID string, r domain.StepRow,
	fn func(*domain.Application) error) error {
	id, ok, err := s.orderOf(ctx, tx, orderID, applicationID)
	if err != nil {
		return err
	}
	if ok {
		if _, err := store.GetOrder(ctx, tx, id); err == nil {
			if err := store.SetStep(ctx, tx, id, r); err != nil {
				return err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if applicationID == "" {
		return nil
	}
	return s.withApplication(ctx, tx, env, applicationID, fn)
}

func advance(to string) func(*domain.Application) error {
	return func(a *domain.Application) error {
		a.Status = domain.Advance(a.Status, to)
		return nil
	}
}

func (s *Service) onInvoiceIssued(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.InvoiceIssued](env)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(ev.OrderID)
	if err != nil {
		return nil
	}
	o, err := store.UpdateOrder(ctx, tx, id, func(o *domain.Order) error {
		o.InvoiceID, o.InvoiceNumber = &ev.InvoiceID, &ev.Number
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn("invoice for an unknown order", "order", ev.OrderID)
		return nil
	}
	if err != nil {
		return err
	}
	if o.PaidAt == nil {
		if err := store.SetStep(ctx, tx, id, domain.StepRow{Name: domain.StepPayment, Status: domain.StepPending, At: ev.IssuedAt,
			Detail: "invoice " + ev.Number + " issued, due " + ev.DueAt.UTC().Format("2006-01-02")}); err != nil {
			return err
		}
	}
	if o.ApplicationID != nil {
		return s.withApplication(ctx, tx, env, o.ApplicationID.String(), nil)
	}
	return nil
}

// onOrderPaid is PaymentConfirmed of an order (SV-3): the order is paid;
// a renewal order nobody applied for yet gets its auto-reapply timer (SV-4).
func (s *Service) onOrderPaid(ctx context.Context, tx pgx.Tx, env events.Envelope, ev events.PaymentConfirmed) error {
	id, err := uuid.Parse(ev.OrderID)
	if err != nil {
		return nil
	}
	at := ev.PaidAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	o, err := store.UpdateOrder(ctx, tx, id, func(o *domain.Order) error {
		o.PaidAt, o.RefundedAt = &at, nil
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn("payment for an unknown order", "order", ev.OrderID)
		return nil
	}
	if err != nil {
		return err
	}
	detail := "paid"
	if ev.Method != "" {
		detail = "paid by " + ev.Method
	}
	if err := store.SetStep(ctx, tx, id, domain.StepRow{Name: domain.StepPayment, Status: domain.StepDone, At: at, Detail: detail}); err != nil {
		return err
	}
	if o.ApplicationID != nil {
		return s.withApplication(ctx, tx, env, o.ApplicationID.String(), advance(domain.StatusValidating))
	}
	return s.scheduleReapply(ctx, tx, o)
}

func (s *Service) onPaymentFailed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.PaymentFailed](env)
	if err != nil {
		return err
	}
	return s.orderStep(ctx, tx, env, ev.OrderID, domain.StepRow{Name: domain.StepPayment, Status: domain.StepFailed,
		At: env.OccurredAt, Detail: "payment failed: " + ev.Reason}, nil)
}

func (s *Service) onPaymentRefunded(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.PaymentRefunded](env)
	if err != nil {
		return err
	}
	now := env.OccurredAt
	return s.orderStep(ctx, tx, env, ev.OrderID, domain.StepRow{Name: domain.StepPayment, Status: domain.StepRefunded,
		At: now, Detail: "the payment was refunded"}, func(o *domain.Order) {
		o.PaidAt, o.RefundedAt = nil, &now
	})
}

// orderStep records a step of an order named by ID and lets fn change it.
func (s *Service) orderStep(ctx context.Context, tx pgx.Tx, env events.Envelope, orderID string, r domain.StepRow, fn func(*domain.Order)) error {
	id, err := uuid.Parse(orderID)
	if err != nil {
		return nil
	}
	o, err := store.UpdateOrder(ctx, tx, id, func(o *domain.Order) error {
		if fn != nil {
			fn(o)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn("event for an unknown order", "type", env.Type, "order", orderID)
		return nil
	}
	if err != nil {
		return err
	}
	if err := store.SetStep(ctx, tx, id, r); err != nil {
		return err
	}
	if o.ApplicationID != nil {
		return s.withApplication(ctx, tx, env, o.ApplicationID.String(), nil)
	}
	return nil
}

func (s *Service) onDomainValidated(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.DomainValidated](env)
	if err != nil {
		return err
	}
	return s.step(ctx, tx, env, ev.OrderID, ev.ApplicationID, domain.StepRow{Name: domain.StepDomainValidation, Key: ev.Domain,
		Status: domain.StepDone, At: ev.ValidatedAt, Detail: "validated by the " + ev.Method + " method"}, advance(domain.StatusValidating))
}

func (s *Service) onDomainValidationFailed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.DomainValidationFailed](env)
	if err != nil {
		return err
	}
	status := domain.StepPending
	if ev.Final {
		status = domain.StepFailed
	}
	at := ev.FailedAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	return s.step(ctx, tx, env, ev.OrderID, ev.ApplicationID, domain.StepRow{Name: domain.StepDomainValidation, Key: ev.Domain,
		Status: status, At: at, Detail: ev.Detail}, advance(domain.StatusValidating))
}

func (s *Service) onOrganizationVerified(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.OrganizationVerified](env)
	if err != nil {
		return err
	}
	detail := "matches the registry record " + ev.DUNS
	if ev.Reused {
		detail = "verified earlier, reused until " + ev.ValidUntil.UTC().Format("2006-01-02")
	}
	return s.step(ctx, tx, env, ev.OrderID, ev.ApplicationID, domain.StepRow{Name: domain.StepOrganization,
		Status: domain.StepDone, At: ev.VerifiedAt, Detail: detail}, advance(domain.StatusValidating))
}

func (s *Service) onPhoneVerified(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.PhoneVerified](env)
	if err != nil {
		return err
	}
	r := domain.StepRow{Name: domain.StepPhone, Status: domain.StepDone, At: ev.At, Detail: "confirmed by phone"}
	if !ev.Confirmed {
		r.Status, r.Detail = domain.StepFailed, "the phone check did not confirm the application"
	}
	return s.step(ctx, tx, env, ev.OrderID, ev.ApplicationID, r, advance(domain.StatusValidating))
}

func (s *Service) onReviewApproved(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ReviewApproved](env)
	if err != nil {
		return err
	}
	if ev.Application.Server == nil {
		return s.onTimeline(ctx, tx, env)
	}
	return s.step(ctx, tx, env, ev.Application.Server.OrderID, ev.Application.ID, domain.StepRow{Name: domain.StepReview,
		Status: domain.StepDone, At: env.OccurredAt, Detail: "approved"}, advance(domain.StatusApproved))
}

// reviewRejectedStep records a rejected review on a server order.
func (s *Service) reviewRejectedStep(ctx context.Context, tx pgx.Tx, env events.Envelope, ev events.ReviewRejected) error {
	id, ok, err := s.orderOf(ctx, tx, "", ev.ApplicationID)
	if err != nil || !ok {
		return err
	}
	if _, err := store.GetOrder(ctx, tx, id); errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return store.SetStep(ctx, tx, id, domain.StepRow{Name: domain.StepReview, Status: domain.StepFailed, At: env.OccurredAt, Detail: ev.Reason})
}

func (s *Service) onIssuanceFailed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.CertificateIssuanceFailed](env)
	if err != nil {
		return err
	}
	r := domain.StepRow{Name: domain.StepIssuance, Status: domain.StepFailed, At: ev.FailedAt, Detail: ev.Detail}
	if r.At.IsZero() {
		r.At = env.OccurredAt
	}
	if !ev.Final {
		r.Status = domain.StepPending
		if !ev.NextAttemptAt.IsZero() {
			r.Detail += "; next attempt at " + ev.NextAttemptAt.UTC().Format(time.RFC3339)
		}
	}
	return s.step(ctx, tx, env, "", ev.ApplicationID, r, nil)
}

// onServerIssued records a server certificate we issued (SV-5, SV-11 need
// its DN, expiry and coverage), marks its order and application issued.
func (s *Service) onServerIssued(ctx context.Context, tx pgx.Tx, env events.Envelope, ev events.CertificateIssued) error {
	certID, err := uuid.Parse(ev.CertificateID)
	if err != nil {
		return nil
	}
	appID, err := uuid.Parse(ev.ApplicationID)
	if err != nil {
		return nil
	}
	app, err := store.UpdateApplication(ctx, tx, appID, func(a *domain.Application) error {
		before := a.Status
		a.Status = domain.Advance(a.Status, domain.StatusIssued)
		s.reached(ctx, a, before)
		a.CertificateID = &certID
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && app.Server == nil) {
		s.Log.Warn("server certificate of an unknown application", "application", ev.ApplicationID)
		return nil
	}
	if err != nil {
		return err
	}
	if err := store.AddTimeline(ctx, tx, app.ID, env.OccurredAt, env.Type, &env.ID); err != nil {
		return err
	}
	srv := app.Server
	orderID, _ := uuid.Parse(srv.OrderID)
	coverage := srv.CoverageEnd
	if coverage.Before(ev.NotAfter) {
		coverage = ev.NotAfter
	}
	custID := app.ApplicantID
	if _, err := store.InsertServerCertificate(ctx, tx, domain.ServerCertificate{
		ID: certID, CustomerID: custID, ApplicationID: &app.ID, OrderID: &orderID,
		DN: domain.IssuedDN(srv.CommonName, srv.Organization), DNSNames: ev.DNSNames, Serial: ev.Serial, IssuerDN: ev.Issuer,
		NotBefore: ev.NotBefore, NotAfter: ev.NotAfter, CoverageEnd: coverage, Organization: srv.Organization,
		CreatedAt: s.Clock.Now(),
	}); err != nil && !errors.Is(err, store.ErrExists) {
		return err
	}
	if _, err := store.UpdateOrder(ctx, tx, orderID, func(o *domain.Order) error {
		o.CertificateID = &certID
		return nil
	}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return store.SetStep(ctx, tx, orderID, domain.StepRow{Name: domain.StepIssuance, Status: domain.StepDone, At: ev.NotBefore,
		Detail: "serial " + ev.Serial + ", valid until " + ev.NotAfter.UTC().Format("2006-01-02")})
}
