// Command certplatform runs the whole platform in one process: the five
// services, an embedded NATS JetStream server, Postgres (local or a
// private cluster), an SMTP sink and a dev CA. `make run` starts it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/certlife/platform/cmd/certplatform/internal/runner"
	"github.com/certlife/platform/pkg/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "certplatform:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := app.LoadConfig()
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg.LogLevel)
	p, err := runner.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, p.Banner())
	err = p.Wait(ctx)
	log.Info("shutting down")
	return errorsJoin(err, p.Stop(context.Background()))
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
