package events

import (
	"testing"
	"time"
)

// The ACME events (SPEC §4.10) are known types, validate their required
// fields, and round-trip through the envelope.
func TestACMEEvents_AC1(t *testing.T) {
	now := time.Now()
	good := []Payload{
		ACMEChallengeReady{AuthzID: "a", Domain: "www.example.com", Method: DCVMethodHTTP01, Token: "t", KeyAuthorization: "t.k", AccountURI: "https://ca/acme/acct/1"},
		ACMEChallengeValidated{AuthzID: "a", Domain: "www.example.com", Method: DCVMethodDNS01, ValidatedAt: now},
		ACMEChallengeFailed{AuthzID: "a", Domain: "www.example.com", Method: DCVMethodDNS01, ErrorType: "urn:ietf:params:acme:error:dns", Detail: "SERVFAIL"},
		ACMERevocationRequested{CertificateID: "c", Serial: "1f", Reason: "keyCompromise"},
	}
	for _, p := range good {
		env, err := New(p, now, "")
		if err != nil {
			t.Fatalf("%s: %v", p.EventType(), err)
		}
		raw, _ := env.Marshal()
		if _, err := Parse(raw); err != nil {
			t.Fatalf("%s: %v", p.EventType(), err)
		}
	}
	bad := []Payload{
		ACMEChallengeReady{AuthzID: "a", Domain: "d", Method: "http", Token: "t", KeyAuthorization: "k", AccountURI: "u"},
		ACMEChallengeReady{AuthzID: "a", Domain: "d", Method: DCVMethodHTTP01, Token: "t", KeyAuthorization: "k"},
		ACMEChallengeFailed{AuthzID: "a", Domain: "d", Method: DCVMethodDNS01, Detail: "x"},
		ACMEOrderFinalized{Application: Application{ID: "x", Product: ProductServer, Server: &ServerApplication{}}},
		ACMERevocationRequested{CertificateID: "c", Serial: "1f"},
	}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("%s %+v validated", p.EventType(), p)
		}
	}
}
