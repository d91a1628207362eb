package ct_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"

	"github.com/certlife/platform/pkg/ctlog"
	"github.com/certlife/platform/services/issuer/internal/ct"
)

type served struct {
	log      *ctlog.Log
	url      string
	requests atomic.Int64
}

func serve(t *testing.T, n int) ([]*served, []string) {
	t.Helper()
	var out []*served
	var entries []string
	for i := range n {
		l, err := ctlog.New("log" + string(rune('A'+i)))
		if err != nil {
			t.Fatal(err)
		}
		s := &served{log: l}
		h := l.Handler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.requests.Add(1)
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		s.url = srv.URL
		out = append(out, s)
		entries = append(entries, srv.URL+"="+l.PublicKeyBase64())
	}
	return out, entries
}

// precertChain makes a CA and a precertificate it signed (poison
// extension), as certificate-transparency-go parses them.
func precertChain(t *testing.T) []*ctx509.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Truncate(time.Second)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test TLS CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pre := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "www.example.com"},
		DNSNames: []string{"www.example.com"}, NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}, Critical: true, Value: asn1.NullBytes}}}
	preDER, err := x509.CreateCertificate(rand.Reader, pre, caCert, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ct.ParseChain(preDER, caDER)
	if err != nil {
		t.Fatal(err)
	}
	if !chain[0].IsPrecertificate() {
		t.Fatal("not a precertificate")
	}
	return chain
}

func submitter(t *testing.T, spec string) *ct.Submitter {
	t.Helper()
	logs, err := ct.ParseLogs(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &ct.Submitter{Logs: logs, Timeout: 1500 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
}

// IS-9: CT_LOGS parsing — url=base64 key[@operator]; a log without an
// operator is its own; bad entries are refused with what is wrong.
func TestParseLogs_IS9(t *testing.T) {
	_, entries := serve(t, 3)
	logs, err := ct.ParseLogs(" " + entries[0] + " ," + entries[1] + "@Google," + entries[2] + "@Google,")
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 3 || logs[1].Operator != "Google" || logs[2].Operator != "Google" || logs[0].Operator == "Google" ||
		!strings.HasPrefix(logs[0].Operator, "log-key:") {
		t.Fatalf("operators %q %q %q", logs[0].Operator, logs[1].Operator, logs[2].Operator)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallRSA, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(p384.Public())
	key0 := strings.SplitN(entries[0], "=", 2)[1]
	for name, spec := range map[string]string{
		"no key":         "https://ct.example/log",
		"not a URL":      "ct.example/log=" + key0,
		"ftp":            "ftp://ct.example/log=" + key0,
		"query":          "https://ct.example/log?x=1=" + key0,
		"not base64":     "https://ct.example/log=%%%",
		"not a key":      "https://ct.example/log=" + base64.StdEncoding.EncodeToString([]byte("hello")),
		"RSA 1024":       "https://ct.example/log=" + base64.StdEncoding.EncodeToString(smallRSA),
		"P-384":          "https://ct.example/log=" + base64.StdEncoding.EncodeToString(p384DER),
		"same key twice": entries[0] + ",https://other.example/log=" + key0,
	} {
		if _, err := ct.ParseLogs(spec); err == nil || !strings.Contains(err.Error(), "CT_LOGS") {
			t.Errorf("%s: %v, want a refusal naming CT_LOGS", name, err)
		}
	}
}

// IS-9: Collect asks as many logs as needed, verifies each SCT against
// its log's key, replaces a log that fails (503, retried within the
// timeout) with the next, and reports too few SCTs without failing.
func TestCollectReplacesFailingLog_IS9(t *testing.T) {
	logs, entries := serve(t, 4)
	chain := precertChain(t)
	s := submitter(t, strings.Join(entries, ","))
	logs[0].log.SetFailing(http.StatusServiceUnavailable)
	var kept []ct.SCT
	got, failed, err := s.Collect(context.Background(), chain, nil, 2, 2, func(x ct.SCT) error { kept = append(kept, x); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !ct.Enough(got, 2, 2) || len(got) != 2 || len(kept) != 2 {
		t.Fatalf("%d SCTs (%d kept), want 2", len(got), len(kept))
	}
	if got[0].Log.URL != logs[1].url || got[1].Log.URL != logs[2].url {
		t.Fatalf("SCTs from %s and %s, want the second and the third log", got[0].Log.URL, got[1].Log.URL)
	}
	if len(failed) != 1 || failed[0].Log != logs[0].url || logs[0].requests.Load() < 1 {
		t.Fatalf("failures %+v, requests to the failing log %d", failed, logs[0].requests.Load())
	}
	if logs[3].requests.Load() != 0 {
		t.Fatal("a log was asked though enough SCTs had come")
	}
	for _, x := range got {
		if err := ct.Verify(x.Log, chain, x.SCT, false); err != nil {
			t.Fatalf("SCT of %s: %v", x.Log.URL, err)
		}
	}
	// Asking again with what is held asks nobody.
	before := logs[1].requests.Load() + logs[2].requests.Load() + logs[3].requests.Load()
	again, _, err := s.Collect(context.Background(), chain, got, 2, 2, func(ct.SCT) error { return nil })
	if err != nil || len(again) != 2 || logs[1].requests.Load()+logs[2].requests.Load()+logs[3].requests.Load() != before {
		t.Fatalf("a satisfied Collect submitted again: %v", err)
	}

	// Every log failing: no SCT, each failure reported, no error.
	for _, l := range logs {
		l.log.SetFailing(http.StatusServiceUnavailable)
	}
	none, failed, err := submitter(t, strings.Join(entries, ",")).Collect(context.Background(), chain, nil, 2, 2,
		func(ct.SCT) error { return nil })
	if err != nil || len(none) != 0 || len(failed) != 4 {
		t.Fatalf("all logs failing: %d SCTs, %d failures, %v", len(none), len(failed), err)
	}
}

// IS-9: SCTs must come from two operators. Logs grouped under one
// operator count once: the first two logs (operator X) give one
// operator, so the log of operator Y is asked too; with only operator X
// configured, Collect cannot be satisfied.
func TestCollectNeedsTwoOperators_IS9(t *testing.T) {
	logs, entries := serve(t, 3)
	chain := precertChain(t)
	spec := entries[0] + "@X," + entries[1] + "@X," + entries[2] + "@Y"
	got, _, err := submitter(t, spec).Collect(context.Background(), chain, nil, 2, 2, func(ct.SCT) error { return nil })
	if err != nil || !ct.Enough(got, 2, 2) {
		t.Fatalf("%d SCTs: %v", len(got), err)
	}
	if logs[2].requests.Load() == 0 || logs[1].requests.Load() != 0 {
		t.Fatalf("requests %d %d %d: the second log of operator X was asked before operator Y's",
			logs[0].requests.Load(), logs[1].requests.Load(), logs[2].requests.Load())
	}
	one := entries[0] + "@X," + entries[1] + "@X"
	got, _, err = submitter(t, one).Collect(context.Background(), chain, nil, 2, 2, func(ct.SCT) error { return nil })
	if err != nil || len(got) != 2 || ct.Enough(got, 2, 2) {
		t.Fatalf("one operator: %d SCTs, enough %v, %v", len(got), ct.Enough(got, 2, 2), err)
	}
}

// IS-9: the SCT list extension is what certificate-transparency-go reads
// back, and an SCT survives its stored encoding.
func TestSCTListExtensionRoundTrip_IS9(t *testing.T) {
	_, entries := serve(t, 2)
	chain := precertChain(t)
	got, _, err := submitter(t, strings.Join(entries, ",")).Collect(context.Background(), chain, nil, 2, 2, func(ct.SCT) error { return nil })
	if err != nil || len(got) != 2 {
		t.Fatalf("%d SCTs: %v", len(got), err)
	}
	raw, err := got[0].Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ct.DecodeSCT(raw)
	if err != nil || back.Timestamp != got[0].SCT.Timestamp || back.LogID != got[0].SCT.LogID {
		t.Fatalf("decoded SCT: %v", err)
	}
	if _, err := ct.DecodeSCT(append(raw, 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	value, err := ct.ListExtensionValue(got)
	if err != nil {
		t.Fatal(err)
	}
	var inner []byte
	if rest, err := asn1.Unmarshal(value, &inner); err != nil || len(rest) != 0 || len(inner) == 0 {
		t.Fatalf("the extension value is not one OCTET STRING: %v", err)
	}
}
