package app

import (
	"context"
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
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/services/validation/internal/dcv"
	"github.com/certlife/platform/services/validation/internal/domain"
	"github.com/certlife/platform/services/validation/internal/store"
)

// CAAValidity is how long a CAA check may be relied on: the BRs allow
// issuance within max(TTL, 8 hours) of it (BR §4.2.2.1); this service
// keeps to the 8 hours.
const CAAValidity = 8 * time.Hour

// DCV is domain control validation and CAA, as use cases (SV-8, VA-1 …
// VA-9). Each check runs the primary perspective here and, when that
// passes, the same check at every remote perspective (MPIC), then
// records the attempt — each perspective's observation — in this
// service's attempts table and in the audit log, in one transaction.
// The server order flow calls it: StartDomainValidation and ChangeMethod
// in the transaction of the event or request that causes them,
// CheckDomain, ConfirmEmail, CheckCAA and UsableFor on their own.
type DCV struct {
	Pool  *pgxpool.Pool
	Clock clock.Clock
	Log   *slog.Logger
	// Checker is the primary perspective (DCV_DNS_SERVER, DCV_HTTP_PORT).
	Checker *dcv.Checker
	// Remote asks the remote perspectives; Quorum decides on their answers.
	Remote *dcv.Remote
	Quorum domain.Quorum
	// CAAIdentities are the CA's issuer domain names (CAA_IDENTITIES).
	CAAIdentities []string
	// HTTPPort is DCV_HTTP_PORT, for the URLs the customer is told.
	HTTPPort int
	// NotifierKey seals e-mail random values for the notifier
	// (NOTIFIER_PUBLIC_KEY); nil: the e-mail method is unavailable.
	NotifierKey *seal.PublicKey
	Metrics     *DCVMetrics
	// OnChecked, when set, is called in the transaction that records a
	// check's outcome (CheckDomain, ConfirmEmail), so that the caller can
	// emit its events (DomainValidated, …) atomically with it.
	OnChecked func(ctx context.Context, tx pgx.Tx, r CheckResult) error
}

// StartRequest starts the validation of one domain of an application.
type StartRequest struct {
	ApplicationID string
	// CustomerID: validations are reused only for the same customer (VA-5).
	CustomerID string
	// AccountURI is compared with CAA accounturi (RFC 8657): the ACME
	// account URL, or for manual orders domain.AccountURI(customer,
	// CAA_IDENTITIES[0]) — see ManualAccountURI.
	AccountURI string
	Domain     string
	Method     domain.Method
	// ApproverEmail is the e-mail method's constructed address.
	ApproverEmail string
	// Language of the approver's e-mail.
	Language      string
	CorrelationID string
	// Actor is who asked (audit); empty = system.
	Actor string
}

// ManualAccountURI is the accounturi of a manual-flow customer (the
// format the CPS names, BR §4.2.2.1.2).
func (s *DCV) ManualAccountURI(customerID string) string {
	return domain.AccountURI(customerID, s.CAAIdentities[0])
}

// StartDomainValidation creates the validation of a domain in tx and
// returns what the customer must do. An application's second start for
// the same domain returns the first one's instructions unchanged (a
// redelivered event draws no new value). An earlier validation of the
// same customer and domain still within its reuse period is reused
// (VA-5). For the e-mail method, a DomainValidationEmailRequested event
// carrying the random value sealed to the notifier is emitted in tx; the
// value itself is kept only as its hash (SE-1).
func (s *DCV) StartDomainValidation(ctx context.Context, tx pgx.Tx, r StartRequest) (domain.Instructions, error) {
	now := s.Clock.Now()
	if r.Method == domain.MethodEmail && s.NotifierKey == nil {
		return domain.Instructions{}, errs.Unavailable("dcv-email-unavailable", "e-mail validation is not configured (NOTIFIER_PUBLIC_KEY)", time.Hour, nil)
	}
	v, secret, err := domain.Start(domain.NewDomainValidation{
		ApplicationID: r.ApplicationID, CustomerID: r.CustomerID, AccountURI: r.AccountURI, Domain: r.Domain,
		Method: r.Method, ApproverEmail: r.ApproverEmail, Language: r.Language, CorrelationID: r.CorrelationID,
	}, now)
	if err != nil {
		return domain.Instructions{}, err
	}
	if existing, err := store.ValidationFor(ctx, tx, v.ApplicationID, v.Domain); err == nil {
		return existing.Instructions(now, s.HTTPPort), nil
	} else if !errs.Is(err, errs.KindNotFound) {
		return domain.Instructions{}, err
	}
	earlier, err := store.LatestValidated(ctx, tx, v.CustomerID, v.Domain, now.Add(-domain.DomainReuse(now)))
	if err != nil {
		return domain.Instructions{}, err
	}
	if earlier != nil && earlier.UsableFor(now) == nil {
		v.Reuse(*earlier)
		secret = ""
	}
	inserted, err := store.InsertValidation(ctx, tx, v)
	if err != nil {
		return domain.Instructions{}, err
	}
	if !inserted {
		// A concurrent start won: its value is the one stored and sent.
		existing, err := store.ValidationFor(ctx, tx, v.ApplicationID, v.Domain)
		if err != nil {
			return domain.Instructions{}, err
		}
		return existing.Instructions(now, s.HTTPPort), nil
	}
	if err := s.requestEmail(ctx, tx, v, secret, now); err != nil {
		return domain.Instructions{}, err
	}
	details := map[string]any{"application_id": v.ApplicationID, "domain": v.Domain, "method": v.Method,
		"value_sha256": v.ValueHash, "expires_at": v.ExpiresAt}
	if v.ReusedFrom != nil {
		details["reused_from"] = v.ReusedFrom.String()
	}
	if err := audit.Record(ctx, tx, now, r.Actor, "validation.dcv.started", v.ID.String(), details); err != nil {
		return domain.Instructions{}, err
	}
	return v.Instructions(now, s.HTTPPort), nil
}

// ChangeMethod changes a pending validation's method and approver, with a
// new random value and lifetime (SV-8), in tx. A validated one is a
// conflict (domain.ErrAlreadyValidated).
func (s *DCV) ChangeMethod(ctx context.Context, tx pgx.Tx, id uuid.UUID, method domain.Method, approver, actor string) (domain.Instructions, error) {
	now := s.Clock.Now()
	if method == domain.MethodEmail && s.NotifierKey == nil {
		return domain.Instructions{}, errs.Unavailable("dcv-email-unavailable", "e-mail validation is not configured (NOTIFIER_PUBLIC_KEY)", time.Hour, nil)
	}
	var secret string
	v, err := store.UpdateValidation(ctx, tx, id, now, func(v *domain.DomainValidation) error {
		var err error
		secret, err = v.ChangeMethod(method, approver, now)
		return err
	})
	if err != nil {
		return domain.Instructions{}, err
	}
	if err := s.requestEmail(ctx, tx, v, secret, now); err != nil {
		return domain.Instructions{}, err
	}
	if err := audit.Record(ctx, tx, now, actor, "validation.dcv.method_changed", v.ID.String(), map[string]any{
		"application_id": v.ApplicationID, "domain": v.Domain, "method": v.Method, "value_sha256": v.ValueHash,
		"expires_at": v.ExpiresAt,
	}); err != nil {
		return domain.Instructions{}, err
	}
	return v.Instructions(now, s.HTTPPort), nil
}

// requestEmail emits the e-mail request with the value sealed to the
// notifier (nothing for the other methods).
func (s *DCV) requestEmail(ctx context.Context, tx pgx.Tx, v domain.DomainValidation, secret string, now time.Time) error {
	if v.Method != domain.MethodEmail || secret == "" {
		return nil
	}
	sealed, err := seal.Seal(*s.NotifierKey, []byte(secret))
	if err != nil {
		return err
	}
	env, err := events.New(events.DomainValidationEmailRequested{
		ApplicationID: v.ApplicationID, ValidationID: v.ID.String(), Domain: v.Domain,
		Recipient:   events.Recipient{Email: v.ApproverEmail, Language: v.Language},
		SealedValue: sealed, ExpiresAt: v.ExpiresAt, Deprecated: v.Method.Deprecated(now),
	}, now, v.CorrelationID)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}

// Instructions lists what the customer must do for each domain of an
// application (GET /v1/applications/{id}/dcv).
func (s *DCV) Instructions(ctx context.Context, applicationID string) ([]domain.Instructions, error) {
	vs, err := store.ValidationsOf(ctx, s.Pool, applicationID)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	out := make([]domain.Instructions, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Instructions(now, s.HTTPPort))
	}
	return out, nil
}

// Validation reads one validation.
func (s *DCV) Validation(ctx context.Context, id uuid.UUID) (domain.DomainValidation, error) {
	return store.GetValidation(ctx, s.Pool, id)
}

// CheckResult is the outcome of checking a domain.
type CheckResult struct {
	ValidationID  uuid.UUID
	ApplicationID string
	CorrelationID string
	Domain        string
	Method        domain.Method
	// Status is validated, pending (not shown yet, or this check failed:
	// see Failure; the customer may fix it and check again) or expired
	// (the random value is past its lifetime: change the method to draw
	// a new one).
	Status string
	// Failure says why this check did not validate (VA-6).
	Failure *domain.Failure
	// CAA is the CAA check made with the domain check, if one was.
	CAA *CAAResult
	// Attempts are the attempt records written.
	Attempts []uuid.UUID
}

// CheckDomain checks a validation now: the primary perspective, then
// (when it found the value) every remote perspective and the quorum
// (VA-7), then CAA (VA-4, also corroborated). The attempts are recorded
// whatever the result. A validated one is returned as it is; an expired
// one is not checked; an e-mail one is pending until its link is
// followed (ConfirmEmail).
func (s *DCV) CheckDomain(ctx context.Context, id uuid.UUID) (CheckResult, error) {
	v, err := store.GetValidation(ctx, s.Pool, id)
	if err != nil {
		return CheckResult{}, err
	}
	now := s.Clock.Now()
	res := CheckResult{ValidationID: v.ID, ApplicationID: v.ApplicationID, CorrelationID: v.CorrelationID,
		Domain: v.Domain, Method: v.Method, Status: v.State(now)}
	switch {
	case res.Status == domain.DCVValidated:
		return res, nil
	case res.Status == domain.DCVExpired:
		res.Failure = &domain.Failure{Domain: v.Domain, Method: string(v.Method), Expected: "a random value younger than 30 days",
			Found: "the random value expired at " + v.ExpiresAt.Format(time.RFC3339) + ": change the method to draw a new one"}
		return res, nil
	case v.Method == domain.MethodEmail:
		res.Failure = &domain.Failure{Domain: v.Domain, Method: string(v.Method),
			Expected: "the link e-mailed to " + v.ApproverEmail + " to be opened", Found: "not opened yet"}
		return res, nil
	}
	req := v.CheckRequest()
	attempt := domain.NewAttempt(domain.AttemptDomain, v.Domain, string(v.Method), now)
	attempt.ApplicationID, attempt.ValidationID, attempt.ValueSHA256 = v.ApplicationID, &v.ID, v.ValueHash
	attempt.BRSection = v.Method.BRSection()
	failure := s.corroborated(ctx, &attempt, *req, string(v.Method))
	attempts := []domain.Attempt{attempt}
	if failure == nil {
		caa, caaAttempt := s.caa(ctx, v.Domain, v.AccountURI, v.Method, v.ApplicationID)
		res.CAA = &caa
		attempts = append(attempts, caaAttempt)
		failure = caa.Failure
	}
	err = db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		for _, a := range attempts {
			if err := s.record(ctx, tx, a); err != nil {
				return err
			}
		}
		now := s.Clock.Now()
		v, err = store.UpdateValidation(ctx, tx, v.ID, now, func(cur *domain.DomainValidation) error {
			switch {
			case cur.Status == domain.DCVValidated:
			case cur.ValueHash != v.ValueHash:
				// The method changed while checking: this check is about a
				// value no longer asked for.
				failure = &domain.Failure{Domain: cur.Domain, Method: string(v.Method), Expected: "the current method",
					Found: "the method changed during the check"}
			case cur.State(now) == domain.DCVExpired:
				failure = &domain.Failure{Domain: cur.Domain, Method: string(v.Method), Expected: "a random value younger than 30 days",
					Found: "the random value expired during the check"}
			case failure == nil:
				cur.Validated(now)
			default:
				cur.LastFailure = failure
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Status, res.Failure = v.State(now), failure
		if res.Status == domain.DCVValidated {
			res.Failure = nil
		}
		for _, a := range attempts {
			res.Attempts = append(res.Attempts, a.ID)
		}
		if s.OnChecked != nil {
			return s.OnChecked(ctx, tx, res)
		}
		return nil
	})
	if err != nil {
		return CheckResult{}, err
	}
	return res, nil
}

// corroborated runs a check at the primary perspective and, when it
// passes, at the remote ones, fills in the attempt and returns the
// failure (nil: passed and corroborated).
func (s *DCV) corroborated(ctx context.Context, a *domain.Attempt, req domain.CheckRequest, method string) *domain.Failure {
	primary := s.Checker.Check(ctx, req)
	primary.Perspective, primary.Primary = "primary", true
	a.Perspectives = append(a.Perspectives, primary)
	if !primary.Passed() {
		f := domain.FailureOf(req, method, primary)
		a.Result, a.Detail = domain.ResultFailed, f.Error()
		return f
	}
	var remotes []domain.Observation
	if s.Remote != nil && s.Quorum.Configured() {
		remotes = s.Remote.Ask(ctx, a.ID.String(), req)
	}
	verdict := s.Quorum.Corroborate(primary, remotes)
	a.Perspectives = append(a.Perspectives, verdict.Remotes...)
	if s.Metrics != nil {
		for _, o := range verdict.Disagreeing {
			s.Metrics.NonCorroborations.WithLabelValues(o.Perspective, string(req.Kind)).Inc()
		}
	}
	if !verdict.Corroborated {
		f := &domain.Failure{Domain: req.Domain, Method: method, Expected: req.Expectation() + ", corroborated by the remote perspectives (VA-7)",
			Found: "the primary perspective found it; " + verdict.Reason, Perspectives: verdict.Disagreeing}
		a.Result, a.Detail = domain.ResultFailed, f.Error()
		return f
	}
	a.Result = domain.ResultPassed
	a.Detail = primary.Detail
	return nil
}

// ChallengeResult is the outcome of an ACME challenge check.
type ChallengeResult struct {
	Passed    bool
	Failure   *domain.Failure
	AttemptID uuid.UUID
}

// CheckACMEChallenge checks an ACME dns-01 or http-01 challenge (§4.10,
// AC-1) under the same rules as the manual methods: the validating
// resolver, the HTTP redirect rules, the primary perspective corroborated
// by the remote ones (VA-7), the attempt recorded (VA-9) with the hash of
// the expected value. CAA is separate: CheckCAA with the same method.
func (s *DCV) CheckACMEChallenge(ctx context.Context, name string, method domain.Method, token, expected, applicationID string) (ChallengeResult, error) {
	req, err := domain.ACMEChallenge(name, method, token, expected)
	if err != nil {
		return ChallengeResult{}, err
	}
	a := domain.NewAttempt(domain.AttemptDomain, req.Domain, string(method), s.Clock.Now())
	a.ApplicationID, a.ValueSHA256, a.BRSection = applicationID, domain.HashValue(expected), method.BRSection()
	failure := s.corroborated(ctx, &a, req, string(method))
	if err := db.InTx(ctx, s.Pool, func(tx pgx.Tx) error { return s.record(ctx, tx, a) }); err != nil {
		return ChallengeResult{}, err
	}
	return ChallengeResult{Passed: failure == nil, Failure: failure, AttemptID: a.ID}, nil
}

// record writes an attempt and its audit entry in tx (VA-9, OP-4).
func (s *DCV) record(ctx context.Context, tx pgx.Tx, a domain.Attempt) error {
	return recordAttempt(ctx, tx, a, s.Metrics)
}

func recordAttempt(ctx context.Context, tx pgx.Tx, a domain.Attempt, m *DCVMetrics) error {
	if a.Actor == "" {
		a.Actor = audit.System
	}
	if err := store.InsertAttempt(ctx, tx, a); err != nil {
		return err
	}
	if err := audit.Record(ctx, tx, a.At, a.Actor, a.AuditAction(), a.Subject, a); err != nil {
		return err
	}
	if m != nil {
		m.Attempts.WithLabelValues(a.Kind, a.Method, a.Result).Inc()
	}
	return nil
}

// CAAResult is the outcome of a CAA check.
type CAAResult struct {
	Domain  string
	Allowed bool
	// Reason says which record decided (or that there was none).
	Reason    string
	CheckedAt time.Time
	// ValidUntil: issue before it, or check again (BR §4.2.2.1).
	ValidUntil time.Time
	Failure    *domain.Failure
	AttemptID  uuid.UUID
}

// CheckCAA checks CAA for one name of a certificate (VA-4): the relevant
// RRset by tree climbing, issue/issuewild against CAA_IDENTITIES, the RFC
// 8657 accounturi (accountURI) and validationmethods (the labels of
// method), a failed lookup never permission — at the primary perspective
// and, when it permits, at the remote ones (VA-7). The attempt is
// recorded. issuance is when the certificate will be issued: it must be
// within CAAValidity of now.
func (s *DCV) CheckCAA(ctx context.Context, name, accountURI string, method domain.Method, issuance time.Time, applicationID string) (CAAResult, error) {
	d, err := domain.NormalizeDomain(name)
	if err != nil {
		return CAAResult{}, errs.InvalidField("domain", err.Error())
	}
	if _, err := domain.ParseMethod(string(method)); err != nil {
		return CAAResult{}, errs.InvalidField("method", err.Error())
	}
	now := s.Clock.Now()
	if issuance.Before(now.Add(-time.Minute)) || issuance.After(now.Add(CAAValidity)) {
		return CAAResult{}, errs.InvalidField("issuance", fmt.Sprintf("must be within %s of the CAA check (BR §4.2.2.1)", CAAValidity))
	}
	res, attempt := s.caa(ctx, d, accountURI, method, applicationID)
	if err := db.InTx(ctx, s.Pool, func(tx pgx.Tx) error { return s.record(ctx, tx, attempt) }); err != nil {
		return CAAResult{}, err
	}
	return res, nil
}

// caa runs a corroborated CAA check; the caller records the attempt.
func (s *DCV) caa(ctx context.Context, d, accountURI string, method domain.Method, applicationID string) (CAAResult, domain.Attempt) {
	now := s.Clock.Now()
	req := domain.CheckRequest{Kind: domain.CheckCAA, Domain: d, CAA: &domain.CAAPolicy{
		Identities: s.CAAIdentities, AccountURI: accountURI, MethodLabels: method.CAALabels(), Wildcard: domain.IsWildcard(d),
	}}
	a := domain.NewAttempt(domain.AttemptCAA, d, string(method), now)
	a.ApplicationID = applicationID
	failure := s.corroborated(ctx, &a, req, string(method))
	res := CAAResult{Domain: d, Allowed: failure == nil, CheckedAt: now, ValidUntil: now.Add(CAAValidity),
		Failure: failure, AttemptID: a.ID, Reason: a.Perspectives[0].Detail}
	return res, a
}

// ConfirmEmail validates the e-mail validation whose link carried value
// (VA-2): the hash of the value finds it; an unknown value is not found,
// an expired one gone. CAA is checked first (corroborated): a domain
// whose CAA forbids stays pending with that failure, and the link may be
// followed again once it is fixed. The e-mail method itself is not
// corroborated by remote perspectives (BR 3.2.2.4.4 has no MPIC clause).
func (s *DCV) ConfirmEmail(ctx context.Context, value string) (CheckResult, error) {
	if value == "" || len(value) > 200 {
		return CheckResult{}, errs.NotFound("")
	}
	hash := domain.HashValue(value)
	var v domain.DomainValidation
	err := db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		v, err = store.PendingEmailByHash(ctx, tx, hash)
		return err
	})
	if err != nil {
		return CheckResult{}, err
	}
	now := s.Clock.Now()
	if v.State(now) == domain.DCVExpired {
		return CheckResult{}, errs.Gone("dcv-expired", "the link has expired: ask for a new one")
	}
	caa, caaAttempt := s.caa(ctx, v.Domain, v.AccountURI, v.Method, v.ApplicationID)
	attempt := domain.NewAttempt(domain.AttemptDomain, v.Domain, string(v.Method), s.Clock.Now())
	attempt.ApplicationID, attempt.ValidationID, attempt.ValueSHA256 = v.ApplicationID, &v.ID, hash
	attempt.BRSection, attempt.Actor = v.Method.BRSection(), "approver:"+v.ApproverEmail
	attempt.Perspectives = append(attempt.Perspectives, domain.Observation{Perspective: "primary", Primary: true,
		Outcome: domain.OutcomeFound, Seen: []string{"the link e-mailed to " + v.ApproverEmail + " was followed with its random value"}})
	attempt.Result = domain.ResultPassed
	res := CheckResult{ValidationID: v.ID, ApplicationID: v.ApplicationID, CorrelationID: v.CorrelationID,
		Domain: v.Domain, Method: v.Method, CAA: &caa, Attempts: []uuid.UUID{attempt.ID, caaAttempt.ID}}
	err = db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		now := s.Clock.Now()
		cur, err := store.PendingEmailByHash(ctx, tx, hash)
		if errs.Is(err, errs.KindNotFound) {
			return errs.NotFound("") // validated or changed meanwhile
		}
		if err != nil {
			return err
		}
		if cur.State(now) == domain.DCVExpired {
			return errs.Gone("dcv-expired", "the link has expired: ask for a new one")
		}
		if err := s.record(ctx, tx, attempt); err != nil {
			return err
		}
		if err := s.record(ctx, tx, caaAttempt); err != nil {
			return err
		}
		v, err = store.UpdateValidation(ctx, tx, cur.ID, now, func(v *domain.DomainValidation) error {
			if caa.Allowed {
				v.Validated(now)
			} else {
				v.LastFailure = caa.Failure
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Status, res.Failure = v.State(now), caa.Failure
		if s.OnChecked != nil {
			return s.OnChecked(ctx, tx, res)
		}
		return nil
	})
	if err != nil {
		return CheckResult{}, err
	}
	return res, nil
}

// Usability is whether a domain's validation may be relied on at an
// issuance date.
type Usability struct {
	Domain string
	Usable bool
	Reason string
}

// UsableFor tells, per domain of the application, whether its validation
// may be relied on for a certificate issued at issuance (VA-5: validated,
// within the reuse period of the issuance date, by a method still allowed
// then). ok is true when every domain is usable.
func (s *DCV) UsableFor(ctx context.Context, applicationID string, issuance time.Time) (ok bool, out []Usability, err error) {
	vs, err := store.ValidationsOf(ctx, s.Pool, applicationID)
	if err != nil {
		return false, nil, err
	}
	if len(vs) == 0 {
		return false, nil, errs.NotFound("no domain validation for this application")
	}
	ok = true
	for _, v := range vs {
		u := Usability{Domain: v.Domain, Usable: true}
		if err := v.UsableFor(issuance); err != nil {
			u.Usable, u.Reason, ok = false, err.Error(), false
		}
		out = append(out, u)
	}
	return ok, out, nil
}

// AttemptPage is one page of attempts, newest first.
type AttemptPage struct {
	Attempts []domain.Attempt
	// Next is the cursor of the next page (nil: no more).
	Next *uuid.UUID
}

// Attempts lists the validation attempts of a subject (a domain or a
// registry number; empty = all), newest first (VA-9).
func (s *DCV) Attempts(ctx context.Context, subject string, before uuid.UUID, limit int) (AttemptPage, error) {
	if before != uuid.Nil {
		ok, err := store.AttemptExists(ctx, s.Pool, before)
		if err != nil {
			return AttemptPage{}, err
		}
		if !ok {
			return AttemptPage{}, errs.InvalidField("before", "is not an attempt of this list")
		}
	}
	as, err := store.ListAttempts(ctx, s.Pool, store.AttemptFilter{Subject: subject, Before: before, Limit: limit + 1})
	if err != nil {
		return AttemptPage{}, err
	}
	p := AttemptPage{Attempts: as}
	if len(as) > limit {
		p.Attempts = as[:limit]
		next := as[limit-1].ID
		p.Next = &next
	}
	if p.Attempts == nil {
		p.Attempts = []domain.Attempt{}
	}
	return p, nil
}
