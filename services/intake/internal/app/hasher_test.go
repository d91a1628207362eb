package app

import (
	"context"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/errs"
)

// SE-7: at most `concurrency` evaluations run; `queue` more wait up to
// `wait`; the rest are refused at once with 503 (Unavailable, Retry-After).
func TestHasherBound_SE7(t *testing.T) {
	h := NewHasher(1, 1, 50*time.Millisecond, NewMetrics(nil))
	held, release := make(chan struct{}), make(chan struct{})
	go func() { _ = h.Do(context.Background(), func() { close(held); <-release }) }()
	<-held
	waiter := make(chan error, 1)
	go func() { waiter <- h.Do(context.Background(), func() {}) }()
	// The queue has room for one: a third is refused at once.
	deadline := time.Now().Add(5 * time.Second)
	for h.waiting.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	err := h.Do(context.Background(), func() { t.Error("ran beyond the bound") })
	if e, _ := errs.As(err); e == nil || e.Kind != errs.KindUnavailable || e.RetryAfter <= 0 {
		t.Fatalf("queue full: %v", err)
	}
	// The waiter gives up after its wait.
	if err := <-waiter; !errs.Is(err, errs.KindUnavailable) {
		t.Fatalf("waited past the bound: %v", err)
	}
	close(release)
	if _, err := h.Verify(context.Background(), "$argon2id$bad", "x"); err != nil {
		t.Fatalf("a free slot: %v", err)
	}
}
