// Package ct submits precertificates to Certificate Transparency logs and
// collects the SCTs a server certificate embeds (IS-9, RFC 6962). The
// wire formats are google/certificate-transparency-go's: its log client
// (add-pre-chain), its SCT verification (ctutil) and its TLS encoding of
// the SCT list. Nothing here knows about Postgres or events.
package ct

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/ctutil"
	"github.com/google/certificate-transparency-go/jsonclient"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// Log is one configured CT log.
type Log struct {
	URL      string
	Operator string
	Key      crypto.PublicKey
	ID       [sha256.Size]byte // SHA-256 of the key's DER (RFC 6962 §3.2)
	client   *client.LogClient
	notes    *notes
}

// Name is how logs are named in failures and metrics: the URL.
func (l *Log) Name() string { return l.URL }

// ParseLogs reads CT_LOGS: comma-separated "url=base64-public-key",
// each optionally followed by "@operator". The key is the log's DER
// SubjectPublicKeyInfo in standard base64, as log lists give it (ECDSA
// P-256 or RSA of at least 2048 bits, RFC 6962 §2.1.4). A log without an
// operator is its own operator: distinct keys count as distinct
// operators unless the configuration groups them under one name.
func ParseLogs(spec string) ([]*Log, error) {
	var logs []*Log
	seen := map[[sha256.Size]byte]string{}
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		rawURL, rest, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("CT_LOGS entry %q: want url=base64-public-key[@operator]", entry)
		}
		b64, operator, _ := strings.Cut(rest, "@")
		u, err := url.Parse(strings.TrimRight(rawURL, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("CT_LOGS entry %q: %q is not an http(s) log URL", entry, rawURL)
		}
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("CT_LOGS entry for %s: the key is not standard base64", u)
		}
		key, err := ctx509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("CT_LOGS entry for %s: the key is not a DER SubjectPublicKeyInfo: %v", u, err)
		}
		switch k := key.(type) {
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return nil, fmt.Errorf("CT_LOGS entry for %s: an ECDSA log key must be P-256 (RFC 6962 §2.1.4)", u)
			}
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("CT_LOGS entry for %s: an RSA log key needs at least 2048 bits", u)
			}
		default:
			return nil, fmt.Errorf("CT_LOGS entry for %s: log keys are ECDSA P-256 or RSA", u)
		}
		id := sha256.Sum256(der)
		if other, dup := seen[id]; dup {
			return nil, fmt.Errorf("CT_LOGS: %s and %s have the same key", other, u)
		}
		seen[id] = u.String()
		operator = strings.TrimSpace(operator)
		if operator == "" {
			operator = "log-key:" + hex.EncodeToString(id[:8])
		}
		said := &notes{}
		c, err := client.New(u.String(), &http.Client{}, jsonclient.Options{PublicKeyDER: der, Logger: said, UserAgent: "certlife-issuer"})
		if err != nil {
			return nil, fmt.Errorf("CT_LOGS entry for %s: %v", u, err)
		}
		logs = append(logs, &Log{URL: u.String(), Operator: operator, Key: key, ID: id, client: c, notes: said})
	}
	return logs, nil
}

// notes keep what a log's client says when it backs off ("got HTTP
// status 503 …", a network error), so that a failure can say more than
// "deadline exceeded". Concurrent submissions to one log share them: the
// text is a diagnostic, not a record.
type notes struct {
	mu   sync.Mutex
	n    int
	last string
}

func (n *notes) Printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.n++
	n.last = fmt.Sprintf(format, args...)
}

func (n *notes) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.n
}

// since describes what was said after the count was before.
func (n *notes) since(before int) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n <= before {
		return "no retry"
	}
	return fmt.Sprintf("%d retries; last: %s", n.n-before, n.last)
}

// SCT is a verified SCT and the log that gave it.
type SCT struct {
	Log *Log
	SCT *ctgo.SignedCertificateTimestamp
}

// Encode is the SCT's TLS encoding (RFC 6962 §3.2), as kept and embedded.
func (s SCT) Encode() ([]byte, error) { return cttls.Marshal(*s.SCT) }

// DecodeSCT reads an SCT kept in its TLS encoding.
func DecodeSCT(raw []byte) (*ctgo.SignedCertificateTimestamp, error) {
	var sct ctgo.SignedCertificateTimestamp
	rest, err := cttls.Unmarshal(raw, &sct)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, errors.New("ct: trailing bytes after an SCT")
	}
	return &sct, nil
}

// ListExtensionValue is the extnValue of the embedded SCT list extension
// (1.3.6.1.4.1.11129.2.4.2, RFC 6962 §3.3): an OCTET STRING holding the
// TLS-encoded SignedCertificateTimestampList.
func ListExtensionValue(scts []SCT) ([]byte, error) {
	var list ctx509.SignedCertificateTimestampList
	for _, s := range scts {
		raw, err := s.Encode()
		if err != nil {
			return nil, err
		}
		list.SCTList = append(list.SCTList, ctx509.SerializedSCT{Val: raw})
	}
	encoded, err := cttls.Marshal(list)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(encoded)
}

// Attempt is one log's failure to give an SCT, for the failure record.
type Attempt struct {
	Log string `json:"log"`
	Err string `json:"error"`
}

// Submitter collects SCTs for precertificates.
type Submitter struct {
	Logs []*Log
	// Timeout bounds one log's submission, the client's own retries
	// (503, 429, network errors, with backoff) included.
	Timeout time.Duration
	Log     *slog.Logger
	// Observe, when set, is told each submission's outcome (metrics).
	Observe func(log string, ok bool)
}

// Enough reports whether scts satisfy the policy: at least need SCTs,
// from at least MinOperators distinct operators.
func Enough(scts []SCT, need, minOperators int) bool {
	return len(scts) >= need && operators(scts) >= minOperators
}

func operators(scts []SCT) int {
	ops := map[string]bool{}
	for _, s := range scts {
		ops[s.Log.Operator] = true
	}
	return len(ops)
}

// Collect submits the precertificate (chain[0], signed by chain[1]) to
// logs until the SCTs — have, and those it gets — number need and come
// from minOperators operators. Each log is tried at most once per call
// (its client retrying within Timeout); a log that fails is replaced by
// the next configured one not yet tried, preferring operators not yet
// represented. Every SCT is verified against its log's key before it is
// accepted, then handed to keep (which stores it) before Collect counts
// it. It returns every SCT held and the failures met; it never fails
// for a log's fault — the caller decides what too few SCTs mean.
func (s *Submitter) Collect(ctx context.Context, chain []*ctx509.Certificate, have []SCT, need, minOperators int,
	keep func(SCT) error) ([]SCT, []Attempt, error) {
	if len(chain) < 2 {
		return have, nil, errors.New("ct: a precertificate chain needs the precertificate and its issuer")
	}
	raw := make([]ctgo.ASN1Cert, len(chain))
	for i, c := range chain {
		raw[i] = ctgo.ASN1Cert{Data: c.Raw}
	}
	tried := map[[sha256.Size]byte]bool{}
	for _, h := range have {
		tried[h.Log.ID] = true
	}
	var failures []Attempt
	for !Enough(have, need, minOperators) {
		picked := s.pick(have, tried, need, minOperators)
		if len(picked) == 0 {
			break
		}
		type outcome struct {
			log *Log
			sct *ctgo.SignedCertificateTimestamp
			err error
		}
		results := make([]outcome, len(picked))
		var wg sync.WaitGroup
		for i, l := range picked {
			tried[l.ID] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				sct, err := s.submit(ctx, l, raw, chain)
				results[i] = outcome{l, sct, err}
			}()
		}
		wg.Wait()
		for _, r := range results {
			if s.Observe != nil {
				s.Observe(r.log.Name(), r.err == nil)
			}
			if r.err != nil {
				failures = append(failures, Attempt{Log: r.log.Name(), Err: r.err.Error()})
				s.Log.Warn("CT log gave no SCT; another is used if one is left", "log", r.log.Name(), "err", r.err)
				continue
			}
			got := SCT{Log: r.log, SCT: r.sct}
			if err := keep(got); err != nil {
				return have, failures, err
			}
			have = append(have, got)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return have, failures, nil
}

// pick chooses the next logs to try: enough untried ones to make up the
// shortfall if they all answer, first from operators not represented yet.
func (s *Submitter) pick(have []SCT, tried map[[sha256.Size]byte]bool, need, minOperators int) []*Log {
	ops := map[string]bool{}
	for _, h := range have {
		ops[h.Log.Operator] = true
	}
	missing := need - len(have)
	if d := minOperators - len(ops); d > missing {
		missing = d
	}
	var picked []*Log
	// New operators first, one log each, while operators are short.
	for _, l := range s.Logs {
		if len(picked) >= missing || len(ops) >= minOperators {
			break
		}
		if !tried[l.ID] && !ops[l.Operator] {
			picked = append(picked, l)
			ops[l.Operator] = true
		}
	}
	for _, l := range s.Logs {
		if len(picked) >= missing {
			break
		}
		if !tried[l.ID] && !slices.Contains(picked, l) {
			picked = append(picked, l)
		}
	}
	return picked
}

// submit sends the chain to one log (add-pre-chain) and verifies the SCT
// it returns: from this log (log ID = its key's hash), version 1, and
// signed by the log's key over this very precertificate (ctutil).
func (s *Submitter) submit(ctx context.Context, l *Log, raw []ctgo.ASN1Cert, chain []*ctx509.Certificate) (*ctgo.SignedCertificateTimestamp, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	before := l.notes.count()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sct, err := l.client.AddPreChain(ctx, raw)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("add-pre-chain: no SCT within %s (%s)", timeout, l.notes.since(before))
	}
	if err != nil {
		return nil, fmt.Errorf("add-pre-chain: %w (%s)", err, l.notes.since(before))
	}
	if err := Verify(l, chain, sct, false); err != nil {
		return nil, err
	}
	return sct, nil
}

// Verify checks an SCT of log l for chain (the precertificate and its
// issuer; or, embedded, the final certificate and its issuer).
func Verify(l *Log, chain []*ctx509.Certificate, sct *ctgo.SignedCertificateTimestamp, embedded bool) error {
	if sct.SCTVersion != ctgo.V1 {
		return fmt.Errorf("the SCT has version %d, not v1", sct.SCTVersion)
	}
	if sct.LogID.KeyID != l.ID {
		return errors.New("the SCT names another log")
	}
	if err := ctutil.VerifySCT(l.Key, chain, sct, embedded); err != nil {
		return fmt.Errorf("the SCT's signature does not verify with the log's key: %w", err)
	}
	return nil
}

// ParseChain reads DER certificates as certificate-transparency-go's x509
// needs them (it knows precertificates and embedded SCTs).
func ParseChain(ders ...[]byte) ([]*ctx509.Certificate, error) {
	out := make([]*ctx509.Certificate, len(ders))
	for i, der := range ders {
		c, err := ctx509.ParseCertificate(der)
		if err != nil && ctx509.IsFatal(err) {
			return nil, err
		}
		if c == nil {
			return nil, fmt.Errorf("ct: certificate %d does not parse", i)
		}
		out[i] = c
	}
	return out, nil
}

// SameTBSButCT reports whether the final certificate's TBS is the
// precertificate's with the poison removed and the SCT list added — and
// nothing else changed (RFC 6962 §3.1).
func SameTBSButCT(final, precert *ctx509.Certificate) error {
	a, err := ctx509.RemoveSCTList(final.RawTBSCertificate)
	if err != nil {
		return fmt.Errorf("final certificate: %w", err)
	}
	b, err := ctx509.RemoveCTPoison(precert.RawTBSCertificate)
	if err != nil {
		return fmt.Errorf("precertificate: %w", err)
	}
	if string(a) != string(b) {
		return errors.New("the final certificate's TBS differs from the precertificate's beyond the poison and the SCT list")
	}
	return nil
}
