package billing

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
)

const (
	billingToken  = "tok-billing-0123456789"
	reviewerToken = "tok-review-0123456789"
	wait          = 10 * time.Second
)

// sessionSigner signs customer sessions in tests as intake would; every
// test platform verifies them with its public key.
var sessionSigner = func() *session.Signer {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return session.NewSigner(key)
}()

// testRegistrationNumber is the invoices' issuer registration number in tests.
const testRegistrationNumber = "T4010001012345"

func start(t *testing.T) *testenv.Platform {
	t.Helper()
	return testenv.Start(t, testenv.Options{Config: func(c *app.Config) {
		c.OpsTokens = testenv.OpsToken + ":admin," + billingToken + ":billing," + reviewerToken + ":reviewer"
		c.SessionPublicKey = session.EncodePublicKey(sessionSigner.Public())
		c.InvoiceRegistrationNumber = testRegistrationNumber
		c.InvoiceIssuerName = "サーティライフ株式会社"
		c.InvoiceBankAccount = "三菱UFJ銀行 八重洲通支店 普通 1234567"
	}}, Definition)
}

// importCSV posts a coupon file with the billing token.
func importCSV(t *testing.T, p *testenv.Platform, body string) testenv.Response {
	t.Helper()
	return p.Do("POST", "/ops/v1/coupons", body, "Content-Type", "text/csv", "Authorization", "Bearer "+billingToken)
}

// mustImport imports coupons and fails unless every line was imported.
func mustImport(t *testing.T, p *testenv.Platform, lines ...string) {
	t.Helper()
	body := "number,product,expires_at\n"
	for _, l := range lines {
		body += l + "\n"
	}
	resp := importCSV(t, p, body)
	var res struct {
		Imported int   `json:"imported"`
		Rejected []any `json:"rejected"`
	}
	resp.JSON(t, &res)
	if resp.Status != 200 || res.Imported != len(lines) {
		t.Fatalf("import: %d %s", resp.Status, resp.Body)
	}
}

var couponSeq atomic.Int64

// newCoupon returns a fresh coupon number.
func newCoupon() string {
	n := couponSeq.Add(1)
	return fmt.Sprintf("%08d-%08d", 12345678, n)
}

// rfc is an expiry d from the platform's now.
func rfc(p *testenv.Platform, d time.Duration) string {
	return p.Clock.Now().Add(d).Format(time.RFC3339)
}

func check(t *testing.T, p *testenv.Platform, number, product string) events.CouponCheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := rpc.Call[events.CouponCheckResponse](ctx, p.NC, events.RPCCouponCheck,
		events.CouponCheckRequest{Coupon: number, Product: product})
	if err != nil {
		t.Fatalf("coupon check: %v", err)
	}
	return resp
}

func application(number, product string) events.Application {
	id := uuid.NewString()
	a := events.Application{
		ID: id, ApplicantID: "applicant-" + id[:8], Product: product, Kind: events.KindNew, Language: "ja",
		Coupon:       number,
		Organization: events.Organization{CompanyCode: "984940947", NameJa: "日本ベリサイン株式会社", NameEn: "VeriSign Japan K.K."},
		Applicant:    events.Applicant{NameJa: "辺利 太郎", NameEn: "Veri Taro", Email: "taro@example.co.jp", Phone: "0350001111"},
	}
	if product == events.ProductServer {
		a.Server = &events.ServerApplication{CustomerID: a.ApplicantID, OrderID: uuid.NewString(), TermMonths: 12,
			CSR: "(pem)", CommonName: "www.example.jp", TechnicalContact: events.Contact{Email: "tech@example.jp"},
			Organization: events.ServerOrganization{DUNS: "123456789"}}
	}
	return a
}

func provisional(p *testenv.Platform, a events.Application) events.ApplicationProvisional {
	now := p.Clock.Now()
	return events.ApplicationProvisional{Application: a, AcceptedAt: now, CancelDeadline: now.Add(time.Hour)}
}

func closed(p *testenv.Platform, a events.Application) events.CancelWindowClosed {
	return events.CancelWindowClosed{Application: a, ClosedAt: p.Clock.Now(), Reason: "deadline"}
}

func cancelled(p *testenv.Platform, a events.Application) events.ApplicationCancelled {
	return events.ApplicationCancelled{ApplicationID: a.ID, Coupon: a.Coupon, Recipient: a.Recipient(), CancelledAt: p.Clock.Now()}
}

// eventsOf lists the events of a type about one application.
func eventsOf(p *testenv.Platform, eventType, applicationID string) []events.Envelope {
	var out []events.Envelope
	for _, e := range p.Events(eventType) {
		if e.SubjectID == applicationID {
			out = append(out, e)
		}
	}
	return out
}

func decode[T events.Payload](t *testing.T, env events.Envelope) T {
	t.Helper()
	v, err := events.Decode[T](env)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func count(t *testing.T, p *testenv.Platform, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := p.Unit("billing").Deps.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
