package testenv

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func query(t *testing.T, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true
	m.SetEdns0(4096, true)
	c := &dns.Client{Timeout: 5 * time.Second}
	in, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s %s at %s: %v", name, dns.TypeToString[qtype], server, err)
	}
	return in
}

// VA-8: the test zones as a validating resolver sees them: a signed zone
// validates (AD), a zone with broken signatures is bogus (SERVFAIL), an
// unsigned zone answers without AD; negative answers of a signed zone
// validate too.
func TestUnboundValidatesTestZones_VA8(t *testing.T) {
	auth := StartDNS(t)
	auth.AddZone(t, "test.", Unsigned)
	auth.AddZone(t, "signed.test.", Signed)
	auth.AddZone(t, "bogus.test.", Bogus)
	auth.AddZone(t, "plain.test.", Unsigned)
	for _, z := range []string{"signed", "bogus", "plain"} {
		auth.TXT(t, "www."+z+".test.", "value-"+z)
	}
	u := StartUnbound(t, auth)

	in := query(t, u.Addr, "www.signed.test.", dns.TypeTXT)
	if in.Rcode != dns.RcodeSuccess || !in.AuthenticatedData || len(in.Answer) == 0 {
		t.Fatalf("signed: rcode %s, AD %v, answer %v", dns.RcodeToString[in.Rcode], in.AuthenticatedData, in.Answer)
	}
	in = query(t, u.Addr, "_pki-validation.www.signed.test.", dns.TypeTXT)
	if in.Rcode != dns.RcodeSuccess || !in.AuthenticatedData || len(in.Answer) != 0 {
		t.Fatalf("signed nodata: rcode %s, AD %v, answer %v", dns.RcodeToString[in.Rcode], in.AuthenticatedData, in.Answer)
	}
	in = query(t, u.Addr, "signed.test.", dns.TypeCAA)
	if in.Rcode != dns.RcodeSuccess || !in.AuthenticatedData {
		t.Fatalf("signed CAA nodata: rcode %s, AD %v", dns.RcodeToString[in.Rcode], in.AuthenticatedData)
	}
	in = query(t, u.Addr, "www.bogus.test.", dns.TypeTXT)
	if in.Rcode != dns.RcodeServerFailure {
		t.Fatalf("bogus: rcode %s, answer %v", dns.RcodeToString[in.Rcode], in.Answer)
	}
	in = query(t, u.Addr, "www.plain.test.", dns.TypeTXT)
	if in.Rcode != dns.RcodeSuccess || in.AuthenticatedData || len(in.Answer) == 0 {
		t.Fatalf("plain: rcode %s, AD %v, answer %v", dns.RcodeToString[in.Rcode], in.AuthenticatedData, in.Answer)
	}
	in = query(t, u.Addr, "test.", dns.TypeCAA)
	if in.Rcode != dns.RcodeSuccess || in.AuthenticatedData {
		t.Fatalf("test. CAA: rcode %s, AD %v", dns.RcodeToString[in.Rcode], in.AuthenticatedData)
	}
}

// The timeout case: a server that never answers.
func TestBlackholeDNSNeverAnswers(t *testing.T) {
	addr := BlackholeDNS(t)
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeTXT)
	c := &dns.Client{Timeout: 100 * time.Millisecond}
	if _, _, err := c.Exchange(m, addr); err == nil {
		t.Fatal("the black hole answered")
	}
}
