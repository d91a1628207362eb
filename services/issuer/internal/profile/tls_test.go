package profile_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/services/issuer/internal/profile"
)

var tlsURLs = profile.URLs{CRL: "http://pki.example/crl/tls1.crl", CAIssuers: "http://pki.example/ca/tls1.der"}

func okSubject() profile.ServerSubject {
	return profile.ServerSubject{CommonName: "www.example.com", Organization: "Example K.K.", Locality: "Chuo-ku", State: "Tokyo", Country: "JP"}
}

// IS-10, SV-6: the OV template — serverAuth alone, the OV policy, the
// names with the CN first, keyEncipherment only for RSA, no SKI, no OU.
func TestServerTemplate_IS10(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tpl, err := profile.ServerTemplate(okSubject(), []string{"www.example.com", "example.com"}, big.NewInt(99), nb, nb.Add(day), ec.Public(), tlsURLs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tpl.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || tpl.KeyUsage != x509.KeyUsageDigitalSignature ||
		len(tpl.Policies) != 1 || !tpl.Policies[0].Equal(profile.OrganizationValidated) || tpl.IsCA || len(tpl.SubjectKeyId) != 0 ||
		!slices.Equal(tpl.DNSNames, []string{"www.example.com", "example.com"}) || len(tpl.ExtraExtensions) != 0 {
		t.Fatalf("template %+v", tpl)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rtpl, err := profile.ServerTemplate(okSubject(), []string{"www.example.com"}, big.NewInt(99), nb, nb.Add(day), rk.Public(), tlsURLs)
	if err != nil || rtpl.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Fatalf("RSA key usage %v %v", rtpl, err)
	}
	for name, spoil := range map[string]func(*profile.ServerSubject){
		"no organization":         func(s *profile.ServerSubject) { s.Organization = "" },
		"no locality nor state":   func(s *profile.ServerSubject) { s.Locality, s.State = "", "" },
		"country not alpha-2":     func(s *profile.ServerSubject) { s.Country = "JPN" },
		"country in lowercase":    func(s *profile.ServerSubject) { s.Country = "jp" },
		"CN over 64 characters":   func(s *profile.ServerSubject) { s.CommonName = strings.Repeat("a", 61) + ".com" },
		"organization over 64":    func(s *profile.ServerSubject) { s.Organization = strings.Repeat("O", 65) },
		"spaces around the value": func(s *profile.ServerSubject) { s.Locality = " Chuo-ku" },
	} {
		s := okSubject()
		spoil(&s)
		names := []string{s.CommonName}
		if _, err := profile.ServerTemplate(s, names, big.NewInt(1), nb, nb.Add(day), ec.Public(), tlsURLs); !errors.Is(err, profile.ErrServerSubject) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
	if _, err := profile.ServerTemplate(okSubject(), []string{"example.com", "www.example.com"}, big.NewInt(1), nb, nb.Add(day), ec.Public(), tlsURLs); err == nil {
		t.Error("a CN that is not the first name was accepted")
	}
}
