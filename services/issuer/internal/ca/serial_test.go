package ca_test

import (
	"testing"

	"github.com/certlife/platform/services/issuer/internal/ca"
)

// IS-2: serials are positive, non-zero, at most 127 bits, and differ.
func TestNewSerial_IS2(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		n, err := ca.NewSerial()
		if err != nil {
			t.Fatal(err)
		}
		if n.Sign() <= 0 || n.BitLen() > 127 || seen[n.String()] {
			t.Fatalf("serial %x", n)
		}
		seen[n.String()] = true
	}
}

func TestParseSerialHex_IS6(t *testing.T) {
	for in, want := range map[string]string{"0A:bC": "abc", "0x00ff": "ff", "DEADbeef": "deadbeef"} {
		if got, err := ca.ParseSerialHex(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "00", "xyz", "-1", "0x"} {
		if _, err := ca.ParseSerialHex(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
