package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// IS-9, IS-11, SV-10, SE-10: with CT_LOGS unset the all-in-one runs its
// dev CT logs (keys under DATA_DIR/ct, said in the banner) and a TLS CA
// beside the S/MIME one, so an approved server application is issued as
// it would be in production: a certificate from tls1 with 3 embedded
// SCTs (199 days today), mailed to the technical contact with its chain.
func TestAllInOneIssuesServerCertificatesWithDevCTLogs_IS9(t *testing.T) {
	e := startE2E(t, nil, nil)
	if len(e.p.DevCTLogs) != 3 || !strings.Contains(e.p.Banner(), "embedded CT logs") {
		t.Fatalf("dev CT logs %v; banner:\n%s", e.p.DevCTLogs, e.p.Banner())
	}
	for i, url := range e.p.DevCTLogs {
		r, err := http.Get(url + "/ct/v1/get-sth")
		if err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("dev log %s: %v %v", url, r, err)
		}
		r.Body.Close()
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, "ct", "log"+string(rune('1'+i))+".key")); err != nil {
			t.Fatalf("dev log key: %v", err)
		}
	}
	for _, f := range []string{"ca/tls1.pem", "ca/tls1.key"} {
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, f)); err != nil {
			t.Fatalf("no %s: %v", f, err)
		}
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "www.certlife-test.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	now := e.p.Clock.Now()
	app := events.Application{
		ID: uuid.NewString(), ApplicantID: "applicant-aio", Product: events.ProductServer, Kind: events.KindNew, Language: "en",
		Applicant: events.Applicant{NameEn: "Veri Taro", Email: "taro@example.co.jp"},
		Server: &events.ServerApplication{
			CustomerID: "customer-aio", OrderID: uuid.NewString(), TermMonths: 12,
			CSR:        string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
			CommonName: "www.certlife-test.com", DCV: events.DCVChoice{Method: events.DCVMethodDNS},
			TechnicalContact: events.Contact{Name: "Tech Contact", Email: "tech-aio@example.co.jp"},
			Organization: events.ServerOrganization{DUNS: "690000001", NameEn: "Certlife Test K.K.",
				Address: events.ServerAddress{City: "Chuo-ku", State: "Tokyo", Country: "JP"}},
			CoverageEnd: now.AddDate(1, 0, 0),
		},
	}
	env, err := events.New(events.ReviewApproved{ReviewID: uuid.NewString(), Application: app, Reviewer: "ops:test"}, now, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.p.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		t.Fatal(err)
	}
	issued, err := events.Decode[events.CertificateIssued](e.waitEvent(events.TypeCertificateIssued, app.ID))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(issued.PEMChain))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if issued.Issuer != "tls1" || leaf.NotAfter.Sub(leaf.NotBefore)+time.Second != 199*24*time.Hour {
		t.Fatalf("issued by %s for %s", issued.Issuer, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	var sctExt []byte
	for _, x := range leaf.Extensions {
		if x.Id.String() == "1.3.6.1.4.1.11129.2.4.2" {
			sctExt = x.Value
		}
	}
	if len(sctExt) == 0 {
		t.Fatal("no embedded SCT list")
	}
	testenv.Eventually(t, 30*time.Second, "the certificate mailed to the technical contact", func() bool {
		for _, m := range e.smtp.To("tech-aio@example.co.jp") {
			if strings.Contains(string(m.Raw), "application/pem-certificate-chain") {
				return true
			}
		}
		return false
	})
}
