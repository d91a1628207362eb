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

	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/events"
)

// Serve answers subject with fn. Errors become an RPCError reply.
func Serve[Req, Resp any](nc *nats.Conn, subject string, log *slog.Logger, fn func(ctx context.Context, req Req) (Resp, error)) (*nats.Subscription, error) {
	return nc.QueueSubscribe(subject, subject, func(m *nats.Msg) {
		var req Req
		var out any
		if err := json.Unmarshal(m.Data, &req); err != nil {
			out = events.RPCError{Error: "malformed request"}
		} else if resp, err := fn(context.Background(), req); err != nil {
			log.Error("rpc failed", "subject", subject, "err", err)
			out = events.RPCError{Error: "internal error"}
		} else {
			out = resp
		}
		raw, _ := json.Marshal(out)
		h := nats.Header{}
		if _, isErr := out.(events.RPCError); isErr {
			h.Set("Rpc-Error", "1")
		}
		_ = m.RespondMsg(&nats.Msg{Data: raw, Header: h})
	})
}

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
		return resp, fmt.Errorf("%w: %s: %s", ErrRemote, subject, e.Error)
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return resp, fmt.Errorf("rpc %s: %w", subject, err)
	}
	return resp, nil
}
