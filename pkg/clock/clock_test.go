package clock_test

import (
	"testing"
	"time"

	"github.com/certlife/platform/pkg/clock"
)

// CLOCK_CONTROL: the clock moves forward only, and signals each jump.
func TestOffsetClockMovesForwardOnly(t *testing.T) {
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	c := clock.NewFrozen(start)
	ch := c.Changed()
	if err := c.Advance(720 * time.Hour); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("no signal on advance")
	}
	if !c.Now().Equal(start.Add(720 * time.Hour)) {
		t.Fatal(c.Now())
	}
	if err := c.Set(start); err == nil {
		t.Fatal("moved backwards")
	}
	if err := c.Advance(-time.Second); err == nil {
		t.Fatal("negative advance accepted")
	}
	target := start.Add(1000 * time.Hour)
	if err := c.Set(target); err != nil || !c.Now().Equal(target) {
		t.Fatalf("set: %v %s", err, c.Now())
	}
}

// SE-4, CLOCK_CONTROL: a step past what the offset can hold is refused,
// never wrapped into the past.
func TestOffsetClockRefusesOverflow(t *testing.T) {
	start := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	c := clock.NewFrozen(start)
	if err := c.Advance(2562047 * time.Hour); err != nil {
		t.Fatal(err) // still fits
	}
	before := c.Now()
	if err := c.Advance(2562047 * time.Hour); err != clock.ErrOverflow {
		t.Fatalf("overflowing advance: %v", err)
	}
	if err := c.Set(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != clock.ErrOverflow {
		t.Fatalf("overflowing set: %v", err)
	}
	if !c.Now().Equal(before) {
		t.Fatalf("a refused step moved the clock to %v", c.Now())
	}
	c2 := clock.NewFrozen(start)
	if err := c2.Set(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)); err != clock.ErrOverflow {
		t.Fatalf("set beyond 292 years: %v", err)
	}
}
