package validation

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// AC-1, VA-4, VA-7: the validation-acme consumer checks what intake's ACME
// server hands it — http-01 and dns-01 corroborated by the remote
// perspectives, then CAA with accounturi = the account URL and the
// method's validationmethods — and answers with the RFC 8555 error type;
// a finalized order is approved as it stands (reviewer acme).
func TestACMEConsumer_AC1_VA4_VA7(t *testing.T) {
	e := startDCV(t, envOptions{})
	const acct = "https://ca.example/acme/acct/01a2"
	ready := func(domainName, method, token, keyAuth string) string {
		id := uuid.NewString()
		e.p.Publish(events.ACMEChallengeReady{AuthzID: id, Domain: domainName, Method: method, Token: token,
			KeyAuthorization: keyAuth, AccountURI: acct, CustomerID: "cust-1"}, "")
		return id
	}
	failed := func(id string) events.ACMEChallengeFailed {
		f, err := events.Decode[events.ACMEChallengeFailed](e.p.WaitEvent(events.TypeACMEChallengeFailed, id, 60*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	// http-01, passed and corroborated.
	e.host("www.ac.plain.test")
	e.web.page("www.ac.plain.test", "/.well-known/acme-challenge/tokA", "tokA.thumb")
	id := ready("www.ac.plain.test", events.DCVMethodHTTP01, "tokA", "tokA.thumb")
	v, _ := events.Decode[events.ACMEChallengeValidated](e.p.WaitEvent(events.TypeACMEChallengeValidated, id, 60*time.Second))
	if v.Domain != "www.ac.plain.test" || v.ValidUntil.IsZero() {
		t.Fatalf("validated %+v", v)
	}
	// The wrong content: unauthorized, saying what was expected and found.
	e.web.page("www.ac.plain.test", "/.well-known/acme-challenge/tokB", "something else")
	f := failed(ready("www.ac.plain.test", events.DCVMethodHTTP01, "tokB", "tokB.thumb"))
	if f.ErrorType != "urn:ietf:params:acme:error:unauthorized" || !strings.Contains(f.Detail, "something else") {
		t.Fatalf("wrong content: %+v", f)
	}
	// dns-01 for a wildcard: the digest at _acme-challenge; CAA names
	// another account → caa.
	sum := sha256.Sum256([]byte("tokC.thumb"))
	e.txt("_acme-challenge.wc.plain.test", base64.RawURLEncoding.EncodeToString(sum[:]))
	e.everywhere(func(s *testenv.DNSServer) {
		s.CAA(t, "wc.plain.test", `0 issuewild "certlife.example; accounturi=https://ca.example/acme/acct/other"`)
	})
	f = failed(ready("*.wc.plain.test", events.DCVMethodDNS01, "tokC", "tokC.thumb"))
	if f.ErrorType != "urn:ietf:params:acme:error:caa" {
		t.Fatalf("CAA of another account: %+v", f)
	}
	// The account's own accounturi and method: validated.
	e.everywhere(func(s *testenv.DNSServer) {
		s.CAA(t, "wc.plain.test", `0 issuewild "certlife.example; accounturi=`+acct+`; validationmethods=dns-01"`)
	})
	id = ready("*.wc.plain.test", events.DCVMethodDNS01, "tokC", "tokC.thumb")
	e.p.WaitEvent(events.TypeACMEChallengeValidated, id, 60*time.Second)

	// A finalized order is approved (reviewer acme).
	app := events.Application{ID: uuid.NewString(), ApplicantID: "acme:1", Product: events.ProductServer, Kind: events.KindNew,
		Applicant: events.Applicant{Email: "tech@cust.example"},
		Server: &events.ServerApplication{CustomerID: "cust-1", OrderID: uuid.NewString(), TermMonths: 12, CSR: "-----BEGIN CERTIFICATE REQUEST-----",
			CommonName: "www.ac.plain.test", TechnicalContact: events.Contact{Email: "tech@cust.example"},
			Organization: events.ServerOrganization{DUNS: "690000001", NameEn: "Certlife Test K.K."}, ACMEAccountURI: acct}}
	e.p.Publish(events.ACMEOrderFinalized{Application: app, FinalizedAt: e.p.Clock.Now()}, app.ID)
	ap, _ := events.Decode[events.ReviewApproved](e.p.WaitEvent(events.TypeReviewApproved, app.ID, 30*time.Second))
	if ap.Reviewer != events.ReviewerACME || ap.Application.Server.ACMEAccountURI != acct {
		t.Fatalf("approved %+v", ap)
	}
	// CAA is checked again before approval: a name CAA now forbids
	// rejects the order (VA-4).
	e.everywhere(func(s *testenv.DNSServer) { s.CAA(t, "late.plain.test", `0 issue "evil.ca"`) })
	app.ID, app.Server.CommonName = uuid.NewString(), "late.plain.test"
	e.p.Publish(events.ACMEOrderFinalized{Application: app, FinalizedAt: e.p.Clock.Now()}, app.ID)
	rj, _ := events.Decode[events.ReviewRejected](e.p.WaitEvent(events.TypeReviewRejected, app.ID, 30*time.Second))
	if rj.Reviewer != events.ReviewerACME || !strings.HasPrefix(rj.Reason, "urn:ietf:params:acme:error:caa: ") {
		t.Fatalf("rejected %+v", rj)
	}
}
