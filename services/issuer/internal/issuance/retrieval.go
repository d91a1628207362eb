package issuance

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/domain"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// Retrieval modes (PC-13).
const (
	ModePKCS12 = "pkcs12"
	ModeCSR    = "csr"
)

// Retrieval is the applicant's validated request. The password lives only
// in memory for the time it takes to encrypt the PKCS#12 file.
type Retrieval struct {
	Mode          string
	Password      string           // ModePKCS12; empty = the platform generates one (IS-8)
	PKCS12Profile string           // ModePKCS12: PKCS12Modern (default) or PKCS12Legacy
	PublicKey     crypto.PublicKey // ModeCSR, already checked by profile.ParseCSR
	// MailboxEmail and MailboxValidatedAt are the latest validation of
	// the applicant's mailbox, from the session token (PC-16).
	MailboxEmail       string
	MailboxValidatedAt time.Time
}

// LogValue keeps the password out of any log line.
func (r Retrieval) LogValue() slog.Value { return slog.StringValue("retrieval(" + r.Mode + ")") }

// State is a retrieval's progress.
type State struct {
	CertificateID string `json:"certificate_id"`
	Status        string `json:"status"`
	Mode          string `json:"mode"`
	Failure       string `json:"failure,omitempty"`
	// PKCS12Password is the password the platform generated for the file
	// (IS-8). It is set only in the answer of the request that made the
	// file — never stored, logged, or repeated by a later request.
	PKCS12Password string `json:"pkcs12_password,omitempty"`
}

// LogValue keeps a generated password out of any log line.
func (st State) LogValue() slog.Value {
	return slog.GroupValue(slog.String("certificate_id", st.CertificateID), slog.String("status", st.Status),
		slog.String("mode", st.Mode), slog.String("failure", st.Failure))
}

func stateOf(c *store.Certificate) State {
	st := State{CertificateID: c.ID.String(), Status: c.RetrievalStatus, Mode: c.RetrievalMode}
	if c.RetrievalStatus == store.RetrievalFailed {
		st.Failure = c.RetrievalFailure
	}
	return st
}

// Retrieve serves the applicant's "agree" (PC-13): it makes the key (or
// takes the CSR's), signs the certificate and, for PKCS#12, keeps the
// password-encrypted file for one download. It runs synchronously: the
// returned state is already ready (pkcs12), delivered (csr) or failed.
//
// Idempotent: the certificate row stays locked from the first read to the
// commit, so a second press — even a concurrent one — waits and then
// finds the first retrieval and returns it; it never issues twice.
func (s *Service) Retrieve(ctx context.Context, applicantID string, id uuid.UUID, req Retrieval) (State, error) {
	release, err := s.acquireSlot(ctx)
	if err != nil {
		return State{}, err
	}
	defer release()
	var st State
	generated := "" // a password made here, handed back only after the commit
	err = db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		c, err := store.LockOwned(ctx, tx, id, applicantID)
		if errors.Is(err, store.ErrNotFound) {
			return notFound()
		}
		if err != nil {
			return err
		}
		if c.RetrievalMode != "" {
			if c.RetrievalMode != req.Mode {
				return conflict("retrieval-mode", "this certificate is already being retrieved as "+c.RetrievalMode)
			}
			st = stateOf(c)
			return nil
		}
		if c.Status != store.StatusReady {
			return conflict("not-retrievable", "this certificate is not waiting for retrieval")
		}
		// PC-16: no issuance without a mailbox validation of the
		// certificate's address in the last 30 days. A retrieval already
		// under way (above) is only reported, not issued again.
		if !domain.MailboxValidated(c.Email, req.MailboxEmail, req.MailboxValidatedAt, s.Clock.Now()) {
			return conflict("mailbox-validation-required", "the mailbox "+c.Email+" has not been validated in the last 30 days: "+
				"ask for a new certificate code (POST /v1/certificate-codes), then sign in with it within 24 hours")
		}
		var prev *store.Certificate
		if c.PreviousCertificateID != nil {
			if prev, err = store.Lock(ctx, tx, *c.PreviousCertificateID); err != nil {
				return err
			}
		}
		now := s.Clock.Now()
		var prevNotAfter time.Time
		if prev != nil && prev.NotAfter != nil {
			prevNotAfter = *prev.NotAfter
		}
		notBefore, notAfter, err := profile.Validity(c.Kind, now, prevNotAfter, s.Term)
		if err != nil {
			return conflict("validity", err.Error())
		}
		pub, key, err := s.subscriberKey(c, prev, req)
		if err != nil {
			return err
		}
		if req.Mode == ModeCSR {
			if err := keyNotCompromised(ctx, tx, pub); err != nil {
				return err
			}
		}
		if err := store.StartRetrieval(ctx, tx, c.ID, req.Mode, now); err != nil {
			return err
		}
		if req.Mode == ModePKCS12 && req.Password == "" {
			if req.Password, err = GeneratePassword(); err != nil {
				return err
			}
			generated = req.Password
		}
		st, err = s.issue(ctx, tx, c, prev, req, pub, key, notBefore, notAfter)
		return err
	})
	if err == nil && generated != "" && st.Status == store.RetrievalReady {
		// Only now, after the commit, and only to this caller (IS-8).
		st.PKCS12Password = generated
	}
	return st, err
}

// subscriberKey is the key the certificate certifies: a new RSA key for
// PKCS#12 delivery, or the CSR's key after the checks that need the
// database (not a CA key; not the key a key-compromise reissue replaces).
func (s *Service) subscriberKey(c, prev *store.Certificate, req Retrieval) (crypto.PublicKey, crypto.Signer, error) {
	switch req.Mode {
	case ModePKCS12:
		key, err := rsa.GenerateKey(rand.Reader, GeneratedKeyBits)
		if err != nil {
			return nil, nil, err
		}
		return key.Public(), key, nil
	case ModeCSR:
		if s.CA.IsCAKey(req.PublicKey) {
			return nil, nil, invalid("csr", "this key belongs to the CA")
		}
		if prev != nil && c.Kind == events.KindReissue && c.ReissueReason == ReissueKeyCompromise && prev.DER != nil {
			if old, err := x509.ParseCertificate(prev.DER); err == nil {
				if k, ok := old.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(req.PublicKey) {
					return nil, nil, invalid("csr", "this key was reported compromised; make a new key")
				}
			}
		}
		return req.PublicKey, nil, nil
	default:
		return nil, nil, invalid("mode", "unknown retrieval mode")
	}
}

// issue records the serial, lints and signs, and stores the result with
// its events. A lint failure is recorded (the retrieval fails) rather
// than rolled back.
func (s *Service) issue(ctx context.Context, tx pgx.Tx, c, prev *store.Certificate, req Retrieval,
	pub crypto.PublicKey, key crypto.Signer, notBefore, notAfter time.Time) (State, error) {
	now := s.Clock.Now()
	serial, err := ca.NewSerial()
	if err != nil {
		return State{}, err
	}
	serialHex := ca.SerialHex(serial)
	// IS-2: committed in its own transaction before anything is signed, so
	// the serial is on record even if this transaction never commits.
	if err := store.RecordSerial(ctx, s.Pool, serialHex, c.ID, now); err != nil {
		return State{}, err
	}
	// IS-11: a client certificate is issued by the S/MIME CA, and by no other.
	iss, err := s.CA.ForPurpose(ca.PurposeSMIME)
	if err != nil {
		return State{}, err
	}
	subject := profile.Subject{NameEn: c.NameEn, OrganizationEn: c.OrganizationEn,
		OrganizationIdentifier: c.OrganizationID, Email: c.Email}
	tpl, err := profile.Template(subject, serial, notBefore, notAfter, pub,
		profile.URLs{CRL: iss.CRLURL(), CAIssuers: iss.CertURL()})
	var der []byte
	if err != nil {
		// The application's data cannot make a conforming certificate:
		// the same outcome as a lint error.
		err = &ca.LintError{Findings: []string{"profile: " + err.Error()}}
	} else {
		der, err = iss.Sign(tpl, pub)
	}
	var lintErr *ca.LintError
	if errors.As(err, &lintErr) {
		s.Metrics.LintFailures.Inc()
		s.Log.Error("issuance stopped by lint (IS-3)", "certificate_id", c.ID, "serial", serialHex, "findings", lintErr.Findings)
		if err := store.FailRetrieval(ctx, tx, c.ID, lintErr.Error(), true); err != nil {
			return State{}, err
		}
		if err := audit.Record(ctx, tx, now, "applicant:"+c.ApplicantID, AuditIssuanceFailed, c.ApplicationID, map[string]any{
			"certificate_id": c.ID.String(), "product": c.Product, "stage": events.IssuanceStageLint,
			"detail": lintErr.Error(), "serial": serialHex, "final": true,
		}); err != nil {
			return State{}, err
		}
		return State{CertificateID: c.ID.String(), Status: store.RetrievalFailed, Mode: req.Mode, Failure: lintErr.Error()}, nil
	}
	if err != nil {
		return State{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return State{}, err
	}
	status := store.RetrievalDelivered
	if req.Mode == ModePKCS12 {
		status = store.RetrievalReady
		if err := s.keepPKCS12(ctx, tx, c.ID, key, cert, iss.Cert, req, now); err != nil {
			return State{}, err
		}
	}
	if err := store.Issued(ctx, tx, c.ID, serialHex, iss.Slug, cert.NotBefore, cert.NotAfter, der, now, status); err != nil {
		return State{}, err
	}
	prevID := ""
	if c.PreviousCertificateID != nil {
		prevID = c.PreviousCertificateID.String()
	}
	windows := domain.Windows(cert.NotAfter)
	if err := s.emit(ctx, tx, events.CertificateIssued{
		CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, ApplicantID: c.ApplicantID,
		Product: c.Product, Kind: c.Kind, PreviousCertificateID: prevID, Recipient: recipient(c),
		Serial: serialHex, Issuer: iss.Slug, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		Windows: &windows,
	}, c.CorrelationID); err != nil {
		return State{}, err
	}
	// OP-4: every issuance is in the audit log, in the issuance's transaction.
	if err := audit.Record(ctx, tx, now, "applicant:"+c.ApplicantID, AuditIssued, c.ApplicationID, map[string]any{
		"certificate_id": c.ID.String(), "product": c.Product, "serial": serialHex, "issuer": iss.Slug,
		"not_before": cert.NotBefore, "not_after": cert.NotAfter, "mode": req.Mode,
	}); err != nil {
		return State{}, err
	}
	if req.Mode == ModeCSR {
		if err := s.emit(ctx, tx, events.CertificateRetrieved{
			CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, Kind: c.Kind,
			PreviousCertificateID: prevID, Serial: serialHex, Mode: ModeCSR, RetrievedAt: now,
		}, c.CorrelationID); err != nil {
			return State{}, err
		}
	}
	// PC-12: the replacement is issued, so the certificate it replaces is
	// revoked as superseded in this same transaction — unless it already
	// is (a key-compromise reissue revoked it on acceptance).
	if c.Kind == events.KindReissue && prev != nil && prev.Status == store.StatusIssued && !prev.Revoked() {
		if _, _, err := s.revoke(ctx, tx, prev, profile.ReasonSuperseded, "system:reissue", c.CorrelationID); err != nil {
			return State{}, err
		}
	}
	s.Metrics.Issued.WithLabelValues(req.Mode).Inc()
	s.Log.Info("certificate issued", "certificate_id", c.ID, "serial", serialHex, "kind", c.Kind, "mode", req.Mode,
		"not_before", cert.NotBefore, "not_after", cert.NotAfter)
	return State{CertificateID: c.ID.String(), Status: status, Mode: req.Mode}, nil
}

// keepPKCS12 builds the PKCS#12 file in the requested profile (IS-8),
// seals it with the data key, and schedules its deletion if nobody
// downloads it within 24 hours (PC-14).
func (s *Service) keepPKCS12(ctx context.Context, tx pgx.Tx, id uuid.UUID, key crypto.Signer, cert, issuer *x509.Certificate,
	req Retrieval, now time.Time) error {
	p12, err := EncodePKCS12(req.PKCS12Profile, key, cert, issuer, req.Password)
	if err != nil {
		return err
	}
	sealed, err := s.CA.Sealer().Seal(p12, id[:])
	if err != nil {
		return err
	}
	expires := now.Add(PKCS12Lifetime)
	if err := store.PutPKCS12(ctx, tx, id, sealed, now, expires); err != nil {
		return err
	}
	return timer.Schedule(ctx, tx, TimerPKCS12Purge, id.String(), expires, nil)
}

// Progress is the state of a certificate's retrieval.
func (s *Service) Progress(ctx context.Context, applicantID string, id uuid.UUID) (State, error) {
	c, err := store.GetOwned(ctx, s.Pool, id, applicantID)
	if errors.Is(err, store.ErrNotFound) {
		return State{}, notFound()
	}
	if err != nil {
		return State{}, err
	}
	if c.RetrievalMode == "" {
		return State{}, absent("no retrieval has been requested for this certificate")
	}
	return stateOf(c), nil
}

// DownloadPKCS12 hands out the PKCS#12 file once (PC-14): it is deleted
// in the same transaction that marks the retrieval delivered, and the
// bytes are returned only after that commits. A second download is gone.
func (s *Service) DownloadPKCS12(ctx context.Context, applicantID string, id uuid.UUID) ([]byte, error) {
	var p12 []byte
	err := db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		c, err := store.LockOwned(ctx, tx, id, applicantID)
		if errors.Is(err, store.ErrNotFound) {
			return notFound()
		}
		if err != nil {
			return err
		}
		if c.RetrievalMode != ModePKCS12 {
			return conflict("no-pkcs12", "this certificate has no PKCS#12 file; request a PKCS#12 retrieval (without csr) first")
		}
		sealed, err := store.TakePKCS12(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			return gone("pkcs12-gone",
				"the PKCS#12 file was already downloaded or has expired; a lost file means a reissue")
		}
		if err != nil {
			return err
		}
		if p12, err = s.CA.Sealer().Open(sealed, id[:]); err != nil {
			return err
		}
		now := s.Clock.Now()
		if err := store.Delivered(ctx, tx, id, now); err != nil {
			return err
		}
		if err := timer.Cancel(ctx, tx, TimerPKCS12Purge, id.String()); err != nil {
			return err
		}
		prevID := ""
		if c.PreviousCertificateID != nil {
			prevID = c.PreviousCertificateID.String()
		}
		return s.emit(ctx, tx, events.CertificateRetrieved{
			CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, Kind: c.Kind,
			PreviousCertificateID: prevID, Serial: c.Serial, Mode: ModePKCS12, RetrievedAt: now,
		}, c.CorrelationID)
	})
	return p12, err
}

// OnPKCS12Purge deletes a PKCS#12 file nobody downloaded within 24 hours:
// the platform keeps no copy of a subscriber key (PC-14). The certificate
// stays issued; a lost file means a reissue.
func (s *Service) OnPKCS12Purge(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	id, err := uuid.Parse(t.Key)
	if err != nil {
		return nil // not ours to retry
	}
	dropped, err := store.DropPKCS12(ctx, tx, id)
	if err != nil || !dropped {
		return err
	}
	s.Metrics.Purged.Inc()
	s.Log.Info("undownloaded PKCS#12 file deleted", "certificate_id", id)
	return store.FailRetrieval(ctx, tx, id, "download_expired", false)
}

// Owns is the one ownership rule of the certificate routes: whether the
// session's subject may see certificate c. A client certificate is its
// applicant's. A server certificate is its customer's (the account of
// the order, issue 8); until customer sessions exist an applicant
// session of the application's applicant is accepted too.
func Owns(c *store.Certificate, subject string) bool {
	if subject == "" {
		return false
	}
	if c.Product == events.ProductServer {
		return subject == c.CustomerID || subject == c.ApplicantID
	}
	return subject == c.ApplicantID
}

// Chain is the PEM of an issued certificate followed by its issuing CA
// (IS-1, SV-10). Another's certificate is not found. A client
// certificate's chain is a certificate step, which needs a session
// opened with the certificate code (PC-7); a server certificate's
// needs its owner's session only.
func (s *Service) Chain(ctx context.Context, subject string, codeVerified bool, id uuid.UUID) ([]byte, error) {
	c, err := store.Get(ctx, s.Pool, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !Owns(c, subject)) {
		return nil, notFound()
	}
	if err != nil {
		return nil, err
	}
	if c.Product != events.ProductServer && !codeVerified {
		return nil, CodeRequired()
	}
	if c.Status != store.StatusIssued {
		return nil, conflict("not-issued", "this certificate has not been issued yet")
	}
	out := pemCertificate(c.DER)
	issuer, ok := s.CA.PEM(c.Issuer)
	if !ok {
		return nil, fmt.Errorf("certificate %s: issuing CA %q is not loaded", c.ID, c.Issuer)
	}
	return append(out, issuer...), nil
}

// List is an applicant's certificates eligible for a step.
func (s *Service) List(ctx context.Context, applicantID, eligibility string) ([]*store.Certificate, error) {
	certs, err := store.ListEligible(ctx, s.Pool, applicantID, eligibility)
	if err != nil || eligibility == store.EligibleRetrieval {
		return certs, err
	}
	now := s.Clock.Now()
	open := certs[:0]
	for _, c := range certs {
		w := domain.Windows(*c.NotAfter)
		if (eligibility == store.EligibleRenewal && w.RenewalOpen(now)) || (eligibility == store.EligibleReissue && w.ReissueOpen(now)) {
			open = append(open, c)
		}
	}
	return open, nil
}

// keyNotCompromised refuses a subscriber key whose certificate was
// revoked for key compromise, whoever holds it (SBR and TLS BR 6.1.1.3).
func keyNotCompromised(ctx context.Context, tx pgx.Tx, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return invalid("csr", "the key cannot be encoded")
	}
	h := sha256.Sum256(der)
	bad, err := store.KeyCompromised(ctx, tx, h[:])
	if err != nil {
		return err
	}
	if bad {
		return invalid("csr", "a certificate of this key was revoked for key compromise; make a new key")
	}
	return nil
}
