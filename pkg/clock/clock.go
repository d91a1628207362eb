// Package clock is the platform's one source of time. Every rule and timer
// reads Now from an injected Clock, never time.Now, so that tests and the
// dev runner (CLOCK_CONTROL) can move time forward for every service at once.
package clock

import (
	"errors"
	"sync"
	"time"
)

// Clock tells the time and signals when it jumps.
type Clock interface {
	Now() time.Time
	// Changed is closed and replaced whenever the clock jumps forward, so
	// that timer loops re-check what became due. Nil for the real clock.
	Changed() <-chan struct{}
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time           { return time.Now().UTC() }
func (Real) Changed() <-chan struct{} { return nil }

// Offset is the wall clock plus an offset that only grows: time keeps
// flowing, and Advance/Set jump it forward (CLOCK_CONTROL, tests).
type Offset struct {
	mu      sync.Mutex
	offset  time.Duration
	changed chan struct{}
	base    func() time.Time
}

// NewOffset returns a controllable clock starting at wall time.
func NewOffset() *Offset { return &Offset{changed: make(chan struct{}), base: time.Now} }

// NewFrozen returns a controllable clock stopped at t: it moves only when
// told, which makes time-based rules exactly testable.
func NewFrozen(t time.Time) *Offset {
	return &Offset{changed: make(chan struct{}), base: func() time.Time { return t }}
}

func (c *Offset) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base().Add(c.offset).UTC()
}

func (c *Offset) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// ErrBackwards: the clock never goes back (timers and audit depend on it).
var ErrBackwards = errors.New("the clock only moves forward")

// ErrOverflow: the step would take the clock beyond what a Duration
// offset can hold (about 292 years from the wall clock); left unchecked
// it would wrap around into the past.
var ErrOverflow = errors.New("the step is too large for the clock")

// Advance moves the clock forward by d.
func (c *Offset) Advance(d time.Duration) error {
	if d < 0 {
		return ErrBackwards
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.offset+d < c.offset {
		return ErrOverflow
	}
	c.offset += d
	c.signal()
	return nil
}

// Set moves the clock forward to t.
func (c *Offset) Set(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.base().Add(c.offset)
	if t.Before(now) {
		return ErrBackwards
	}
	d := t.Sub(now) // saturates instead of overflowing
	if !now.Add(d).Equal(t) || c.offset+d < c.offset {
		return ErrOverflow
	}
	c.offset += d
	c.signal()
	return nil
}

func (c *Offset) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}
