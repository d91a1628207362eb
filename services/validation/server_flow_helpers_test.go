package validation

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation/internal/api"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// The registry's record the server applications of these tests match.
var registrySubject = pkix.Name{Organization: []string{"VeriSign Japan K.K."}, StreetAddress: []string{"2-8-1 Yaesu"},
	Locality: []string{"Chuo-ku"}, Province: []string{"Tokyo"}, PostalCode: []string{"104-0028"}, Country: []string{"JP"}}

const registryDUNS = "984940947"

// flowEnv is the validation service with its small Internet (dcvEnv), the
// registry loaded, and a key signing customer sessions.
type flowEnv struct {
	*dcvEnv
	sessions *session.Signer
}

type flowOptions struct {
	autoApprove bool
	clock       *clock.Offset
}

func startFlow(t *testing.T, o flowOptions) *flowEnv {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := session.NewSigner(key)
	e := startDCV(t, envOptions{clock: o.clock, config: func(c *app.Config) {
		c.SessionPublicKey = session.EncodePublicKey(signer.Public())
		c.ReviewAutoApprove = o.autoApprove
	}})
	// The agents see the signed and bogus zones unsigned (their own views).
	for _, v := range e.views {
		v.AddZone(t, "signed.test.", testenv.Unsigned)
		v.AddZone(t, "bogus.test.", testenv.Unsigned)
	}
	mustStatus(t, admin(t, e.p, "POST", "/ops/v1/registry", "text/csv", registryCSV), http.StatusOK)
	return &flowEnv{dcvEnv: e, sessions: signer}
}

// customer sends a request with a server customer's session.
func (f *flowEnv) customer(customerID, method, path string, body any) testenv.Response {
	f.t.Helper()
	now := f.p.Clock.Now()
	tok, err := f.sessions.Sign(session.Claims{SessionID: uuid.NewString(), Subject: customerID, Customer: true,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()})
	if err != nil {
		f.t.Fatal(err)
	}
	return f.p.Do(method, path, body, "Authorization", "Bearer "+tok)
}

// dcvStatus reads GET /v1/applications/{id}/dcv as the customer.
func (f *flowEnv) dcvStatus(customerID, applicationID string) api.DCVStatus {
	f.t.Helper()
	r := f.customer(customerID, "GET", "/v1/applications/"+applicationID+"/dcv", nil)
	mustStatus(f.t, r, http.StatusOK)
	var st api.DCVStatus
	r.JSON(f.t, &st)
	return st
}

func (f *flowEnv) domainOf(st api.DCVStatus, name string) domain.Instructions {
	f.t.Helper()
	for _, d := range st.Domains {
		if d.Domain == name {
			return d
		}
	}
	f.t.Fatalf("no domain %s in %+v", name, st.Domains)
	return domain.Instructions{}
}

// csrFor makes a PEM CSR with subject and a fresh P-256 key.
func csrFor(t *testing.T, subject pkix.Name, cn string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	subject.CommonName = cn
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// serverApplication is a server application as intake emits it.
func serverApplication(t *testing.T, customerID string, subject pkix.Name, method string, names ...string) events.Application {
	t.Helper()
	id := uuid.NewString()
	return events.Application{
		ID: id, ApplicantID: customerID, Product: events.ProductServer, Kind: events.KindNew, Language: "en",
		Applicant: events.Applicant{NameEn: "Veri Taro", Email: "taro@example.co.jp"},
		Server: &events.ServerApplication{
			CustomerID: customerID, OrderID: "order-" + id[:8], TermMonths: 12, CSR: csrFor(t, subject, names[0]),
			CommonName: names[0], Domains: names[1:], DCV: events.DCVChoice{Method: method},
			TechnicalContact: events.Contact{Name: "Tech", Email: "tech@example.co.jp"},
			Organization:     events.ServerOrganization{DUNS: registryDUNS, NameEn: "VeriSign Japan K.K."},
			CoverageEnd:      time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC),
		},
	}
}

func (f *flowEnv) accept(a events.Application) {
	f.t.Helper()
	f.p.Publish(events.CancelWindowClosed{Application: a, ClosedAt: f.p.Clock.Now(), Reason: "deadline"}, "corr-"+a.ID[:8])
	testenv.Eventually(f.t, wait, "the checks of "+a.ID, func() bool {
		return f.customer(a.Server.CustomerID, "GET", "/v1/applications/"+a.ID+"/dcv", nil).Status == http.StatusOK
	})
}

func (f *flowEnv) pay(a events.Application) {
	f.p.Publish(events.PaymentConfirmed{OrderID: a.Server.OrderID, InvoiceID: "inv-" + a.ID[:8], CustomerID: a.Server.CustomerID,
		Method: "card", Reference: "ch_" + a.ID[:8], Amount: 50000, Currency: "JPY"}, "corr-"+a.ID[:8])
}

// validatedDomains are the DomainValidated events of an application by
// domain.
func (f *flowEnv) validatedDomains(applicationID string) map[string]events.DomainValidated {
	out := map[string]events.DomainValidated{}
	for _, env := range eventsOf(f.p, events.TypeDomainValidated, applicationID) {
		v := decode[events.DomainValidated](f.t, env)
		out[v.Domain] = v
	}
	return out
}

// failures are the DomainValidationFailed events of an application.
func (f *flowEnv) failures(applicationID string) map[string]events.DomainValidationFailed {
	out := map[string]events.DomainValidationFailed{}
	for _, env := range eventsOf(f.p, events.TypeDomainValidationFailed, applicationID) {
		v := decode[events.DomainValidationFailed](f.t, env)
		out[v.Domain] = v
	}
	return out
}

// phoneCheckOf finds the pending phone check of an application.
func (f *flowEnv) phoneCheckOf(applicationID string) domain.PhoneCheck {
	f.t.Helper()
	var found domain.PhoneCheck
	testenv.Eventually(f.t, wait, "phone check of "+applicationID, func() bool {
		r := ops(f.t, f.p, "GET", "/ops/v1/phone-checks?status=pending", nil)
		mustStatus(f.t, r, http.StatusOK)
		var out struct {
			PhoneChecks []domain.PhoneCheck `json:"phone_checks"`
		}
		r.JSON(f.t, &out)
		for _, p := range out.PhoneChecks {
			if p.ApplicationID == applicationID {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

// recheckedUntil waits for cond, moving the injected clock on by the
// re-check interval now and then, so that the durable re-check timers
// fire (whenever the test's publishing lands relative to them).
func (f *flowEnv) recheckedUntil(what string, cond func() bool) {
	f.t.Helper()
	last := time.Now()
	testenv.Eventually(f.t, 3*wait, what, func() bool {
		if cond() {
			return true
		}
		if time.Since(last) > 300*time.Millisecond {
			f.p.Advance(5 * time.Minute)
			last = time.Now()
		}
		return false
	})
}
