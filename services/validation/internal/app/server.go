package app

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/validation/internal/domain"
	"github.com/certlife/platform/services/validation/internal/store"
)

// ConsumerServer is the durable consumer of the server order flow.
const ConsumerServer = "validation-server"

// Timer kinds of the server order flow.
const (
	// TimerDCVCheck re-checks a pending DNS or HTTP validation (key: the
	// validation's ID) until it validates or its random value expires.
	TimerDCVCheck = "validation.dcv-check"
	// TimerOrgRetry looks an organization up again while its number is
	// not in the registry (key: the application's ID).
	TimerOrgRetry = "validation.org-retry"
)

// Default intervals of the server flow's timers.
const (
	DefaultCheckEvery    = 5 * time.Minute
	DefaultOrgRetryEvery = time.Hour
	// OrgRetryFor is how long an organization missing from the registry
	// is looked up again before the application is refused.
	OrgRetryFor = 30 * domain.Day
)

// Server is the server order flow (SV-7 … SV-9, VA-1 … VA-9): on final
// acceptance of a server application it starts a validation per name,
// matches the organization with the registry and opens the phone check
// (or reuses verified data, VA-5); it re-checks pending DNS and HTTP
// validations on a durable timer; and once every check passed and the
// order is paid, the application's review enters the queue (or is
// approved, REVIEW_AUTO_APPROVE), so that ReviewApproved carries the
// application to the issuer.
type Server struct {
	Pool  *pgxpool.Pool
	Clock clock.Clock
	Log   *slog.Logger
	Queue *Queue
	DCV   *DCV
	Orgs  *Orgs
	// CheckEvery is the interval of DNS/HTTP re-checks; OrgRetryEvery of
	// registry look-ups of a missing organization.
	CheckEvery    time.Duration
	OrgRetryEvery time.Duration
}

// Consumer is the server flow's durable consumer.
func (s *Server) Consumer() bus.Consumer {
	return bus.Consumer{
		Name: ConsumerServer,
		Handlers: map[string]bus.Handler{
			events.TypeCancelWindowClosed: s.windowClosed,
			events.TypePaymentConfirmed:   s.paymentConfirmed,
			events.TypePaymentRefunded:    s.paymentRefunded,
		},
	}
}

// Install registers the timers' handlers and makes DCV emit the check
// events.
func (s *Server) Install(w *timer.Worker) {
	if s.CheckEvery <= 0 {
		s.CheckEvery = DefaultCheckEvery
	}
	if s.OrgRetryEvery <= 0 {
		s.OrgRetryEvery = DefaultOrgRetryEvery
	}
	s.DCV.OnChecked = s.onChecked
	s.Queue.BeforeApprove = s.beforeApprove
	s.Queue.deferServerApproval = true
	if w != nil {
		w.Handle(TimerAutoApprove, s.autoApproveTimer)
		w.Handle(TimerDCVCheck, s.checkTimer)
		w.Handle(TimerOrgRetry, s.orgRetryTimer)
	}
}

func emit(ctx context.Context, tx pgx.Tx, p events.Payload, now time.Time, correlationID string) error {
	env, err := events.New(p, now, correlationID)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}

// windowClosed starts the checks of a finally accepted server
// application; other applications are the review queue's alone.
func (s *Server) windowClosed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	w, err := events.Decode[events.CancelWindowClosed](env)
	if err != nil {
		return err
	}
	a := w.Application
	if a.Server == nil {
		return nil
	}
	now := s.Clock.Now()
	sv := a.Server
	inserted, err := store.InsertServerCheck(ctx, tx, domain.ServerCheck{
		ApplicationID: a.ID, CustomerID: sv.CustomerID, OrderID: sv.OrderID, DUNS: sv.Organization.DUNS,
		CorrelationID: env.CorrelationID, OrgStatus: domain.OrgPending, PhoneStatus: domain.PhoneNone, CreatedAt: now,
	})
	if err != nil || !inserted {
		return err // a redelivery: the checks exist
	}
	if err := s.startDomains(ctx, tx, a, env.CorrelationID, now); err != nil {
		return err
	}
	if err := s.verifyOrganization(ctx, tx, a, now); err != nil {
		return err
	}
	at := w.ClosedAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	payment, err := store.OrderPayment(ctx, tx, sv.OrderID)
	if err != nil {
		return err
	}
	return s.updateReview(ctx, tx, a.ID, now, func(r *domain.Review) {
		r.RecordFinal(a, at, env.CorrelationID)
		if payment != nil {
			r.RecordPayment(*payment, env.CorrelationID)
		}
	})
}

// startDomains starts a validation of every name with the customer's
// method (SV-8), reusing a still usable validation of the same customer
// (VA-5): those are validated at once.
func (s *Server) startDomains(ctx context.Context, tx pgx.Tx, a events.Application, correlationID string, now time.Time) error {
	sv := a.Server
	method := domain.Method(sv.DCV.Method)
	if method == domain.MethodACMEDNS || method == domain.MethodACMEHTTP {
		// An ACME order's names are validated by its challenges (§4.10).
		s.Log.Info("ACME application: domains are validated by the ACME challenges", "application", a.ID)
		return nil
	}
	accountURI := sv.ACMEAccountURI
	if accountURI == "" {
		accountURI = s.DCV.ManualAccountURI(sv.CustomerID)
	}
	for _, name := range sv.Names() {
		req := StartRequest{ApplicationID: a.ID, CustomerID: sv.CustomerID, AccountURI: accountURI, Domain: name,
			Method: method, ApproverEmail: sv.DCV.ApproverEmail, Language: a.Language, CorrelationID: correlationID}
		if method == domain.MethodEmail {
			if n, err := domain.NormalizeDomain(name); err == nil && !approverFits(n, req.ApproverEmail) {
				// One approver rarely fits every name: the others get the
				// first constructed address; the customer may change it.
				if addrs := domain.ApproverAddresses(n); len(addrs) > 0 {
					req.ApproverEmail = addrs[0]
				}
			}
		}
		in, err := s.DCV.StartDomainValidation(ctx, tx, req)
		if errs.Is(err, errs.KindInvalid) || errs.Is(err, errs.KindUnavailable) {
			// The method cannot validate this name (HTTP for a wildcard, an
			// e-mail method past its sunset or not configured): DNS, which
			// the customer may change (PUT …/dcv).
			s.Log.Warn("domain validation: the chosen method cannot be used, DNS instead", "application", a.ID,
				"domain", name, "method", method, "error", err)
			req.Method, req.ApproverEmail = domain.MethodDNS, ""
			in, err = s.DCV.StartDomainValidation(ctx, tx, req)
		}
		if err != nil {
			return err
		}
		if in.Status == domain.DCVValidated {
			if err := s.emitValidated(ctx, tx, a.ID, sv.OrderID, in.ValidationID, in.Domain, string(in.Method), *in.ValidatedAt, correlationID, now); err != nil {
				return err
			}
			continue
		}
		if in.Method != domain.MethodEmail {
			if err := timer.Schedule(ctx, tx, TimerDCVCheck, in.ValidationID.String(), now, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func approverFits(d, email string) bool {
	for _, a := range domain.ApproverAddresses(d) {
		if a == email {
			return true
		}
	}
	return false
}

func (s *Server) emitValidated(ctx context.Context, tx pgx.Tx, applicationID, orderID string, id uuid.UUID, d, method string, at time.Time, correlationID string, now time.Time) error {
	return emit(ctx, tx, events.DomainValidated{ApplicationID: applicationID, OrderID: orderID, ValidationID: id.String(),
		Domain: d, Method: method, ValidatedAt: at, ValidUntil: at.Add(domain.DomainReuse(now))}, now, correlationID)
}

// csrSubject reads the subject of the application's CSR.
func csrSubject(pemCSR string) (domain.Subject, error) {
	b, _ := pem.Decode([]byte(pemCSR))
	if b == nil {
		return domain.Subject{}, fmt.Errorf("the CSR is not PEM")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return domain.Subject{}, fmt.Errorf("the CSR cannot be read: %w", err)
	}
	return domain.SubjectOf(csr.Subject), nil
}

// verifyOrganization matches the CSR's organization with the registry's
// English record (SV-7) and then either reuses an earlier verification of
// the organization within its period (VA-5: no phone call) or opens the
// phone check to the registry's number (SV-9). A mismatch is final: the
// application is refused with both values; a number missing from the
// registry is looked up again later.
func (s *Server) verifyOrganization(ctx context.Context, tx pgx.Tx, a events.Application, now time.Time) error {
	sv := a.Server
	c, err := store.GetServerCheck(ctx, tx, a.ID)
	if err != nil {
		return err
	}
	if c.OrgStatus != domain.OrgPending {
		return nil
	}
	subject, err := csrSubject(sv.CSR)
	if err != nil {
		return s.orgMismatch(ctx, tx, c, nil, fmt.Sprintf("the organization of %s cannot be verified: %v", sv.Organization.DUNS, err), now)
	}
	res, err := s.Orgs.VerifyOrganization(ctx, tx, VerifyRequest{ApplicationID: a.ID, Number: sv.Organization.DUNS, Subject: subject})
	if errs.Is(err, errs.KindInvalid) {
		return s.orgMismatch(ctx, tx, c, nil, fmt.Sprintf("%q is not a registry number (nine digits)", sv.Organization.DUNS), now)
	}
	if err != nil {
		return err
	}
	switch {
	case !res.Found:
		if now.Sub(c.CreatedAt) >= OrgRetryFor {
			return s.orgMismatch(ctx, tx, c, nil, fmt.Sprintf("organization %s has not been in the independent registry for %d days (SV-7)",
				sv.Organization.DUNS, int(OrgRetryFor/domain.Day)), now)
		}
		detail := fmt.Sprintf("organization %s is not in the independent registry (SV-7): looked up again every %s", sv.Organization.DUNS, s.OrgRetryEvery)
		if _, err := store.UpdateServerCheck(ctx, tx, a.ID, now, func(c *domain.ServerCheck) error {
			c.OrgDetail = detail
			return nil
		}); err != nil {
			return err
		}
		if err := timer.Schedule(ctx, tx, TimerOrgRetry, a.ID, now.Add(s.OrgRetryEvery), nil); err != nil {
			return err
		}
		if c.OrgDetail == detail {
			return nil // told at the first look-up, not at every retry
		}
		return emit(ctx, tx, events.OrganizationVerificationFailed{ApplicationID: a.ID, OrderID: sv.OrderID, DUNS: sv.Organization.DUNS,
			Detail: detail, FailedAt: now}, now, c.CorrelationID)
	case !res.Matched:
		org := res.Organization
		c.Registry = &org
		return s.orgMismatch(ctx, tx, c, res.Mismatches, domain.MismatchDetail(org.Number, res.Mismatches), now)
	}
	org := res.Organization
	period := domain.OrganizationReuse(now)
	earlier, err := store.ReusableOrganization(ctx, tx, org.Number, a.ID, now.Add(-period))
	if err != nil {
		return err
	}
	ev := events.OrganizationVerified{ApplicationID: a.ID, OrderID: sv.OrderID, DUNS: org.Number, VerifiedAt: now}
	c, err = store.UpdateServerCheck(ctx, tx, a.ID, now, func(c *domain.ServerCheck) error {
		c.OrgStatus, c.OrgVerifiedAt, c.Registry, c.Mismatches, c.OrgDetail = domain.OrgVerified, &now, &org, nil, ""
		if earlier != nil {
			// VA-5: the identity verified (and called) earlier is relied on
			// until its period ends, counted from that verification.
			until := earlier.PhoneConfirmedAt.Add(period)
			c.OrgValidUntil, c.OrgReusedFrom, c.PhoneStatus = &until, earlier.ApplicationID, domain.PhoneNotNeeded
			c.PhoneConfirmedAt = earlier.PhoneConfirmedAt
			ev.Reused, ev.ValidUntil = true, until
			return nil
		}
		until := now.Add(period)
		c.OrgValidUntil, c.PhoneStatus, ev.ValidUntil = &until, domain.PhonePending, until
		return nil
	})
	if err != nil {
		return err
	}
	if err := emit(ctx, tx, ev, now, c.CorrelationID); err != nil {
		return err
	}
	if earlier != nil {
		return audit.Record(ctx, tx, now, audit.System, "validation.organization.reused", a.ID, map[string]any{
			"duns": org.Number, "reused_from": earlier.ApplicationID, "valid_until": ev.ValidUntil})
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	p := domain.PhoneCheck{ID: id, ApplicationID: a.ID, DUNS: org.Number, Organization: org.NameEn, Phone: org.Phone,
		Status: domain.PhonePending, CreatedAt: now}
	if _, err := store.InsertPhoneCheck(ctx, tx, p); err != nil {
		return err
	}
	return audit.Record(ctx, tx, now, audit.System, "validation.phone_check.opened", a.ID, map[string]any{
		"phone_check_id": id.String(), "duns": org.Number, "phone": org.Phone})
}

// orgMismatch records a final organization failure, tells it
// (OrganizationVerificationFailed) and refuses the application
// (ReviewRejected naming both values: SV-7).
func (s *Server) orgMismatch(ctx context.Context, tx pgx.Tx, c domain.ServerCheck, ms []domain.Mismatch, detail string, now time.Time) error {
	if _, err := store.UpdateServerCheck(ctx, tx, c.ApplicationID, now, func(cur *domain.ServerCheck) error {
		cur.OrgStatus, cur.Mismatches, cur.OrgDetail, cur.Registry = domain.OrgMismatch, ms, detail, c.Registry
		return nil
	}); err != nil {
		return err
	}
	ev := events.OrganizationVerificationFailed{ApplicationID: c.ApplicationID, OrderID: c.OrderID, DUNS: c.DUNS,
		Detail: detail, Final: true, FailedAt: now}
	for _, m := range ms {
		ev.Mismatches = append(ev.Mismatches, events.OrganizationMismatch(m))
	}
	if err := emit(ctx, tx, ev, now, c.CorrelationID); err != nil {
		return err
	}
	return s.rejectChecks(ctx, tx, c.ApplicationID, domain.ReviewerAuto, detail, now)
}

// rejectChecks refuses an application whose checks failed for good.
func (s *Server) rejectChecks(ctx context.Context, tx pgx.Tx, applicationID, by, reason string, now time.Time) error {
	return store.UpdateForApplication(ctx, tx, applicationID, now, func(r *domain.Review) error {
		if r.Application == nil {
			// The review consumer has not seen the application yet: the
			// server consumer's own snapshot is recorded by updateReview.
			return nil
		}
		if !r.RejectFailedChecks(by, reason, now) {
			return nil
		}
		return s.Queue.emitDecision(ctx, tx, r, now)
	})
}

// updateReview changes the application's review (fn), notes when its
// checks have all passed, and advances it (queue, auto-approval). A
// server application whose checks failed for good is rejected here if
// that could not be done before (no snapshot yet).
func (s *Server) updateReview(ctx context.Context, tx pgx.Tx, applicationID string, now time.Time, fn func(*domain.Review)) error {
	return store.UpdateForApplication(ctx, tx, applicationID, now, func(r *domain.Review) error {
		if fn != nil {
			fn(r)
		}
		// Read under the review's row lock: two checks of one application
		// finishing at once queue up here, and the second sees the first's
		// committed result (each statement reads what is committed).
		passed, failed, err := s.checksPassed(ctx, tx, applicationID, now)
		if err != nil {
			return err
		}
		if failed != "" {
			if r.RejectFailedChecks(domain.ReviewerAuto, failed, now) {
				return s.Queue.emitDecision(ctx, tx, r, now)
			}
			return nil
		}
		if passed {
			r.RecordChecks(now)
		}
		return s.Queue.advance(ctx, tx, r, now)
	})
}

// checksPassed reports whether every check of a server application
// passed (every name validated and usable now, VA-5; the organization
// verified; the phone confirmed or reused), or why it failed for good.
func (s *Server) checksPassed(ctx context.Context, tx pgx.Tx, applicationID string, now time.Time) (passed bool, failed string, err error) {
	c, err := store.GetServerCheck(ctx, tx, applicationID)
	if errs.Is(err, errs.KindNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	if c.OrgStatus == domain.OrgMismatch {
		return false, c.OrgDetail, nil
	}
	if c.PhoneStatus == domain.PhoneFailed {
		p, err := store.PhoneCheckOf(ctx, tx, applicationID)
		if err != nil {
			return false, "", err
		}
		return false, phoneFailure(p), nil
	}
	if !c.Passed() {
		return false, "", nil
	}
	vs, err := store.ValidationsOf(ctx, tx, applicationID)
	if err != nil || len(vs) == 0 {
		return false, "", err
	}
	for _, v := range vs {
		if v.UsableFor(now) != nil {
			return false, "", nil
		}
	}
	return true, "", nil
}

func phoneFailure(p domain.PhoneCheck) string {
	return fmt.Sprintf("the phone verification of %s at the registry's number %s failed (SV-9): %s", p.Organization, p.Phone, p.Note)
}

// advance re-evaluates an application's review after one of its checks
// changed.
func (s *Server) advance(ctx context.Context, tx pgx.Tx, applicationID string, now time.Time) error {
	return s.updateReview(ctx, tx, applicationID, now, nil)
}

// paymentConfirmed records the payment of a server order, whether or not
// its application is known yet (the payment may come first).
func (s *Server) paymentConfirmed(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.PaymentConfirmed](env)
	if err != nil {
		return err
	}
	if p.OrderID == "" {
		return nil
	}
	at := p.PaidAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	if err := store.RecordOrderPayment(ctx, tx, p.OrderID, domain.Payment{Method: p.Method, Reference: p.Reference, At: at}); err != nil {
		return err
	}
	// The latest fact wins: a payment older than the order's latest
	// refund (delivered late) does not pay it.
	pay, err := store.OrderPayment(ctx, tx, p.OrderID)
	if err != nil || pay == nil {
		return err
	}
	apps, err := store.ApplicationsOfOrder(ctx, tx, p.OrderID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	for _, id := range apps {
		if err := s.updateReview(ctx, tx, id, now, func(r *domain.Review) { r.RecordPayment(*pay, env.CorrelationID) }); err != nil {
			return err
		}
	}
	return nil
}

// paymentRefunded records the refund of a server order's payment (BI-2):
// the order is no longer paid unless paid again later (the latest fact
// wins; the refund's time is when billing recorded it). A review not
// decided yet goes back to waiting for payment — out of the queue, so an
// operator's approval is a conflict; a decided one is left as it is
// (billing lists the refund for its operators).
func (s *Server) paymentRefunded(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.PaymentRefunded](env)
	if err != nil {
		return err
	}
	at := env.OccurredAt
	if err := store.RecordOrderRefund(ctx, tx, p.OrderID, at); err != nil {
		return err
	}
	apps, err := store.ApplicationsOfOrder(ctx, tx, p.OrderID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	for _, id := range apps {
		var outcome, status string
		err := store.UpdateForApplication(ctx, tx, id, now, func(r *domain.Review) error {
			outcome, status = r.RecordRefund(at), r.Status
			return nil
		})
		if err != nil {
			return err
		}
		switch outcome {
		case domain.RefundDecided:
			s.Log.Warn("payment refunded after the review was decided: left as it is (billing lists the refund)",
				"order", p.OrderID, "application", id, "invoice", p.InvoiceID, "review_status", status)
		case domain.RefundWaiting, domain.RefundDequeued:
			s.Log.Info("payment refunded: the review waits for payment again", "order", p.OrderID, "application", id,
				"invoice", p.InvoiceID, "left_queue", outcome == domain.RefundDequeued)
			if err := audit.Record(ctx, tx, now, audit.System, "validation.review.payment_refunded", id, map[string]any{
				"order_id": p.OrderID, "invoice_id": p.InvoiceID, "refunded_at": at, "left_queue": outcome == domain.RefundDequeued}); err != nil {
				return err
			}
		}
	}
	return nil
}

// prevFailureKey carries, from the check timer to onChecked, the failure
// the validation showed before the check: a failure is told once, not at
// every re-check.
type prevFailureKey struct{}

// checkTimer re-checks a pending DNS or HTTP validation, and schedules
// the next check until it validates or its value expires (VA-1).
func (s *Server) checkTimer(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	id, err := uuid.Parse(t.Key)
	if err != nil {
		return nil
	}
	v, err := store.GetValidation(ctx, tx, id)
	if errs.Is(err, errs.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	if v.Method == domain.MethodEmail || v.Status == domain.DCVValidated {
		return nil
	}
	if v.State(now) == domain.DCVExpired {
		c, err := store.GetServerCheck(ctx, tx, v.ApplicationID)
		if err != nil && !errs.Is(err, errs.KindNotFound) {
			return err
		}
		return emit(ctx, tx, events.DomainValidationFailed{ApplicationID: v.ApplicationID, OrderID: c.OrderID, ValidationID: v.ID.String(),
			Domain: v.Domain, Method: string(v.Method), Final: true, FailedAt: now,
			Detail: (&domain.Failure{Domain: v.Domain, Method: string(v.Method), Expected: "the random value published within 30 days (VA-1)",
				Found: "the random value expired at " + v.ExpiresAt.Format(time.RFC3339) + " unpublished: change the method (PUT /v1/applications/{id}/dcv) to draw a new one"}).Error(),
		}, now, v.CorrelationID)
	}
	prev := ""
	if v.LastFailure != nil {
		prev = v.LastFailure.Error()
	}
	res, err := s.DCV.CheckDomain(context.WithValue(ctx, prevFailureKey{}, prev), id)
	if err != nil {
		return err
	}
	if res.Status != domain.DCVPending {
		return nil
	}
	now = s.Clock.Now()
	next := now.Add(s.CheckEvery)
	if next.After(v.ExpiresAt) {
		next = v.ExpiresAt
	}
	return timer.Schedule(ctx, tx, TimerDCVCheck, t.Key, next, nil)
}

// onChecked tells the outcome of a domain check, in its transaction:
// DomainValidated, or DomainValidationFailed when the failure is new
// (VA-6: domain, method, expected, found) — and advances the review.
func (s *Server) onChecked(ctx context.Context, tx pgx.Tx, r CheckResult) error {
	c, err := store.GetServerCheck(ctx, tx, r.ApplicationID)
	if errs.Is(err, errs.KindNotFound) {
		return nil // not a server application of this flow (a test, ACME)
	}
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	switch {
	case r.Status == domain.DCVValidated:
		v, err := store.GetValidation(ctx, tx, r.ValidationID)
		if err != nil {
			return err
		}
		if err := s.emitValidated(ctx, tx, r.ApplicationID, c.OrderID, v.ID, v.Domain, string(v.Method), *v.ValidatedAt, r.CorrelationID, now); err != nil {
			return err
		}
		// The check timer is not cancelled here: this may run inside it
		// (its row is locked), and it stops by itself once validated.
		return s.advance(ctx, tx, r.ApplicationID, now)
	case r.Failure != nil:
		detail := r.Failure.Error()
		if prev, ok := ctx.Value(prevFailureKey{}).(string); ok && prev == detail {
			return nil
		}
		return emit(ctx, tx, events.DomainValidationFailed{ApplicationID: r.ApplicationID, OrderID: c.OrderID,
			ValidationID: r.ValidationID.String(), Domain: r.Domain, Method: string(r.Method), Detail: detail,
			Final: r.Status == domain.DCVExpired, FailedAt: now}, now, r.CorrelationID)
	}
	return nil
}

// orgRetryTimer looks an organization missing from the registry up again.
func (s *Server) orgRetryTimer(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	r, err := store.GetForApplication(ctx, tx, t.Key)
	if errs.Is(err, errs.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Application == nil || r.Application.Server == nil {
		return nil
	}
	now := s.Clock.Now()
	if err := s.verifyOrganization(ctx, tx, *r.Application, now); err != nil {
		return err
	}
	return s.advance(ctx, tx, t.Key, now)
}

// PhoneChecks lists phone checks of a status (pending, confirmed,
// failed).
func (s *Server) PhoneChecks(ctx context.Context, status string, limit int) ([]domain.PhoneCheck, error) {
	if status != domain.PhonePending && status != domain.PhoneConfirmed && status != domain.PhoneFailed {
		return nil, errs.InvalidField("status", "must be pending, confirmed or failed")
	}
	return store.ListPhoneChecks(ctx, s.Pool, status, limit)
}

// RecordPhoneCheck records an operator's phone call to the registry's
// number (SV-9), audited, and emits PhoneVerified. A confirmed call lets
// the review go on; a failed one refuses the application.
func (s *Server) RecordPhoneCheck(ctx context.Context, id uuid.UUID, result, note, actor string) (domain.PhoneCheck, error) {
	var p domain.PhoneCheck
	err := db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		now := s.Clock.Now()
		var err error
		p, err = store.UpdatePhoneCheck(ctx, tx, id, func(p *domain.PhoneCheck) error { return p.Decide(result, note, actor, now) })
		if err != nil {
			return err
		}
		c, err := store.UpdateServerCheck(ctx, tx, p.ApplicationID, now, func(c *domain.ServerCheck) error {
			c.PhoneStatus = p.Status
			if p.Status == domain.PhoneConfirmed {
				c.PhoneConfirmedAt = &now
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, actor, "validation.phone_check.recorded", p.ApplicationID, map[string]any{
			"phone_check_id": p.ID.String(), "duns": p.DUNS, "phone": p.Phone, "result": p.Status, "note": p.Note}); err != nil {
			return err
		}
		if err := emit(ctx, tx, events.PhoneVerified{ApplicationID: p.ApplicationID, OrderID: c.OrderID, CheckID: p.ID.String(),
			Confirmed: p.Status == domain.PhoneConfirmed, Operator: actor, At: now}, now, c.CorrelationID); err != nil {
			return err
		}
		if p.Status == domain.PhoneFailed {
			return s.rejectChecks(ctx, tx, p.ApplicationID, actor, phoneFailure(p), now)
		}
		return s.advance(ctx, tx, p.ApplicationID, now)
	})
	return p, err
}

// Status is what the customer sees of a server application's checks
// (SV-12): each domain's instructions, the organization and the phone
// check.
type Status struct {
	ApplicationID string
	Domains       []domain.Instructions
	Check         domain.ServerCheck
}

// StatusFor returns the checks of a server application of customer; an
// application of another customer is not found.
func (s *Server) StatusFor(ctx context.Context, customerID, applicationID string) (Status, error) {
	c, err := store.GetServerCheck(ctx, s.Pool, applicationID)
	if err != nil {
		return Status{}, err
	}
	if c.CustomerID != customerID {
		return Status{}, errs.NotFound("")
	}
	in, err := s.DCV.Instructions(ctx, applicationID)
	if err != nil {
		return Status{}, err
	}
	return Status{ApplicationID: applicationID, Domains: in, Check: c}, nil
}

// ChangeRequest is the customer's change of method (SV-8).
type ChangeRequest struct {
	Method        domain.Method
	ApproverEmail string
	// Domains to change; empty: every domain not validated yet.
	Domains []string
}

// ErrChecksClosed: the application's review is decided.
var ErrChecksClosed = errs.Conflict("dcv-closed", "the application is decided: its validation can no longer change")

// ChangeMethod changes the method (and approver) of pending domains of
// the customer's application, each with a new random value (the old one
// no longer validates): PUT /v1/applications/{id}/dcv. A validated
// domain, or a decided application, is a conflict.
func (s *Server) ChangeMethod(ctx context.Context, customerID, applicationID string, req ChangeRequest) (Status, error) {
	err := db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		c, err := store.GetServerCheck(ctx, tx, applicationID)
		if err != nil {
			return err
		}
		if c.CustomerID != customerID {
			return errs.NotFound("")
		}
		if r, err := store.GetForApplication(ctx, tx, applicationID); err == nil && (r.Status == domain.StatusApproved || r.Status == domain.StatusRejected) {
			return ErrChecksClosed
		}
		vs, err := store.ValidationsOf(ctx, tx, applicationID)
		if err != nil {
			return err
		}
		byDomain := map[string]domain.DomainValidation{}
		for _, v := range vs {
			byDomain[v.Domain] = v
		}
		var targets []domain.DomainValidation
		if len(req.Domains) == 0 {
			for _, v := range vs {
				if v.Status != domain.DCVValidated {
					targets = append(targets, v)
				}
			}
			if len(targets) == 0 {
				return domain.ErrAlreadyValidated
			}
		}
		var bad []errs.Field
		for i, d := range req.Domains {
			n, err := domain.NormalizeDomain(d)
			v, ok := byDomain[n]
			switch {
			case err != nil:
				bad = append(bad, errs.Field{Name: fmt.Sprintf("domains[%d]", i), Message: err.Error()})
			case !ok:
				bad = append(bad, errs.Field{Name: fmt.Sprintf("domains[%d]", i), Message: n + " is not a name of this application"})
			default:
				targets = append(targets, v)
			}
		}
		if len(bad) > 0 {
			return errs.Invalid(bad...)
		}
		now := s.Clock.Now()
		for _, v := range targets {
			if v.Status == domain.DCVValidated {
				return domain.ErrAlreadyValidated
			}
			in, err := s.DCV.ChangeMethod(ctx, tx, v.ID, req.Method, req.ApproverEmail, "customer:"+customerID)
			if err != nil {
				return err
			}
			if in.Method == domain.MethodEmail {
				if err := timer.Cancel(ctx, tx, TimerDCVCheck, v.ID.String()); err != nil {
					return err
				}
				continue
			}
			if err := timer.Schedule(ctx, tx, TimerDCVCheck, v.ID.String(), now, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Status{}, err
	}
	return s.StatusFor(ctx, customerID, applicationID)
}

// TimerAutoApprove approves a server application's review without an
// operator (REVIEW_AUTO_APPROVE) once CAA is fresh (key: the
// application's ID).
const TimerAutoApprove = "validation.auto-approve"

// CAAFreshFor is how recent a CAA check must be when a server
// application is approved: the issuer issues right after ReviewApproved,
// and the BRs allow issuance within 8 hours of the check (BR §4.2.2.1);
// an hour is left for the issuer's queue and retries.
const CAAFreshFor = CAAValidity - time.Hour

// CAAForbids is a name whose CAA, checked again before approval, does
// not permit issuance (a conflict: 409 caa-forbids at the HTTP edge).
type CAAForbids struct {
	ValidationID uuid.UUID
	Domain       string
	Method       domain.Method
	Detail       string
}

func (e *CAAForbids) Error() string { return e.Detail }

// Unwrap makes it a conflict for errs.Is and the HTTP edge.
func (e *CAAForbids) Unwrap() error { return errs.Conflict("caa-forbids", e.Detail) }

// FreshCAA makes sure every name of a server application had a passed
// CAA check within CAAFreshFor (VA-4), checking again (corroborated,
// recorded) where the last one is older; a name whose CAA no longer
// permits issuance is a *CAAForbids. Network I/O: called outside any
// transaction that holds locks others need.
func (s *Server) FreshCAA(ctx context.Context, applicationID string) error {
	vs, err := store.ValidationsOf(ctx, s.Pool, applicationID)
	if err != nil {
		return err
	}
	for _, v := range vs {
		now := s.Clock.Now()
		at, err := store.LastPassedCAA(ctx, s.Pool, applicationID, v.Domain)
		if err != nil {
			return err
		}
		if at != nil && now.Sub(*at) < CAAFreshFor {
			continue
		}
		res, err := s.DCV.CheckCAA(ctx, v.Domain, v.AccountURI, v.Method, now, applicationID)
		if err != nil {
			return err
		}
		if !res.Allowed {
			detail := v.Domain + ": CAA checked again before approval does not permit issuance"
			if res.Failure != nil {
				detail = res.Failure.Error()
			}
			return &CAAForbids{ValidationID: v.ID, Domain: v.Domain, Method: v.Method, Detail: detail}
		}
	}
	return nil
}

// beforeApprove is the queue's hook before an approval: a server
// application's CAA must be fresh.
func (s *Server) beforeApprove(ctx context.Context, r domain.Review) error {
	if r.Application == nil || r.Application.Server == nil {
		return nil
	}
	return s.FreshCAA(ctx, r.ApplicationID)
}

// autoApproveTimer approves a queued server application without an
// operator once its CAA is fresh; when CAA no longer permits issuance it
// stays in the queue, the failure told (DomainValidationFailed), for an
// operator.
func (s *Server) autoApproveTimer(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	err := s.FreshCAA(ctx, t.Key)
	now := s.Clock.Now()
	var forbids *CAAForbids
	if errors.As(err, &forbids) {
		s.Log.Warn("auto-approval withheld: CAA does not permit issuance", "application", t.Key, "error", err)
		c, cerr := store.GetServerCheck(ctx, tx, t.Key)
		if cerr != nil {
			return cerr
		}
		return emit(ctx, tx, events.DomainValidationFailed{ApplicationID: t.Key, OrderID: c.OrderID,
			ValidationID: forbids.ValidationID.String(), Domain: forbids.Domain, Method: string(forbids.Method),
			Detail: forbids.Detail, FailedAt: now}, now, c.CorrelationID)
	}
	if err != nil {
		return err
	}
	return store.UpdateForApplication(ctx, tx, t.Key, now, func(r *domain.Review) error {
		if r.Status != domain.StatusPending {
			return nil
		}
		return s.Queue.decide(ctx, tx, r, true, domain.ReviewerAuto, "", now)
	})
}
