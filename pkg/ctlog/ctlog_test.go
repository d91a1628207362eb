package ctlog_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/ctutil"
	"github.com/google/certificate-transparency-go/jsonclient"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/google/certificate-transparency-go/x509util"

	"github.com/certlife/platform/pkg/ctlog"
)

var (
	oidPoison  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// IS-9: the log's SCT for a precertificate, embedded in the final
// certificate, verifies with google/certificate-transparency-go — through
// its own log client and ctutil.VerifySCT.
func TestPrecertSCTVerifiesIS9(t *testing.T) {
	log, err := ctlog.New("test-a")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(log.Handler())
	defer srv.Close()

	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test TLS CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)

	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "www.example.jp"},
		DNSNames: []string{"www.example.jp"}, NotBefore: time.Now(), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	pre := *tmpl
	pre.ExtraExtensions = []pkix.Extension{{Id: oidPoison, Critical: true, Value: asn1.NullBytes}}
	preDER, err := x509.CreateCertificate(rand.Reader, &pre, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}

	lc, err := client.New(srv.URL, http.DefaultClient, jsonclient.Options{PublicKey: pemKey(t, log)})
	if err != nil {
		t.Fatal(err)
	}
	sct, err := lc.AddPreChain(context.Background(), []ct.ASN1Cert{{Data: preDER}, {Data: caDER}})
	if err != nil {
		t.Fatal(err) // the client verifies the SCT's signature itself
	}
	if log.Submissions() != 1 {
		t.Fatalf("submissions %d", log.Submissions())
	}

	list, err := x509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{sct})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := cttls.Marshal(*list)
	ext, _ := asn1.Marshal(raw)
	final := *tmpl
	final.ExtraExtensions = []pkix.Extension{{Id: oidSCTList, Value: ext}}
	finalDER, err := x509.CreateCertificate(rand.Reader, &final, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ctx509.ParseCertificate(finalDER)
	if err != nil {
		t.Fatal(err)
	}
	issuer, _ := ctx509.ParseCertificate(caDER)
	scts, err := x509util.ParseSCTsFromSCTList(&leaf.SCTList)
	if err != nil || len(scts) != 1 {
		t.Fatalf("embedded SCTs: %v %d", err, len(scts))
	}
	if err := ctutil.VerifySCT(log.PublicKey(), []*ctx509.Certificate{leaf, issuer}, scts[0], true); err != nil {
		t.Fatalf("embedded SCT does not verify: %v", err)
	}
	other, _ := ctlog.New("other")
	if err := ctutil.VerifySCT(other.PublicKey(), []*ctx509.Certificate{leaf, issuer}, scts[0], true); err == nil {
		t.Fatal("an SCT verified under another log's key")
	}

	// A failing log answers its status and issues nothing (the client
	// retries a 503 until its context ends).
	log.SetFailing(http.StatusServiceUnavailable)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := lc.AddPreChain(ctx, []ct.ASN1Cert{{Data: preDER}, {Data: caDER}}); err == nil {
		t.Fatal("failing log issued an SCT")
	}
	if log.Submissions() != 1 {
		t.Fatalf("submissions %d", log.Submissions())
	}
	// A certificate is not a precertificate.
	log.SetFailing(0)
	if _, err := lc.AddPreChain(context.Background(), []ct.ASN1Cert{{Data: finalDER}, {Data: caDER}}); err == nil {
		t.Fatal("add-pre-chain took a final certificate")
	}
}

func pemKey(t *testing.T, l *ctlog.Log) string {
	t.Helper()
	return "-----BEGIN PUBLIC KEY-----\n" + l.PublicKeyBase64() + "\n-----END PUBLIC KEY-----\n"
}
