package profile_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/certlife/platform/services/issuer/internal/profile"
)

const day = 24 * time.Hour

// PC-15, PC-11, IS-4: the validity rules, table by table.
func TestValidity_PC15_PC11_IS4(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	year := 365 * day
	cases := []struct {
		name      string
		kind      string
		prev      time.Time
		term      time.Duration
		wantAfter time.Time
		wantErr   error
	}{
		{"new: one term", "new", time.Time{}, year, now.Add(year), nil},
		{"renewal before expiry: chained", "renewal", now.Add(20 * day), year, now.Add(20*day + year), nil},
		{"renewal after expiry: from now", "renewal", now.Add(-40 * day), year, now.Add(year), nil},
		{"renewal chained past the cap", "renewal", now.Add(60 * day), 800 * day, now.Add(825*day - time.Second), nil},
		{"new term past the cap", "new", time.Time{}, 1000 * day, now.Add(825*day - time.Second), nil},
		{"reissue keeps expiry", "reissue", now.Add(200 * day), year, now.Add(200 * day), nil},
		{"reissue of an expired certificate", "reissue", now.Add(-time.Hour), year, time.Time{}, profile.ErrPreviousExpired},
		{"reissue without a previous certificate", "reissue", time.Time{}, year, time.Time{}, profile.ErrPreviousNotIssued},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nb, na, err := profile.Validity(c.kind, now.Add(300*time.Millisecond), c.prev, c.term)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			if !nb.Equal(now) || !na.Equal(c.wantAfter) {
				t.Fatalf("validity %s .. %s, want %s .. %s", nb, na, now, c.wantAfter)
			}
			if na.Sub(nb) >= profile.MaxValidity {
				t.Fatalf("validity %s reaches the 825-day cap", na.Sub(nb))
			}
		})
	}
}

func TestSplitNameFamilyNameFirst_IS3(t *testing.T) {
	for in, want := range map[string][2]string{
		"Veri Taro":        {"Veri", "Taro"},
		"  Yamada  Hanako": {"Yamada", "Hanako"},
		"Madonna":          {"Madonna", ""},
		"De La Cruz Ana":   {"De", "La Cruz Ana"},
	} {
		s, g := profile.SplitName(in)
		if s != want[0] || g != want[1] {
			t.Errorf("%q: (%q, %q), want %v", in, s, g, want)
		}
	}
}

func TestCSRKeyRules_PC13_SV6(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for _, ok := range []any{p256.Public(), p384.Public()} {
		if err := profile.CheckPublicKey(ok); err != nil {
			t.Errorf("%T refused: %v", ok, err)
		}
	}
	if err := profile.CheckPublicKey(p521.Public()); err == nil {
		t.Error("P-521 accepted")
	}
}

// PC-17 (SBR 7.1.4.2.2): the subject is C, O, organizationIdentifier,
// surname, givenName, CN — one attribute per RDN, in that order; the
// organizationIdentifier is a PrintableString and appears only when the
// application has one; a malformed one makes no certificate.
func TestTemplateSubject_PC17(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Truncate(time.Second)
	u := profile.URLs{CRL: "http://pki.example.jp/crl/ica1.crl", CAIssuers: "http://pki.example.jp/ca/ica1.der"}
	s := profile.Subject{NameEn: "Veri Taro", OrganizationEn: "VeriSign Japan K.K.",
		OrganizationIdentifier: "NTRJP-4010001012345", Email: "taro@example.co.jp"}
	attrs := func(s profile.Subject) [][2]string {
		t.Helper()
		tpl, err := profile.Template(s, big.NewInt(1), now, now.Add(day), key.Public(), u)
		if err != nil {
			t.Fatal(err)
		}
		var rdns pkix.RDNSequence
		if rest, err := asn1.Unmarshal(tpl.RawSubject, &rdns); err != nil || len(rest) != 0 {
			t.Fatalf("subject does not parse: %v", err)
		}
		var out [][2]string
		for _, rdn := range rdns {
			if len(rdn) != 1 {
				t.Fatalf("multi-valued RDN %v", rdn)
			}
			out = append(out, [2]string{rdn[0].Type.String(), rdn[0].Value.(string)})
		}
		// The organizationIdentifier is a PrintableString (tag 19).
		if s.OrganizationIdentifier != "" && !bytes.Contains(tpl.RawSubject,
			append([]byte{0x06, 0x03, 0x55, 0x04, 0x61, 0x13, byte(len(s.OrganizationIdentifier))}, s.OrganizationIdentifier...)) {
			t.Fatal("organizationIdentifier is not a PrintableString")
		}
		return out
	}
	want := [][2]string{{"2.5.4.6", "JP"}, {"2.5.4.10", "VeriSign Japan K.K."}, {"2.5.4.97", "NTRJP-4010001012345"},
		{"2.5.4.4", "Veri"}, {"2.5.4.42", "Taro"}, {"2.5.4.3", "Veri Taro"}}
	if got := attrs(s); !slices.Equal(got, want) {
		t.Fatalf("subject %v, want %v", got, want)
	}
	s.OrganizationIdentifier = "LEIXG-5493001KJTIIGC8Y1R12"
	want[2][1] = s.OrganizationIdentifier
	if got := attrs(s); !slices.Equal(got, want) {
		t.Fatalf("subject %v, want %v", got, want)
	}
	// SBR 7.1.4.2.2 d Note 2: a government entity has no reference (PC-1).
	s.OrganizationIdentifier = "GOVJP+13"
	want[2][1] = s.OrganizationIdentifier
	if got := attrs(s); !slices.Equal(got, want) {
		t.Fatalf("subject %v, want %v", got, want)
	}
	s.OrganizationIdentifier = ""
	if got := attrs(s); !slices.Equal(got, slices.Delete(slices.Clone(want), 2, 3)) {
		t.Fatalf("subject without identifier %v", got)
	}
	for _, bad := range []string{"1010001000001", "ntrjp-1010001000001", "NTR-JP-1", "XYZJP-1", "NTRJP-", "NTRJP-1 2", "NTRJP", "GOVJP-1"} {
		s.OrganizationIdentifier = bad
		if _, err := profile.Template(s, big.NewInt(1), now, now.Add(day), key.Public(), u); !errors.Is(err, profile.ErrOrganizationIdentifier) {
			t.Errorf("%q: %v, want ErrOrganizationIdentifier", bad, err)
		}
	}
}
