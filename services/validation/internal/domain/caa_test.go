package domain

import (
	"strings"
	"testing"
)

// VA-4: RFC 8659 issue/issuewild against the CA's identities, the
// critical flag, iodef ignored, and the RFC 8657 parameters.
func TestEvaluateCAA_VA4(t *testing.T) {
	const acct = "acct:cust-1@certlife.example"
	dnsPolicy := CAAPolicy{Identities: []string{"certlife.example"}, AccountURI: acct, MethodLabels: MethodDNS.CAALabels()}
	wild := dnsPolicy
	wild.Wildcard = true
	acme := CAAPolicy{Identities: []string{"certlife.example"}, AccountURI: "https://ca.example/acme/acct/7", MethodLabels: MethodACMEHTTP.CAALabels()}
	rec := func(flag uint8, tag, value string) CAARecord { return CAARecord{Flag: flag, Tag: tag, Value: value} }
	cases := []struct {
		name    string
		set     []CAARecord
		policy  CAAPolicy
		allowed bool
		reason  string
	}{
		{"no record", nil, dnsPolicy, true, "no CAA record"},
		{"our identity", []CAARecord{rec(0, "issue", "certlife.example")}, dnsPolicy, true, "permits"},
		{"identity case-insensitive, trailing dot", []CAARecord{rec(0, "ISSUE", "CertLife.Example.")}, dnsPolicy, true, "permits"},
		{"another CA", []CAARecord{rec(0, "issue", "other.ca")}, dnsPolicy, false, "names other.ca"},
		{"one of two", []CAARecord{rec(0, "issue", "other.ca"), rec(0, "issue", "certlife.example")}, dnsPolicy, true, "permits"},
		{"nobody", []CAARecord{rec(0, "issue", ";")}, dnsPolicy, false, "permits no CA"},
		{"only iodef", []CAARecord{rec(0, "iodef", "mailto:sec@example.com")}, dnsPolicy, true, "no issue property"},
		{"critical iodef is known", []CAARecord{rec(128, "iodef", "mailto:sec@example.com"), rec(0, "issue", "certlife.example")}, dnsPolicy, true, "permits"},
		{"unknown critical tag", []CAARecord{rec(0, "issue", "certlife.example"), rec(128, "tbs", "unknown")}, dnsPolicy, false, "critical property"},
		{"unknown non-critical tag", []CAARecord{rec(0, "issue", "certlife.example"), rec(0, "tbs", "unknown")}, dnsPolicy, true, "permits"},
		{"issuewild ignored for a plain name", []CAARecord{rec(0, "issuewild", "other.ca"), rec(0, "issue", "certlife.example")}, dnsPolicy, true, "permits"},
		{"only issuewild, plain name", []CAARecord{rec(0, "issuewild", "other.ca")}, dnsPolicy, true, "no issue property"},
		{"issuewild decides a wildcard", []CAARecord{rec(0, "issue", "other.ca"), rec(0, "issuewild", "certlife.example")}, wild, true, "permits"},
		{"issuewild forbids a wildcard", []CAARecord{rec(0, "issue", "certlife.example"), rec(0, "issuewild", ";")}, wild, false, "permits no CA"},
		{"issue applies to a wildcard without issuewild", []CAARecord{rec(0, "issue", "other.ca")}, wild, false, "names other.ca"},
		{"accounturi ours", []CAARecord{rec(0, "issue", "certlife.example; accounturi="+acct)}, dnsPolicy, true, "permits"},
		{"accounturi someone else's", []CAARecord{rec(0, "issue", "certlife.example; accounturi=acct:cust-2@certlife.example")}, dnsPolicy, false, "is for account acct:cust-2@certlife.example"},
		{"acme account", []CAARecord{rec(0, "issue", "certlife.example; accounturi=https://ca.example/acme/acct/7; validationmethods=http-01")}, acme, true, "permits"},
		{"acme account, BR label", []CAARecord{rec(0, "issue", "certlife.example;validationmethods=ca-tbr-19")}, acme, true, "permits"},
		{"validationmethods without ours", []CAARecord{rec(0, "issue", "certlife.example; validationmethods=dns-01,ca-tbr-18")}, dnsPolicy, false, "allows the methods dns-01,ca-tbr-18, not ca-tbr-7"},
		{"validationmethods with ours", []CAARecord{rec(0, "issue", "certlife.example; validationmethods=http-01,ca-tbr-7")}, dnsPolicy, true, "permits"},
		{"validationmethods malformed", []CAARecord{rec(0, "issue", "certlife.example; validationmethods=ca-tbr-7,,x")}, dnsPolicy, false, "malformed"},
		{"parameter twice", []CAARecord{rec(0, "issue", "certlife.example; accounturi="+acct+"; accounturi="+acct)}, dnsPolicy, false, "malformed"},
		{"bad parameter", []CAARecord{rec(0, "issue", "certlife.example; accounturi")}, dnsPolicy, false, "malformed"},
		{"trailing semicolon", []CAARecord{rec(0, "issue", "certlife.example;")}, dnsPolicy, true, "permits"},
	}
	for _, c := range cases {
		d := EvaluateCAA(c.set, "example.com", c.policy)
		if d.Allowed != c.allowed || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("%s: allowed %v (%s), want %v with %q", c.name, d.Allowed, d.Reason, c.allowed, c.reason)
		}
	}
}

// VA-4, SC-098: the validationmethods labels of each method.
func TestCAALabelsOfMethods_VA4(t *testing.T) {
	want := map[Method]string{MethodDNS: "ca-tbr-7", MethodHTTP: "ca-tbr-18", MethodEmail: "ca-tbr-4",
		MethodACMEDNS: "dns-01,ca-tbr-7", MethodACMEHTTP: "http-01,ca-tbr-19"}
	for m, w := range want {
		if got := strings.Join(m.CAALabels(), ","); got != w {
			t.Errorf("%s: %s, want %s", m, got, w)
		}
	}
	if got := AccountURI("0190abc", "certlife.example"); got != "acct:0190abc@certlife.example" {
		t.Errorf("account URI %s", got)
	}
}
