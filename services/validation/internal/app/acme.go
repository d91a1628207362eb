package app

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// ConsumerACME is the durable consumer of intake's ACME server (SPEC
// §4.10): challenges to check, finalized orders to approve.
const ConsumerACME = "validation-acme"

// ACME error types the checks answer with (RFC 8555 §6.7).
const (
	acmeErrCAA          = "urn:ietf:params:acme:error:caa"
	acmeErrDNS          = "urn:ietf:params:acme:error:dns"
	acmeErrConnection   = "urn:ietf:params:acme:error:connection"
	acmeErrUnauthorized = "urn:ietf:params:acme:error:unauthorized"
	acmeErrRejected     = "urn:ietf:params:acme:error:rejectedIdentifier"
)

// ACME checks ACME challenges with the DCV engine (AC-1: VA-1 … VA-9,
// MPIC and DNSSEC included, CAA with accounturi = the account URL and
// validationmethods) and approves finalized ACME orders.
type ACME struct {
	DCV   *DCV
	Clock clock.Clock
	Log   *slog.Logger
}

// Consumer is the durable consumer. Checks talk to the network (the
// primary perspective, then the remote ones), hence the long ack wait.
func (a *ACME) Consumer() bus.Consumer {
	return bus.Consumer{
		Name: ConsumerACME,
		Handlers: map[string]bus.Handler{
			events.TypeACMEChallengeReady: a.onChallenge,
			events.TypeACMEOrderFinalized: a.onFinalized,
		},
		AckWait:        3 * time.Minute,
		HandlerTimeout: 2 * time.Minute,
	}
}

// onChallenge checks a challenge, then CAA for the account and method,
// each recorded (VA-9), and emits the outcome in the consumer's
// transaction.
func (a *ACME) onChallenge(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ACMEChallengeReady](env)
	if err != nil {
		return err
	}
	method := domain.Method(ev.Method)
	expected := ev.KeyAuthorization
	if method == domain.MethodACMEDNS {
		sum := sha256.Sum256([]byte(ev.KeyAuthorization))
		expected = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	fail := func(typ, detail string) error {
		return a.emit(ctx, tx, env, events.ACMEChallengeFailed{AuthzID: ev.AuthzID, Domain: ev.Domain, Method: ev.Method,
			ErrorType: typ, Detail: detail, FailedAt: a.Clock.Now()})
	}
	res, err := a.DCV.CheckACMEChallenge(ctx, ev.Domain, method, ev.Token, expected, "acme-authz:"+ev.AuthzID)
	if e, ok := errs.As(err); ok && e.Kind == errs.KindInvalid {
		return fail(acmeErrRejected, e.Error())
	}
	if err != nil {
		return err
	}
	if !res.Passed {
		return fail(challengeErrorType(method, res.Failure), res.Failure.Error())
	}
	caa, err := a.DCV.CheckCAA(ctx, ev.Domain, ev.AccountURI, method, a.Clock.Now(), "acme-authz:"+ev.AuthzID)
	if e, ok := errs.As(err); ok && e.Kind == errs.KindInvalid {
		return fail(acmeErrRejected, e.Error())
	}
	if err != nil {
		return err
	}
	if !caa.Allowed {
		detail := caa.Reason
		if caa.Failure != nil {
			detail = caa.Failure.Error()
		}
		return fail(acmeErrCAA, "CAA forbids issuance: "+detail)
	}
	now := a.Clock.Now()
	return a.emit(ctx, tx, env, events.ACMEChallengeValidated{AuthzID: ev.AuthzID, Domain: ev.Domain, Method: ev.Method,
		AttemptID: res.AttemptID.String(), ValidatedAt: now, ValidUntil: now.Add(domain.DomainReuse(now))})
}

// challengeErrorType is the RFC 8555 type of a failed check: a value
// not found is unauthorized; no usable answer is dns (dns-01) or
// connection (http-01).
func challengeErrorType(m domain.Method, f *domain.Failure) string {
	if f == nil {
		return acmeErrUnauthorized
	}
	found := strings.ToLower(f.Found)
	for _, w := range []string{"servfail", "refused", "timeout", "timed out", "no such host", "connect", "nxdomain", "bogus", "error"} {
		if strings.Contains(found, w) {
			if m == domain.MethodACMEDNS {
				return acmeErrDNS
			}
			return acmeErrConnection
		}
	}
	return acmeErrUnauthorized
}

// onFinalized approves a finalized ACME order: its domains were validated
// by the order's authorizations (above), its organization when the
// customer's EAB key was issued (AC-2). CAA is checked again for every
// name first (VA-4, TLS BR 3.2.2.8: within 8 hours before issuance; an
// authorization may be reused for days): a name CAA now forbids rejects
// the order. The issuer issues an approved order like any approved
// server application.
func (a *ACME) onFinalized(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ACMEOrderFinalized](env)
	if err != nil {
		return err
	}
	app := ev.Application
	srv := app.Server
	method := domain.Method(srv.DCV.Method)
	if method != domain.MethodACMEDNS && method != domain.MethodACMEHTTP {
		method = domain.MethodACMEDNS
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	for _, name := range srv.Names() {
		caa, err := a.DCV.CheckCAA(ctx, name, srv.ACMEAccountURI, method, a.Clock.Now(), app.ID)
		if e, ok := errs.As(err); ok && e.Kind == errs.KindInvalid {
			return a.emit(ctx, tx, env, events.ReviewRejected{ReviewID: id.String(), ApplicationID: app.ID,
				Reason: acmeErrRejected + ": " + name + ": " + e.Error(), Reviewer: events.ReviewerACME, Recipient: app.Recipient()})
		}
		if err != nil {
			return err
		}
		if !caa.Allowed {
			detail := caa.Reason
			if caa.Failure != nil {
				detail = caa.Failure.Error()
			}
			return a.emit(ctx, tx, env, events.ReviewRejected{ReviewID: id.String(), ApplicationID: app.ID,
				Reason: acmeErrCAA + ": CAA forbids issuance: " + detail, Reviewer: events.ReviewerACME, Recipient: app.Recipient()})
		}
	}
	return a.emit(ctx, tx, env, events.ReviewApproved{ReviewID: id.String(), Application: app, Reviewer: events.ReviewerACME})
}

func (a *ACME) emit(ctx context.Context, tx pgx.Tx, cause events.Envelope, p events.Payload) error {
	env, err := events.Follow(cause, p, a.Clock.Now())
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}
