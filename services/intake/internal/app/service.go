// Package app is intake's use cases: submitting, cancelling and closing
// applications, renewals and reissues, maintenance windows, signing in,
// and following the other services' events. Each use case opens and owns
// its transaction (or runs in the consumer's or timer's); none knows
// HTTP. Errors are pkg/errs errors or causes the edge reports as 500/503.
package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// TimerCancelWindow closes an application's cancel window (PC-3).
const TimerCancelWindow = "cancel_window"

// Service holds what the use cases need.
type Service struct {
	Pool         *pgxpool.Pool
	NC           *nats.Conn
	Clock        clock.Clock
	Log          *slog.Logger
	CancelWindow time.Duration
	// SessionTTL is the life of a session and of its token.
	SessionTTL  time.Duration
	NotifierKey seal.PublicKey
	// CodeKey MACs certificate codes (SE-7).
	CodeKey domain.CodeKey
	// Signer signs session tokens; Verifier checks them (its key, and
	// any other SESSION_PUBLIC_KEY during a rotation).
	Signer   *session.Signer
	Verifier *session.Verifier
	// Hasher runs every argon2id evaluation, bounded (SE-7).
	Hasher   *Hasher
	Throttle domain.Throttle
	// CodeRequests bounds the fresh codes asked for per e-mail (PC-16).
	CodeRequests domain.CodeRequests
	Metrics      *Metrics
	// PublicURL is the base of links in mails (setup, renewal intent).
	PublicURL string
	// ServerTermMonths is the term a renewal order buys (PRODUCT_TERM_SERVER).
	ServerTermMonths int
	// AutoReapplyAfter is SV-4's period after payment (0: off).
	AutoReapplyAfter time.Duration
}

func (s *Service) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.Pool, fn)
}

func (s *Service) emit(ctx context.Context, tx pgx.Tx, p events.Payload, correlation string) error {
	env, err := events.New(p, s.Clock.Now(), correlation)
	if err != nil {
		return err
	}
	return bus.Emit(ctx, tx, env)
}

// notFound maps the store's ErrNotFound to the 404 every caller gets.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return domain.ErrNotFound()
	}
	return err
}

func couponInUse(err error) error {
	if errors.Is(err, store.ErrCouponInUse) {
		return errs.InvalidField("coupon", "this coupon is already used by another application")
	}
	return err
}
