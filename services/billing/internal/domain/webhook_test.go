package domain

import (
	"strconv"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/errs"
)

// BI-2: HMAC-SHA256 over t + "." + body; more than 5 minutes of skew, a
// changed body or timestamp, another secret or a malformed header → 401.
func TestVerifySignature_BI2(t *testing.T) {
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	body := []byte(`{"id":"evt_1"}`)
	sig := Sign("s3cret", now, body)
	if err := VerifySignature("s3cret", sig, body, now.Add(4*time.Minute)); err != nil {
		t.Fatalf("a fresh signature: %v", err)
	}
	if err := VerifySignature("s3cret", sig+",v1=00", body, now); err != nil {
		t.Fatalf("with an extra v1: %v", err)
	}
	for name, c := range map[string]struct {
		header string
		body   []byte
		now    time.Time
	}{
		"stale":           {sig, body, now.Add(5*time.Minute + time.Second)},
		"from the future": {sig, body, now.Add(-5*time.Minute - time.Second)},
		"tampered body":   {sig, []byte(`{"id":"evt_2"}`), now},
		"other secret":    {Sign("other", now, body), body, now},
		"moved timestamp": {"t=" + itoa(now.Unix()+1) + sig[len("t=")+len(itoa(now.Unix())):], body, now},
		"no header":       {"", body, now},
		"no v1":           {"t=" + itoa(now.Unix()), body, now},
		"garbage":         {"v1=zz,t=abc", body, now},
	} {
		err := VerifySignature("s3cret", c.header, c.body, c.now)
		if !errs.Is(err, errs.KindUnauthorized) {
			t.Errorf("%s: %v, want 401", name, err)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
