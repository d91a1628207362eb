package intake_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// PC-5: a maintenance window that starts before an application's cancel
// deadline makes it final at the window's start — also when the window
// is added after acceptance — and during the window submissions and
// cancellations get 503 with Retry-After.
func TestMaintenancePullsDeadlineForwardAnd503_PC5(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, body("maint@example.co.jp"))
	start := r.Clock.Now().Add(20 * time.Minute)
	resp := r.Ops("POST", "/ops/v1/maintenance-windows", map[string]any{"starts_at": start, "ends_at": start.Add(2 * time.Hour)})
	if resp.Status != 201 {
		t.Fatalf("add window: %d %s", resp.Status, resp.Body)
	}
	v := r.view(t, a.ID, "maint@example.co.jp")
	if !v.CancelDeadline.Equal(start.Truncate(time.Microsecond)) && !v.CancelDeadline.Equal(start) {
		t.Fatalf("deadline %s, want the window start %s", v.CancelDeadline, start)
	}
	// Accepted before the window, while it is announced: deadline = start.
	b := r.submit(t, body("maint2@example.co.jp"))
	if !b.CancelDeadline.Before(start.Add(time.Second)) {
		t.Fatalf("new application deadline %s ignores the window at %s", b.CancelDeadline, start)
	}
	r.Advance(21 * time.Minute)
	env := r.WaitEvent(events.TypeCancelWindowClosed, a.ID, 10*time.Second)
	if ev, _ := events.Decode[events.CancelWindowClosed](env); ev.Reason != "maintenance" {
		t.Fatalf("reason %q", ev.Reason)
	}
	sub := r.Do("POST", "/v1/applications", body("during@example.co.jp"))
	if sub.Status != 503 {
		t.Fatalf("submission during maintenance: %d", sub.Status)
	}
	if ra, _ := strconv.Atoi(sub.Header.Get("Retry-After")); ra < 60 {
		t.Fatalf("Retry-After %q", sub.Header.Get("Retry-After"))
	}
	if c := r.Do("POST", "/v1/applications/"+b.ID+"/cancellation", nil, basic("maint2@example.co.jp", "an application password")...); c.Status != 503 {
		t.Fatalf("cancellation during maintenance: %d", c.Status)
	}
	r.Advance(2 * time.Hour)
	r.submit(t, body("after@example.co.jp"))
}

// PC-5, SE-5: the maintenance API needs an ops token and validates input.
func TestMaintenanceWindowAPI_PC5(t *testing.T) {
	r := newRig(t, testenv.Options{})
	if resp := r.Do("GET", "/ops/v1/maintenance-windows", nil); resp.Status != 401 {
		t.Fatalf("no token: %d", resp.Status)
	}
	now := r.Clock.Now()
	if resp := r.Ops("POST", "/ops/v1/maintenance-windows", map[string]any{"starts_at": now.Add(time.Hour), "ends_at": now}); resp.Status != 422 {
		t.Fatalf("ends before start: %d", resp.Status)
	}
	if resp := r.Ops("POST", "/ops/v1/maintenance-windows", map[string]any{"starts_at": "tomorrow"}); resp.Status != 422 {
		t.Fatalf("bad time: %d %s", resp.Status, resp.Body)
	}
	resp := r.Ops("POST", "/ops/v1/maintenance-windows", map[string]any{"starts_at": now.Add(time.Hour), "ends_at": now.Add(2 * time.Hour)})
	var w struct {
		ID string `json:"id"`
	}
	resp.JSON(t, &w)
	list := r.Ops("GET", "/ops/v1/maintenance-windows", nil)
	var l struct {
		Windows []struct {
			ID string `json:"id"`
		} `json:"windows"`
	}
	list.JSON(t, &l)
	if len(l.Windows) != 1 || l.Windows[0].ID != w.ID {
		t.Fatalf("list %s", list.Body)
	}
	if resp := r.Ops("DELETE", "/ops/v1/maintenance-windows/"+w.ID, nil); resp.Status != 204 {
		t.Fatalf("delete: %d", resp.Status)
	}
	if resp := r.Ops("DELETE", "/ops/v1/maintenance-windows/"+w.ID, nil); resp.Status != 404 {
		t.Fatalf("delete again: %d", resp.Status)
	}
}
