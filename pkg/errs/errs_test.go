package errs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/errs"
)

// SE-8: an outage of Postgres or NATS is transient; a fault of the work is not.
func TestTransientSE8(t *testing.T) {
	transient := []error{
		context.DeadlineExceeded,
		&pgconn.PgError{Code: "40001"},
		&pgconn.PgError{Code: "08006"},
		&pgconn.PgError{Code: "57P01"},
		fmt.Errorf("wrapped: %w", nats.ErrNoResponders),
		nats.ErrConnectionClosed,
		errs.Unavailable("x", "down", 0, nil),
	}
	for _, err := range transient {
		if !errs.Transient(err) {
			t.Errorf("Transient(%v) = false", err)
		}
		if errs.KindOf(err) != errs.KindUnavailable {
			t.Errorf("KindOf(%v) = %v", err, errs.KindOf(err))
		}
	}
	permanent := []error{
		errors.New("boom"),
		&pgconn.PgError{Code: "23505"},
		errs.Conflict("closed", "closed"),
		context.Canceled,
	}
	for _, err := range permanent {
		if errs.Transient(err) {
			t.Errorf("Transient(%v) = true", err)
		}
	}
}

func TestKindAndMessage(t *testing.T) {
	err := fmt.Errorf("use case: %w", errs.InvalidField("coupon", "is used"))
	if !errs.Is(err, errs.KindInvalid) {
		t.Fatal("kind lost through wrapping")
	}
	if got := err.Error(); got != "use case: coupon: is used" {
		t.Fatalf("message %q", got)
	}
}
