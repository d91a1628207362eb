package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/goodkey"
)

// Issue 10 item 6: IP addresses and internal names are refused; a
// wildcard only as the whole leftmost label.
func TestCheckIdentifier_AC1(t *testing.T) {
	ok := []string{"www.example.com", "*.example.com", "a-b.c.test", "xn--nxasmq6b.example"}
	bad := map[string]string{"192.0.2.1": "dns", "2001:db8::1": "dns", "intranet": "dns", "a.local": "dns", "x.internal": "dns",
		"host.corp": "dns", "a.*.example.com": "dns", "*.*.example.com": "dns", "-a.example.com": "dns", "a_b.example.com": "dns",
		"WWW.example.com": "dns", "example.123": "dns", "10.0.0.1": "ip"}
	for _, n := range ok {
		if _, p := CheckIdentifier(Ident{Type: "dns", Value: n}); p != nil {
			t.Errorf("%s refused: %v", n, p)
		}
	}
	for n, typ := range bad {
		if _, p := CheckIdentifier(Ident{Type: typ, Value: n}); p == nil || p.Type != ErrRejectedIdentifier {
			t.Errorf("%s (%s) accepted or wrong problem: %v", n, typ, p)
		}
	}
	if _, p := CheckIdentifier(Ident{Type: "email", Value: "a@b.example"}); p == nil || p.Type != ErrUnsupportedIdentifier {
		t.Errorf("email identifier: %v", p)
	}
}

// SV-6 for finalize: the CSR names exactly the order's identifiers, no OU.
func TestCheckCSR_SV6(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := func(tpl *x509.CertificateRequest) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, tpl, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	names := []string{"a.example.com", "b.example.com"}
	if _, p := CheckCSR(csr(&x509.CertificateRequest{DNSNames: names}), names, goodkey.Policy{}); p != nil {
		t.Fatalf("good CSR: %v", p)
	}
	for what, tpl := range map[string]*x509.CertificateRequest{
		"missing name": {DNSNames: names[:1]},
		"extra name":   {DNSNames: append([]string{"c.example.com"}, names...)},
		"foreign CN":   {DNSNames: names, Subject: x509.CertificateRequest{}.Subject},
		"OU":           {DNSNames: names},
	} {
		switch what {
		case "foreign CN":
			tpl.Subject.CommonName = "c.example.com"
		case "OU":
			tpl.Subject.OrganizationalUnit = []string{"IT"}
		}
		if _, p := CheckCSR(csr(tpl), names, goodkey.Policy{}); p == nil || p.Type != ErrBadCSR {
			t.Errorf("%s: %v", what, p)
		}
	}
	if _, p := CheckCSR([]byte("junk"), names, goodkey.Policy{}); p == nil || p.Type != ErrBadCSR {
		t.Errorf("junk: %v", p)
	}
}

// AC-3: the certID round trip and the window (the last third; in the
// past once marked for early replacement).
func TestCertIDAndRenewalWindow_AC3(t *testing.T) {
	cert := &x509.Certificate{SerialNumber: new(big.Int).SetBytes([]byte{0x87, 0x65, 0x43, 0x21}), AuthorityKeyId: []byte{1, 2, 3}}
	id, err := CertID(cert)
	if err != nil {
		t.Fatal(err)
	}
	if id != "AQID.AIdlQyE" {
		t.Fatalf("certID %s", id)
	}
	aki, serial, p := ParseCertID(id)
	if p != nil || string(aki) != "\x01\x02\x03" || serial != "87654321" {
		t.Fatalf("parse: %x %s %v", aki, serial, p)
	}
	if _, _, p := ParseCertID("nodot"); p == nil {
		t.Fatal("a certID without a dot parsed")
	}
	nb := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Certificate{NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}
	start, end := c.RenewalWindow()
	if !start.Equal(nb.Add(60*24*time.Hour)) || !end.Before(c.NotAfter) {
		t.Fatalf("window %s – %s", start, end)
	}
	marked := nb.Add(24 * time.Hour)
	c.ReplaceEarly = &marked
	if _, end := c.RenewalWindow(); !end.Equal(marked) {
		t.Fatalf("early window ends %s", end)
	}
}

// RFC 8555 §7.1.6: the order's status from its authorizations.
func TestOrderStatus_AC1(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	o := Order{ID: uuid.New(), Status: StatusPending, ExpiresAt: now.Add(time.Hour)}
	az := func(st ...string) []Authz {
		var out []Authz
		for _, s := range st {
			out = append(out, Authz{Status: s})
		}
		return out
	}
	for _, c := range []struct {
		authz []string
		want  string
	}{{[]string{StatusPending, StatusValid}, StatusPending}, {[]string{StatusValid, StatusValid}, StatusReady},
		{[]string{StatusValid, StatusInvalid}, StatusInvalid}, {[]string{StatusDeactivated}, StatusInvalid}} {
		if got := OrderStatus(o, az(c.authz...), now); got != c.want {
			t.Errorf("%v: %s, want %s", c.authz, got, c.want)
		}
	}
	if got := OrderStatus(o, az(StatusValid), now.Add(2*time.Hour)); got != StatusInvalid {
		t.Errorf("expired order: %s", got)
	}
	o.Status = StatusProcessing
	if got := OrderStatus(o, az(StatusValid), now); got != StatusProcessing {
		t.Errorf("processing: %s", got)
	}
}
