package profile_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
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
