package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/testenv"
)

type req struct {
	N int `json:"n"`
}
type resp struct {
	Double int `json:"double"`
}

// SE-9: a panic in an RPC handler is recovered and answered with an error
// — the serving process lives and answers the next request; an outage on
// the serving side reaches the caller as one (503 material, not 500).
func TestRPCHandlerPanicIsAnsweredWithAnError_SE9(t *testing.T) {
	nc, _ := testenv.StartNATS(t).Connect(t)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	_, err := rpc.Serve(nc, "test.double", log, func(ctx context.Context, r req) (resp, error) {
		switch r.N {
		case 13:
			var m map[string]int
			m["x"] = 1 // panics
		case 7:
			return resp{}, fmt.Errorf("lookup: %w", context.DeadlineExceeded)
		}
		if _, ok := ctx.Deadline(); !ok {
			return resp{}, errors.New("the handler has no deadline")
		}
		return resp{Double: 2 * r.N}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = rpc.Call[resp](ctx, nc, "test.double", req{N: 13})
	if !errors.Is(err, rpc.ErrRemote) || !strings.Contains(err.Error(), "internal error") || errs.Is(err, errs.KindUnavailable) {
		t.Fatalf("panicking call: %v", err)
	}
	_, err = rpc.Call[resp](ctx, nc, "test.double", req{N: 7})
	if !errors.Is(err, rpc.ErrRemote) || !errs.Is(err, errs.KindUnavailable) {
		t.Fatalf("call during an outage: %v", err)
	}
	got, err := rpc.Call[resp](ctx, nc, "test.double", req{N: 21})
	if err != nil || got.Double != 42 {
		t.Fatalf("after the panic: %+v %v", got, err)
	}
}
