package domain

import (
	"net/netip"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// SE-3: the e-mail is refused while locked or while ten attempts are
// open; the address is only ever delayed, within a cap.
func TestThrottle_SE3(t *testing.T) {
	th := DefaultThrottle()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	until := now.Add(14 * time.Minute)
	for _, c := range []struct {
		s    EmailState
		want bool // admitted
	}{
		{EmailState{}, true},
		{EmailState{Open: 9, Oldest: now.Add(-time.Minute)}, true},
		{EmailState{Open: 10, Oldest: now.Add(-time.Minute)}, false},
		{EmailState{LockedUntil: &until}, false},
		{EmailState{LockedUntil: &now}, true}, // the lock ends at its instant
	} {
		err := th.Admit(c.s, now)
		if (err == nil) != c.want {
			t.Errorf("%+v: %v", c.s, err)
		}
		if err != nil {
			e, _ := errs.As(err)
			if e.Kind != errs.KindTooMany || e.RetryAfter < time.Second {
				t.Errorf("%+v: %+v", c.s, e)
			}
		}
	}
	if th.Locks(9) || !th.Locks(10) {
		t.Error("the tenth failure locks")
	}
	for n, want := range map[int]time.Duration{0: 0, 30: 0, 31: 100 * time.Millisecond, 40: time.Second, 1000: 3 * time.Second} {
		if got := th.AddressDelay(n); got != want {
			t.Errorf("delay after %d failures: %s, want %s", n, got, want)
		}
	}
}

func TestAddressKeyGroupsIPv6By64(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7": "192.0.2.7", "::ffff:192.0.2.7": "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64", "2001:db8:1:2::9": "2001:db8:1:2::/64",
	} {
		if got := AddressKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// PC-4, issue 6 item 11: a second cancellation says it is already cancelled.
func TestCancelAnswers_PC4(t *testing.T) {
	now := time.Now()
	slug := func(err error) string {
		e, _ := errs.As(err)
		if e == nil {
			return ""
		}
		return e.Slug
	}
	a := Application{Status: StatusProvisional, CancelDeadline: now.Add(time.Minute)}
	if err := a.Cancel(now); err != nil || a.Status != StatusCancelled {
		t.Fatalf("inside the window: %v %s", err, a.Status)
	}
	if s := slug(a.Cancel(now)); s != "already-cancelled" {
		t.Fatalf("second cancellation: %q", s)
	}
	late := Application{Status: StatusProvisional, CancelDeadline: now}
	if s := slug(late.Cancel(now)); s != "cancel-window-closed" {
		t.Fatalf("at the deadline: %q", s)
	}
	final := Application{Status: StatusAccepted, CancelDeadline: now.Add(time.Hour)}
	if s := slug(final.Cancel(now)); s != "cancel-window-closed" {
		t.Fatalf("accepted: %q", s)
	}
}

// PC-3, PC-5: the deadline is the window's end or an earlier maintenance
// start; a reissue has none; inside maintenance the answer is 503.
func TestDeadlineAndMaintenance_PC3_PC5(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	m := []MaintenanceWindow{{StartsAt: at.Add(20 * time.Minute), EndsAt: at.Add(2 * time.Hour)}}
	if d, r := Deadline(events.KindNew, at, time.Hour, nil); !d.Equal(at.Add(time.Hour)) || r != CloseDeadline {
		t.Fatal(d, r)
	}
	if d, r := Deadline(events.KindRenewal, at, time.Hour, m); !d.Equal(m[0].StartsAt) || r != CloseMaintenance {
		t.Fatal(d, r)
	}
	if d, r := Deadline(events.KindReissue, at, time.Hour, m); !d.Equal(at) || r != CloseImmediate {
		t.Fatal(d, r)
	}
	if err := UnderMaintenance(m, at); err != nil {
		t.Fatal(err)
	}
	err := UnderMaintenance(m, at.Add(30*time.Minute))
	if e, _ := errs.As(err); e == nil || e.Kind != errs.KindUnavailable || e.RetryAfter != 90*time.Minute {
		t.Fatalf("inside the window: %v", err)
	}
}
