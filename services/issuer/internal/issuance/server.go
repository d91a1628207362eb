package issuance

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/goodkey"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/ct"
	"github.com/certlife/platform/services/issuer/internal/domain"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// TimerTLSIssue issues an approved server certificate (key = certificate
// id). The consumer only records the approval and sets this timer: the
// issuance talks to CT logs, and its retries are this timer's, never a
// redelivery loop of the consumer.
const TimerTLSIssue = "issuer-tls-issue"

// Audit actions of server issuance (OP-4).
const (
	AuditIssued         = "certificate.issued"
	AuditIssuanceFailed = "certificate.issuance_failed"
	AuditIssuanceRetry  = "certificate.issuance_retried"
)

// onServerApproved records an approved server application's certificate,
// pending, and sets its issuance timer, due now. The unique constraint on
// the application makes a second approval — a redelivery under another
// event ID — change nothing (IS-5).
func (s *Service) onServerApproved(ctx context.Context, tx pgx.Tx, env events.Envelope, a events.Application) error {
	srv := *a.Server
	raw, err := json.Marshal(srv)
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	var prevID *uuid.UUID
	// A renewal or reissue may follow a certificate this issuer made, or
	// one imported elsewhere (SV-1) that it never saw: only the former is
	// linked.
	if p, err := uuid.Parse(a.PreviousCertificateID); err == nil {
		if _, err := store.Get(ctx, tx, p); err == nil {
			prevID = &p
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	inserted, err := store.InsertPending(ctx, tx, &store.Certificate{
		ID: id, ApplicationID: a.ID, ApplicantID: a.ApplicantID, Kind: a.Kind, PreviousCertificateID: prevID,
		CorrelationID: env.CorrelationID, NameEn: strings.TrimSpace(srv.CommonName),
		OrganizationEn: strings.TrimSpace(srv.Organization.NameEn), Email: srv.TechnicalContact.Email,
		Language: a.Language, CreatedAt: s.Clock.Now(), CustomerID: srv.CustomerID, Server: raw,
	})
	if err != nil || !inserted {
		return err
	}
	return timer.Schedule(ctx, tx, TimerTLSIssue, id.String(), s.Clock.Now(), nil)
}

// serverFailure is why an attempt did not issue.
type serverFailure struct {
	stage  string
	detail string
	final  bool // no automatic attempt follows
	serial string
	logs   []ct.Attempt
}

func (f *serverFailure) Error() string { return f.stage + ": " + f.detail }

func refused(stage, detail string) *serverFailure {
	return &serverFailure{stage: stage, detail: detail, final: true}
}

// OnTLSIssue is one issuance attempt of a server certificate (IS-2, IS-3,
// IS-4, IS-9, IS-10, IS-11, SV-6, SV-10), in the timer's transaction with
// the certificate row locked (serials, precertificates and SCTs commit in
// their own short transactions, as they are made):
//
//  1. SV-6 again, at signing: the CSR's signature, key and subject
//     (pkg/goodkey), and not a CA key;
//  2. the subject, names and validity from the approved application
//     (IS-4: the cap by issuance date, never past the coverage);
//  3. a precertificate — serial committed first (IS-2), linted on a
//     throwaway-key copy (IS-3), signed by the TLS CA itself (IS-11) with
//     the poison extension, committed before any log sees it — or the one
//     a previous attempt made, while it is fresh;
//  4. SCTs from the CT logs (IS-9), each verified and kept as it comes;
//  5. the final certificate: the same TBS without the poison and with the
//     SCT list, linted, signed, checked against the precertificate and
//     its embedded SCTs verified; then recorded with its event and audit
//     entry in this transaction.
//
// A refusal is recorded as a final failure (no retry loop). Too few SCTs
// is recorded too, and this timer set again for the next attempt, until
// domain.CTRetryDelays run out. Only an error of the platform itself (the
// database, the clock) is returned, for the timer to retry.
func (s *Service) OnTLSIssue(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	id, err := uuid.Parse(t.Key)
	if err != nil {
		return nil // not ours to retry
	}
	c, err := store.Lock(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Product != events.ProductServer || c.Status != store.StatusPending {
		return nil // issued, failed for good, or not a server certificate
	}
	// No issuance slot here: the timer worker bounds these attempts
	// (TIMER_WORKERS), and waiting for a slot while holding the timer's
	// connection could starve the retrievals that hold the slots.
	var req events.ServerApplication
	if err := json.Unmarshal(c.Server, &req); err != nil {
		return s.failServer(ctx, tx, c, refused(events.IssuanceStageRequest, "the stored application does not decode: "+err.Error()))
	}
	attempt := c.IssuanceAttempts + 1
	issued, err := s.issueServer(ctx, tx, c, req)
	var f *serverFailure
	if errors.As(err, &f) {
		if !f.final {
			if next, ok := domain.NextCTAttempt(attempt, s.Clock.Now()); ok {
				return s.failServerRetry(ctx, tx, c, f, attempt, next)
			}
			f.final = true
			f.detail += fmt.Sprintf(" (attempt %d was the last automatic one)", attempt)
		}
		return s.failServer(ctx, tx, c, f)
	}
	if err != nil {
		return err
	}
	return s.recordServerIssued(ctx, tx, c, req, issued)
}

// serverIssued is a signed server certificate.
type serverIssued struct {
	cert   *x509.Certificate
	issuer *ca.Issuer
	names  []string
	scts   int
}

// issueServer runs the steps of OnTLSIssue up to the final signature. A
// *serverFailure says why no certificate was made; any other error is the
// platform's.
func (s *Service) issueServer(ctx context.Context, tx pgx.Tx, c *store.Certificate, req events.ServerApplication) (*serverIssued, error) {
	// 1. SV-6 again (defense in depth: intake checked it at submission).
	csr, err := goodkey.ParseCSR(req.CSR)
	if err == nil {
		err = s.KeyPolicy.CheckCSR(csr)
	}
	if p, ok := goodkey.IsProblem(err); ok {
		return nil, refused(events.IssuanceStageCSR, p.Message)
	}
	if err != nil {
		return nil, refused(events.IssuanceStageCSR, err.Error())
	}
	pub := csr.PublicKey
	if s.CA.IsCAKey(pub) {
		return nil, refused(events.IssuanceStageCSR, "the CSR's key belongs to the CA")
	}
	// TLS BR 6.1.1.3: never again a certificate for a key revoked for
	// key compromise (a replacement after a mass revocation, a coverage
	// reissue with the previous key).
	spki := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	if bad, err := store.KeyCompromised(ctx, tx, spki[:]); err != nil {
		return nil, err
	} else if bad {
		return nil, refused(events.IssuanceStageCSR, "a certificate of this key was revoked for key compromise; a new key is needed (TLS BR 6.1.1.3)")
	}

	// 2. What the certificate says.
	names, err := domain.ServerNames(req.CommonName, req.Domains)
	if err != nil {
		return nil, refused(events.IssuanceStageRequest, "names: "+err.Error())
	}
	subject := profile.ServerSubject{
		CommonName: names[0], Organization: strings.TrimSpace(req.Organization.NameEn),
		Locality: strings.TrimSpace(req.Organization.Address.City), State: strings.TrimSpace(req.Organization.Address.State),
		Country: strings.ToUpper(strings.TrimSpace(req.Organization.Address.Country)),
	}
	// IS-11: a server certificate is issued by the TLS CA, and by no other.
	iss, err := s.CA.ForPurpose(ca.PurposeTLS)
	if err != nil {
		return nil, refused(events.IssuanceStageRequest, "no TLS issuing CA is loaded: "+err.Error())
	}
	if len(s.CT.Logs) == 0 {
		return nil, &serverFailure{stage: events.IssuanceStageCT, detail: "no CT logs are configured (CT_LOGS)"}
	}
	urls := profile.URLs{CRL: iss.CRLURL(), CAIssuers: iss.CertURL()}
	now := s.Clock.Now()

	// 3. The precertificate: a fresh one of an earlier attempt, or a new one.
	pre, err := store.LatestPrecert(ctx, tx, c.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var tpl *x509.Certificate
	if pre != nil && now.Sub(pre.NotBefore) < domain.PrecertReuse {
		serial, ok := new(big.Int).SetString(pre.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("precertificate serial %q is not hex", pre.Serial)
		}
		if tpl, err = profile.ServerTemplate(subject, names, serial, pre.NotBefore.UTC(), pre.NotAfter.UTC(), pub, urls); err != nil {
			return nil, refused(events.IssuanceStageRequest, err.Error())
		}
	} else {
		if pre, tpl, err = s.newPrecert(ctx, c, subject, names, pub, iss, urls, req.CoverageEnd); err != nil {
			return nil, err
		}
	}

	// 4. SCTs (IS-9).
	chain, err := ct.ParseChain(pre.DER, iss.Cert.Raw)
	if err != nil {
		return nil, err
	}
	have, err := s.storedSCTs(ctx, tx, pre.Serial)
	if err != nil {
		return nil, err
	}
	need := domain.RequiredSCTs(tpl.NotBefore, tpl.NotAfter, s.MinSCTs)
	ctCtx, cancel := context.WithTimeout(ctx, s.ctBudget(ctx))
	defer cancel()
	have, failed, err := s.CT.Collect(ctCtx, chain, have, need, domain.MinSCTOperators, func(got ct.SCT) error {
		raw, err := got.Encode()
		if err != nil {
			return err
		}
		return store.SaveSCT(ctx, s.Pool, pre.Serial, store.StoredSCT{LogID: got.Log.ID[:], LogURL: got.Log.URL, SCT: raw}, s.Clock.Now())
	})
	if err != nil {
		return nil, err
	}
	if !ct.Enough(have, need, domain.MinSCTOperators) {
		return nil, &serverFailure{stage: events.IssuanceStageCT, serial: pre.Serial, logs: failed,
			detail: fmt.Sprintf("%d SCTs from %d log operators; %d from at least %d operators are required",
				len(have), countOperators(have), need, domain.MinSCTOperators)}
	}

	// 5. The final certificate.
	list, err := ct.ListExtensionValue(have)
	if err != nil {
		return nil, err
	}
	tpl.ExtraExtensions = []pkix.Extension{{Id: profile.OIDSCTList, Value: list}}
	der, err := iss.Sign(tpl, pub)
	if f := lintFailure(err, pre.Serial); f != nil {
		s.Metrics.LintFailures.Inc()
		return nil, f
	}
	if err != nil {
		return nil, err
	}
	final, err := ct.ParseChain(der)
	if err != nil {
		return nil, refused(events.IssuanceStageVerify, "the signed certificate does not parse: "+err.Error())
	}
	if err := ct.SameTBSButCT(final[0], chain[0]); err != nil {
		return nil, &serverFailure{stage: events.IssuanceStageVerify, detail: err.Error(), final: true, serial: pre.Serial}
	}
	for _, h := range have {
		if err := ct.Verify(h.Log, []*ctx509.Certificate{final[0], chain[1]}, h.SCT, true); err != nil {
			return nil, &serverFailure{stage: events.IssuanceStageVerify, final: true, serial: pre.Serial,
				detail: "embedded SCT of " + h.Log.Name() + ": " + err.Error()}
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &serverIssued{cert: cert, issuer: iss, names: names, scts: len(have)}, nil
}

// ctBudget is how long one attempt may spend on the CT logs: three
// rounds of submissions (the first logs, their replacements, and the
// replacements' replacements), and never so long that the attempt cannot
// record its outcome before its timer's deadline.
func (s *Service) ctBudget(ctx context.Context) time.Duration {
	budget := 3 * s.CT.Timeout
	if budget <= 0 {
		budget = 30 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) - 10*time.Second; left < budget {
			budget = max(left, time.Second)
		}
	}
	return budget
}

// newPrecert makes and commits a new precertificate: the validity for
// today (IS-4), a serial committed before anything is signed (IS-2), the
// template linted on a throwaway-key copy and signed by the TLS CA with
// the poison extension (IS-3, RFC 6962 §3.1).
func (s *Service) newPrecert(ctx context.Context, c *store.Certificate, subject profile.ServerSubject, names []string,
	pub crypto.PublicKey, iss *ca.Issuer, urls profile.URLs, coverageEnd time.Time) (*store.Precert, *x509.Certificate, error) {
	now := s.Clock.Now()
	notBefore, notAfter, err := domain.ServerValidity(now, coverageEnd)
	if err != nil {
		return nil, nil, refused(events.IssuanceStageRequest, err.Error())
	}
	serial, err := ca.NewSerial()
	if err != nil {
		return nil, nil, err
	}
	serialHex := ca.SerialHex(serial)
	tpl, err := profile.ServerTemplate(subject, names, serial, notBefore, notAfter, pub, urls)
	if err != nil {
		return nil, nil, refused(events.IssuanceStageRequest, err.Error())
	}
	if err := store.RecordSerial(ctx, s.Pool, serialHex, c.ID, now); err != nil {
		return nil, nil, err
	}
	pre := *tpl
	pre.ExtraExtensions = []pkix.Extension{profile.PoisonExtension()}
	der, err := iss.Sign(&pre, pub)
	if f := lintFailure(err, serialHex); f != nil {
		s.Metrics.LintFailures.Inc()
		return nil, nil, f
	}
	if err != nil {
		return nil, nil, err
	}
	p := &store.Precert{Serial: serialHex, DER: der, NotBefore: notBefore, NotAfter: notAfter, CreatedAt: now}
	if err := store.SavePrecert(ctx, s.Pool, c.ID, *p); err != nil {
		return nil, nil, err
	}
	return p, tpl, nil
}

// lintFailure turns a refusal of the CA (a lint finding, IS-3; a
// template of the wrong purpose, IS-11) into a final failure.
func lintFailure(err error, serial string) *serverFailure {
	var lint *ca.LintError
	if errors.As(err, &lint) {
		return &serverFailure{stage: events.IssuanceStageLint, detail: lint.Error(), final: true, serial: serial}
	}
	if errors.Is(err, ca.ErrWrongPurpose) {
		return &serverFailure{stage: events.IssuanceStageRequest, detail: err.Error(), final: true, serial: serial}
	}
	return nil
}

// storedSCTs are the SCTs kept for a precertificate whose logs are still
// configured (a log removed from CT_LOGS no longer counts).
func (s *Service) storedSCTs(ctx context.Context, tx pgx.Tx, serial string) ([]ct.SCT, error) {
	stored, err := store.SCTs(ctx, tx, serial)
	if err != nil {
		return nil, err
	}
	var out []ct.SCT
	for _, st := range stored {
		for _, l := range s.CT.Logs {
			if string(l.ID[:]) != string(st.LogID) {
				continue
			}
			sct, err := ct.DecodeSCT(st.SCT)
			if err != nil {
				return nil, fmt.Errorf("stored SCT of %s: %w", st.LogURL, err)
			}
			out = append(out, ct.SCT{Log: l, SCT: sct})
		}
	}
	return out, nil
}

func countOperators(scts []ct.SCT) int {
	ops := map[string]bool{}
	for _, s := range scts {
		ops[s.Log.Operator] = true
	}
	return len(ops)
}

// recordServerIssued stores the certificate, emits CertificateIssued with
// the PEM chain for delivery to the technical contact (SV-10) and writes
// the audit entry (OP-4), all in the timer's transaction.
func (s *Service) recordServerIssued(ctx context.Context, tx pgx.Tx, c *store.Certificate, req events.ServerApplication, got *serverIssued) error {
	now := s.Clock.Now()
	cert, iss := got.cert, got.issuer
	serialHex := ca.SerialHex(cert.SerialNumber)
	if err := store.IssuedServer(ctx, tx, c.ID, serialHex, iss.Slug, cert.NotBefore, cert.NotAfter, cert.Raw, now); err != nil {
		return err
	}
	pemChain := string(pemCertificate(cert.Raw)) + string(pemCertificate(iss.Cert.Raw))
	contact := req.TechnicalContact
	prevID := ""
	if c.PreviousCertificateID != nil {
		prevID = c.PreviousCertificateID.String()
	}
	if err := s.emit(ctx, tx, events.CertificateIssued{
		CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, ApplicantID: c.ApplicantID,
		Product: events.ProductServer, Kind: c.Kind, PreviousCertificateID: prevID,
		Recipient: events.Recipient{Email: contact.Email, Language: c.Language, Name: contact.Name}, Serial: serialHex, Issuer: iss.Slug,
		NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		CustomerID: req.CustomerID, OrderID: req.OrderID, DNSNames: got.names, TechnicalContact: &contact,
		PEMChain: pemChain, CoverageEnd: req.CoverageEnd,
	}, c.CorrelationID); err != nil {
		return err
	}
	if err := audit.Record(ctx, tx, now, audit.System, AuditIssued, c.ApplicationID, map[string]any{
		"certificate_id": c.ID.String(), "product": events.ProductServer, "serial": serialHex, "issuer": iss.Slug,
		"not_before": cert.NotBefore, "not_after": cert.NotAfter, "dns_names": got.names, "scts": got.scts,
	}); err != nil {
		return err
	}
	// IS-4: a coverage longer than this certificate is served by a
	// reissue, announced before its last days. The certificate it
	// replaces, if any, is left to expire (not revoked): it is the one
	// the customer's servers are using until they install this one. An
	// ACME client orders its own next certificate.
	if req.ACMEAccountURI == "" {
		if err := s.scheduleCoverageReissue(ctx, tx, c.ID, cert.NotBefore, cert.NotAfter, req.CoverageEnd); err != nil {
			return err
		}
	}
	s.Metrics.Issued.WithLabelValues(events.ProductServer).Inc()
	s.Log.Info("server certificate issued", "certificate_id", c.ID, "serial", serialHex, "names", got.names,
		"not_before", cert.NotBefore, "not_after", cert.NotAfter, "scts", got.scts)
	return nil
}

// failServerRetry records an attempt that found too few SCTs and sets the
// timer for the next one.
func (s *Service) failServerRetry(ctx context.Context, tx pgx.Tx, c *store.Certificate, f *serverFailure, attempt int, next time.Time) error {
	if err := s.recordFailure(ctx, tx, c, f, attempt, &next); err != nil {
		return err
	}
	return timer.Schedule(ctx, tx, TimerTLSIssue, c.ID.String(), next, nil)
}

// failServer records a final failure: no certificate, and no automatic
// attempt follows.
func (s *Service) failServer(ctx context.Context, tx pgx.Tx, c *store.Certificate, f *serverFailure) error {
	f.final = true
	return s.recordFailure(ctx, tx, c, f, c.IssuanceAttempts+1, nil)
}

// recordFailure makes a failed attempt visible to operators: the failure
// row, the certificate's state, CertificateIssuanceFailed, the audit
// entry, the metric and the log line — together, in tx.
func (s *Service) recordFailure(ctx context.Context, tx pgx.Tx, c *store.Certificate, f *serverFailure, attempt int, next *time.Time) error {
	now := s.Clock.Now()
	var logs json.RawMessage
	if len(f.logs) > 0 {
		var err error
		if logs, err = json.Marshal(f.logs); err != nil {
			return err
		}
	}
	if err := store.RecordFailure(ctx, tx, store.Failure{
		CertificateID: c.ID, ApplicationID: c.ApplicationID, At: now, Stage: f.stage, Detail: f.detail,
		Attempt: attempt, Final: f.final, NextAttemptAt: next, Serial: f.serial, Logs: logs,
	}); err != nil {
		return err
	}
	ev := events.CertificateIssuanceFailed{
		CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, Product: c.Product, Stage: f.stage,
		Detail: f.detail, Attempt: attempt, Final: f.final, FailedAt: now,
	}
	if next != nil {
		ev.NextAttemptAt = *next
	}
	if err := s.emit(ctx, tx, ev, c.CorrelationID); err != nil {
		return err
	}
	if err := audit.Record(ctx, tx, now, audit.System, AuditIssuanceFailed, c.ApplicationID, map[string]any{
		"certificate_id": c.ID.String(), "stage": f.stage, "detail": f.detail, "attempt": attempt,
		"final": f.final, "serial": f.serial, "logs": f.logs,
	}); err != nil {
		return err
	}
	s.Metrics.IssuanceFailures.WithLabelValues(f.stage, fmt.Sprint(f.final)).Inc()
	s.Log.Error("server certificate not issued", "certificate_id", c.ID, "application_id", c.ApplicationID,
		"stage", f.stage, "detail", f.detail, "attempt", attempt, "final", f.final, "next_attempt_at", next)
	return nil
}

// IssuanceFailures lists failed issuance attempts for operators.
func (s *Service) IssuanceFailures(ctx context.Context, f store.FailureFilter) ([]store.Failure, error) {
	return store.ListFailures(ctx, s.Pool, f)
}

// RetryIssuance is an operator's retry of a server certificate whose
// issuance failed for good (e.g. after the CT logs are back): it is
// pending again, its attempts counted afresh, and its timer due now.
func (s *Service) RetryIssuance(ctx context.Context, id uuid.UUID, actor string) error {
	return db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		c, err := store.Lock(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && c.Product != events.ProductServer) {
			return notFound()
		}
		if err != nil {
			return err
		}
		ok, err := store.Reopen(ctx, tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return conflict("not-failed", "only a server certificate whose issuance failed can be retried; this one is "+c.Status)
		}
		now := s.Clock.Now()
		if err := audit.Record(ctx, tx, now, actor, AuditIssuanceRetry, c.ApplicationID,
			map[string]any{"certificate_id": c.ID.String()}); err != nil {
			return err
		}
		return timer.Schedule(ctx, tx, TimerTLSIssue, id.String(), now, nil)
	})
}
