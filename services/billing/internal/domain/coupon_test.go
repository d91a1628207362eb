package domain

import (
	"testing"
	"time"
)

func TestParseExpiry_BI1(t *testing.T) {
	got, err := ParseExpiry("2026-04-01")
	if err != nil || !got.Equal(time.Date(2026, 4, 1, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("date: %v %v, want the end of 2026-04-01 JST = 15:00 UTC", got, err)
	}
	got, err = ParseExpiry("2026-04-01T10:00:00+09:00")
	if err != nil || !got.Equal(time.Date(2026, 4, 1, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("rfc3339: %v %v", got, err)
	}
	for _, bad := range []string{"", "2026-13-01", "2026-04-01 10:00", "1743465600"} {
		if _, err := ParseExpiry(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
