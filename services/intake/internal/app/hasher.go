package app

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/intake/internal/domain"
)

// Hasher runs argon2id evaluations, at most Concurrency at once (SE-7:
// each costs 19 MiB and tens of milliseconds of CPU). Up to Queue more
// wait, each at most Wait; beyond that an evaluation is refused with 503
// and Retry-After, so that a burst of sign-ins can neither exhaust memory
// nor queue without end.
type Hasher struct {
	slots   chan struct{}
	queue   int64
	wait    time.Duration
	waiting atomic.Int64
	m       *Metrics
}

// NewHasher bounds argon2id: concurrency ≤ 0 means the number of CPUs,
// queue < 0 no queue, wait ≤ 0 three seconds (a loaded 2-core machine
// takes ~150 ms per evaluation: a full queue of 16 drains in about that).
func NewHasher(concurrency, queue int, wait time.Duration, m *Metrics) *Hasher {
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	if queue < 0 {
		queue = 0
	}
	if wait <= 0 {
		wait = 3 * time.Second
	}
	m.argonSlots.Set(float64(concurrency))
	return &Hasher{slots: make(chan struct{}, concurrency), queue: int64(queue), wait: wait, m: m}
}

// DefaultQueue is the queue for a concurrency: a few rounds of work.
func DefaultQueue(concurrency int) int {
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	return 8 * concurrency
}

func errBusy() error {
	return errs.Unavailable("sign-in-busy", "too many password checks are running; try again in a moment", time.Second, nil)
}

// Do runs fn in a slot, or refuses with 503 when the queue is full or
// the wait too long.
func (h *Hasher) Do(ctx context.Context, fn func()) error {
	select {
	case h.slots <- struct{}{}:
	default:
		if h.waiting.Add(1) > h.queue {
			h.waiting.Add(-1)
			h.m.argonRejected.Inc()
			return errBusy()
		}
		h.m.argonWaiting.Inc()
		t := time.NewTimer(h.wait)
		select {
		case h.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			h.waiting.Add(-1)
			h.m.argonWaiting.Dec()
			h.m.argonRejected.Inc()
			return errBusy()
		case <-ctx.Done():
			t.Stop()
			h.waiting.Add(-1)
			h.m.argonWaiting.Dec()
			return ctx.Err()
		}
		h.waiting.Add(-1)
		h.m.argonWaiting.Dec()
	}
	h.m.argonBusy.Inc()
	defer func() { h.m.argonBusy.Dec(); <-h.slots }()
	h.m.argonEvaluations.Inc()
	fn()
	return nil
}

// Hash hashes a new application password.
func (h *Hasher) Hash(ctx context.Context, password string) (hash string, err error) {
	var herr error
	if err := h.Do(ctx, func() { hash, herr = domain.HashPassword(password) }); err != nil {
		return "", err
	}
	return hash, herr
}

// Verify checks s against an argon2id hash.
func (h *Hasher) Verify(ctx context.Context, hash, s string) (ok bool, err error) {
	err = h.Do(ctx, func() { ok = domain.VerifyPassword(hash, s) })
	return ok, err
}
