package httpx_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
)

// SE-4, SE-8: typed errors become their problem; an outage a 503 with
// Retry-After; anything else a 500 that says nothing.
func TestFromError(t *testing.T) {
	cases := []struct {
		err    error
		status int
		typ    string
		ok     bool
	}{
		{errs.InvalidField("email", "is required"), 422, "validation", true},
		{errs.Conflict("cancel-window-closed", "closed"), 409, "cancel-window-closed", true},
		{errs.NotFound(""), 404, "not-found", true},
		{&pgconn.PgError{Code: "08006"}, 503, "unavailable", true},
		// A pooled connection Postgres closed: pgx reports only this.
		{fmt.Errorf("failed to deallocate cached statement(s): %w", io.ErrUnexpectedEOF), 503, "unavailable", true},
		{errors.New("secret detail"), 500, "internal", false},
	}
	for _, c := range cases {
		p, ok := httpx.FromError(c.err)
		if p.Status != c.status || p.Type != httpx.ProblemBase+c.typ || ok != c.ok {
			t.Errorf("%v → %d %s %v", c.err, p.Status, p.Type, ok)
		}
		if c.status == http.StatusServiceUnavailable && p.RetryAfter <= 0 {
			t.Errorf("%v: no Retry-After", c.err)
		}
		if c.status == 500 && p.Detail != "" {
			t.Errorf("500 leaks %q", p.Detail)
		}
	}
	p, _ := httpx.FromError(errs.Invalid(errs.Field{Name: "a", Message: "x"}, errs.Field{Name: "b", Message: "y"}))
	if len(p.Errors) != 2 || p.Errors[1].Field != "b" {
		t.Fatalf("fields %+v", p.Errors)
	}
}
