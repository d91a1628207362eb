// Package rpc is JSON request/reply over core NATS for the few synchronous
// queries of the platform (SPEC §2), served behind a queue group so that
// replicas share them.
package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// HandlerTimeout is the deadline of one served request: callers give up
// sooner, so work past it is wasted.
const HandlerTimeout = 10 * time.Second

// Serve answers subject with fn. Errors become an RPCError reply; a panic
// in fn is recovered, logged with its stack and answered as an error
// (SE-9); an outage (errs.Transient) is answered as one, so that the
// caller can say 503 rather than 500.
func Serve[Req, Resp any](nc *nats.Conn, subject string, log *slog.Logger, fn func(ctx context.Context, req Req) (Resp, error)) (*nats.Subscription, error) {
	return nc.QueueSubscribe(subject, subject, func(m *nats.Msg) {
		var req Req
		var out any
		h := nats.Header{}
		if err := json.Unmarshal(m.Data, &req); err != nil {
			out = events.RPCError{Error: "malformed request"}
		} else {
			var resp Resp
			err := errs.Guard(func() error {
				ctx, cancel := context.WithTimeout(context.Background(), HandlerTimeout)
				defer cancel()
				var err error
				resp, err = fn(ctx, req)
				return err
			})
			if p, ok := errs.PanicOf(err); ok {
				log.Error("rpc handler panicked", "subject", subject, "panic", p.Value, "stack", string(p.Stack))
				out = events.RPCError{Error: "internal error"}
			} else if err != nil {
				log.Error("rpc failed", "subject", subject, "err", err)
				out = events.RPCError{Error: "internal error"}
				if errs.Transient(err) {
					h.Set(headerUnavailable, "1")
				}
			} else {
				out = resp
			}
		}
		raw, err := json.Marshal(out)
		if err != nil {
			log.Error("rpc reply does not encode", "subject", subject, "err", err)
			raw, _ = json.Marshal(events.RPCError{Error: "internal error"})
			out = events.RPCError{}
		}
		if _, isErr := out.(events.RPCError); isErr {
			h.Set("Rpc-Error", "1")
		}
		_ = m.RespondMsg(&nats.Msg{Data: raw, Header: h})
	})
}

// headerUnavailable marks an error reply caused by an outage on the
// serving side.
const headerUnavailable = "Rpc-Unavailable"

// ErrRemote is a failure reported by the serving side.
var ErrRemote = errors.New("rpc: remote error")

// Call sends req to subject and decodes the reply.
func Call[Resp any](ctx context.Context, nc *nats.Conn, subject string, req any) (Resp, error) {
	var resp Resp
	raw, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	m, err := nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: raw})
	if err != nil {
		return resp, fmt.Errorf("rpc %s: %w", subject, err)
	}
	if m.Header.Get("Rpc-Error") != "" {
		var e events.RPCError
		_ = json.Unmarshal(m.Data, &e)
		err := fmt.Errorf("%w: %s: %s", ErrRemote, subject, e.Error)
		if m.Header.Get(headerUnavailable) != "" {
			return resp, errs.Unavailable("", "a dependency is unavailable; try again shortly", 5*time.Second, err)
		}
		return resp, err
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return resp, fmt.Errorf("rpc %s: %w", subject, err)
	}
	return resp, nil
}
