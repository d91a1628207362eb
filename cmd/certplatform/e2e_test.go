package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/cmd/certplatform/internal/runner"
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

const opsToken = "e2e-ops-token-0123456789abcdef"

// e2e is the all-in-one runner in the test process, driven over HTTP.
type e2e struct {
	t    testing.TB
	p    *runner.Platform
	smtp *testenv.SMTP
	cfg  app.Config
}

func startE2E(t testing.TB, edit func(*app.Config), clk clock.Clock) *e2e {
	t.Helper()
	cfg, err := app.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	smtp := testenv.StartSMTP(t)
	cfg.DatabaseURL = testenv.Database(t)
	cfg.NatsURL = ""
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.SMTPAddr = smtp.Addr
	cfg.OpsTokens = opsToken + ":admin"
	cfg.ClockControl = true
	cfg.ReviewAutoApprove = true
	cfg.CancelWindow = time.Hour
	if edit != nil {
		edit(&cfg)
	}
	return launch(t, cfg, smtp, clk)
}

func launch(t testing.TB, cfg app.Config, smtp *testenv.SMTP, clk clock.Clock) *e2e {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	p, err := runner.StartWithClock(context.Background(), cfg, log, clk)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, p: p, smtp: smtp, cfg: cfg}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return e
}

func (e *e2e) do(method, path string, body any, headers ...string) testenv.Response {
	e.t.Helper()
	return testenv.Client{T: e.t, BaseURL: e.p.URL}.Do(method, path, body, headers...)
}

func (e *e2e) ops(method, path string, body any, headers ...string) testenv.Response {
	e.t.Helper()
	return e.do(method, path, body, append([]string{"Authorization", "Bearer " + opsToken}, headers...)...)
}

func (e *e2e) advance(d string) {
	e.t.Helper()
	if r := e.do("POST", "/dev/v1/clock", map[string]string{"advance": d}); r.Status != 200 {
		e.t.Fatalf("clock: %d %s", r.Status, r.Body)
	}
}

var couponN atomic.Int64

func (e *e2e) importCoupons(n int) []string {
	e.t.Helper()
	var csv strings.Builder
	csv.WriteString("number,product,expires_at\n")
	var out []string
	for i := 0; i < n; i++ {
		c := fmt.Sprintf("%08d-%08d", 30000000+couponN.Add(1), 40000000+time.Now().UnixNano()%10000000)
		out = append(out, c)
		fmt.Fprintf(&csv, "%s,client,2030-12-31\n", c)
	}
	r := e.ops("POST", "/ops/v1/coupons", csv.String(), "Content-Type", "text/csv")
	var res struct {
		Imported int `json:"imported"`
	}
	r.JSON(e.t, &res)
	if r.Status != 200 || res.Imported != n {
		e.t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	return out
}

func application(coupon, email string) map[string]any {
	return map[string]any{
		"product": "client", "coupon": coupon, "password": "an application password", "language": "ja",
		"organization": map[string]any{"company_code": "984940947", "name_ja": "日本ベリサイン株式会社", "name_en": "VeriSign Japan K.K.",
			"identifier": "NTRJP-4010001012345"},
		"applicant": map[string]any{"name_ja": "辺利 太郎", "name_en": "Veri Taro", "title_ja": "本部長", "department_ja": "経理部",
			"title_en": "Director, Accounting Dept.", "email": email, "phone": "0350001111",
			"address": map[string]any{"postal_code": "1040028", "prefecture": "東京都", "city": "中央区",
				"street": "八重洲2-8-1", "building": "日東ビル13F"}},
	}
}

type submitted struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	CancelDeadline time.Time `json:"cancel_deadline"`
}

func (e *e2e) submit(coupon, email string) submitted {
	e.t.Helper()
	r := e.do("POST", "/v1/applications", application(coupon, email))
	if r.Status != 202 {
		e.t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	var s submitted
	r.JSON(e.t, &s)
	return s
}

func basicAuth(email string) []string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(email, "an application password")
	return []string{"Authorization", req.Header.Get("Authorization")}
}

type appView struct {
	Status        string `json:"status"`
	CertificateID string `json:"certificate_id"`
	Timeline      []struct {
		Event string `json:"event"`
	} `json:"timeline"`
}

func (e *e2e) view(id, email string) appView {
	e.t.Helper()
	r := e.do("GET", "/v1/applications/"+id, nil, basicAuth(email)...)
	if r.Status != 200 {
		e.t.Fatalf("view: %d %s", r.Status, r.Body)
	}
	var v appView
	r.JSON(e.t, &v)
	return v
}

var codeRe = regexp.MustCompile(`[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}`)

// waitCode waits for the n-th mail carrying a certificate code to email.
func (e *e2e) waitCode(email string, n int) string {
	e.t.Helper()
	var code string
	testenv.Eventually(e.t, 30*time.Second, "certificate code mail to "+email, func() bool {
		var codes []string
		for _, m := range e.smtp.To(email) {
			if c := codeRe.FindString(m.Body); c != "" {
				codes = append(codes, c)
			}
		}
		if len(codes) >= n {
			code = codes[n-1]
			return true
		}
		return false
	})
	return code
}

func (e *e2e) login(email, code string) string {
	e.t.Helper()
	r := e.do("POST", "/v1/sessions", map[string]string{"email": email, "password": "an application password", "certificate_code": code})
	if r.Status != 201 {
		e.t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	r.JSON(e.t, &s)
	return s.Token
}

type certItem struct {
	ID            string `json:"id"`
	ApplicationID string `json:"application_id"`
}

func (e *e2e) eligible(token, step string) []certItem {
	e.t.Helper()
	r := e.do("GET", "/v1/certificates?eligible_for="+step, nil, "Authorization", "Bearer "+token)
	if r.Status != 200 {
		e.t.Fatalf("certificates: %d %s", r.Status, r.Body)
	}
	var out struct {
		Certificates []certItem `json:"certificates"`
	}
	r.JSON(e.t, &out)
	return out.Certificates
}

// events lists every event of a type on the embedded server's stream.
func (e *e2e) events(eventType string) []events.Envelope {
	e.t.Helper()
	nc, err := nats.Connect(e.p.NATSURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return testenv.StreamEvents(e.t, js, eventType)
}

func (e *e2e) waitEvent(eventType, subject string) events.Envelope {
	e.t.Helper()
	var found events.Envelope
	testenv.Eventually(e.t, 30*time.Second, eventType+" for "+subject, func() bool {
		for _, env := range e.events(eventType) {
			if env.SubjectID == subject {
				found = env
				return true
			}
		}
		return false
	})
	return found
}

// retrievePKCS12 runs the retrieval of a certificate and returns the file.
func (e *e2e) retrievePKCS12(token, cert, password string) []byte {
	e.t.Helper()
	auth := []string{"Authorization", "Bearer " + token}
	body := map[string]any{"accept_terms": true, "pkcs12_password": password}
	r := e.do("POST", "/v1/certificates/"+cert+"/retrieval", body, auth...)
	if r.Status != 202 {
		e.t.Fatalf("retrieval: %d %s", r.Status, r.Body)
	}
	testenv.Eventually(e.t, 30*time.Second, "retrieval ready", func() bool {
		r := e.do("GET", "/v1/certificates/"+cert+"/retrieval", nil, auth...)
		var st struct {
			Status string `json:"status"`
		}
		r.JSON(e.t, &st)
		if st.Status == "failed" {
			e.t.Fatalf("retrieval failed: %s", r.Body)
		}
		return st.Status == "ready"
	})
	r = e.do("GET", "/v1/certificates/"+cert+"/retrieval/pkcs12", nil, auth...)
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/x-pkcs12" {
		e.t.Fatalf("pkcs12: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	return r.Body
}

func (e *e2e) root() *x509.Certificate {
	e.t.Helper()
	r := e.do("GET", "/ca/root.pem", nil)
	if r.Status != 200 {
		e.t.Fatalf("root: %d %s", r.Status, r.Body)
	}
	block, _ := pem.Decode(r.Body)
	if block == nil {
		e.t.Fatal("root is not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// The first flow through all five services (issue 2 item 9): coupons →
// application → cancel window closed by timer → coupon consumed → payment
// → auto-approved review → certificate ready → code by SMTP → session →
// retrieval → PKCS#12 with a new key, the certificate and the chain,
// verified against the dev root (PC-2, PC-3, PC-6, PC-7, PC-13, PC-14, IS-1, IS-8).
func TestClientFlowEndToEnd_PC3_PC6_PC13_IS8(t *testing.T) {
	e := startE2E(t, nil, nil)
	coupons := e.importCoupons(2)
	email := "taro@example.co.jp"

	// Cancellation inside the window releases the coupon (PC-4, PC-2).
	c := e.submit(coupons[1], "cancel@example.co.jp")
	if r := e.do("POST", "/v1/applications/"+c.ID+"/cancellation", nil, basicAuth("cancel@example.co.jp")...); r.Status != 200 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	e.waitEvent(events.TypeCouponReleased, c.ID)

	a := e.submit(coupons[0], email)
	if a.Status != "provisional" || a.CancelDeadline.IsZero() {
		t.Fatalf("submitted %+v", a)
	}
	// A used coupon is refused at once (PC-2).
	if r := e.do("POST", "/v1/applications", application(coupons[0], "other@example.co.jp")); r.Status != 422 {
		t.Fatalf("reused coupon: %d %s", r.Status, r.Body)
	}
	e.waitEvent(events.TypeCouponReserved, a.ID)
	e.advance("61m")
	e.waitEvent(events.TypeCancelWindowClosed, a.ID)
	if r := e.do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, basicAuth(email)...); r.Status != 409 {
		t.Fatalf("cancel after the window: %d", r.Status)
	}
	e.waitEvent(events.TypePaymentConfirmed, a.ID)
	e.waitEvent(events.TypeReviewApproved, a.ID)
	e.waitEvent(events.TypeCertificateReady, a.ID)

	code := e.waitCode(email, 1)
	token := e.login(email, code)
	ready := e.eligible(token, "retrieval")
	if len(ready) != 1 || ready[0].ApplicationID != a.ID {
		t.Fatalf("ready for retrieval: %+v", ready)
	}
	cert := ready[0].ID
	p12 := e.retrievePKCS12(token, cert, "a strong p12 password")
	key, leaf, chain, err := pkcs12.DecodeChain(p12, "a strong p12 password")
	if err != nil {
		t.Fatalf("open PKCS#12: %v", err)
	}
	if key == nil || len(chain) == 0 {
		t.Fatal("the PKCS#12 lacks the key or the chain")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(e.root())
	for _, c := range chain {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, CurrentTime: leaf.NotBefore.Add(time.Minute)}); err != nil {
		t.Fatalf("verify against the dev root: %v", err)
	}
	if len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != email {
		t.Fatalf("SAN e-mail %v", leaf.EmailAddresses)
	}
	// Downloadable once (PC-14).
	if r := e.do("GET", "/v1/certificates/"+cert+"/retrieval/pkcs12", nil, "Authorization", "Bearer "+token); r.Status != 410 {
		t.Fatalf("second download: %d", r.Status)
	}
	e.waitEvent(events.TypeCertificateIssued, a.ID)
	e.waitEvent(events.TypeCertificateRetrieved, a.ID)
	testenv.Eventually(t, 30*time.Second, "status issued", func() bool { return e.view(a.ID, email).Status == "issued" })
	v := e.view(a.ID, email)
	if v.CertificateID != cert || len(v.Timeline) < 6 {
		t.Fatalf("view %+v", v)
	}
	if len(e.eligible(token, "retrieval")) != 0 {
		t.Fatal("still listed for retrieval after the download")
	}
	// The cancelled application's coupon can be used again.
	e.submit(coupons[1], "again@example.co.jp")
}
