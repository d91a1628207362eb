// Command certplatform runs the whole platform in one process: the five
// services, an embedded NATS JetStream server, Postgres (local or a
// private cluster), an SMTP sink and a dev CA. `make run` starts it.
//
// It is also the multi-call binary of split mode (`make run-split`):
//
//	certplatform split       the supervisor: every service as its own process
//	certplatform nats-node   one node of the NATS JetStream cluster
//	certplatform proxy       the reverse proxy in front of the replicas
//	certplatform mailsink    the SMTP sink writing .eml files
//	certplatform ct-log      one dev Certificate Transparency log
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/certlife/platform/cmd/certplatform/internal/natsnode"
	"github.com/certlife/platform/cmd/certplatform/internal/proxy"
	"github.com/certlife/platform/cmd/certplatform/internal/runner"
	"github.com/certlife/platform/cmd/certplatform/internal/split"
	"github.com/certlife/platform/pkg/app"
)

var commands = map[string]func(args []string) error{
	"split":     split.Main,
	"nats-node": natsnode.Main,
	"proxy":     proxy.Main,
	"mailsink":  split.MailSinkMain,
	"ct-log":    split.CTLogMain,
}

func main() {
	name, run := "certplatform", func([]string) error { return run() }
	if len(os.Args) > 1 {
		cmd, ok := commands[os.Args[1]]
		if !ok {
			fmt.Fprintf(os.Stderr, "certplatform: unknown command %q (commands: split, nats-node, proxy, mailsink, ct-log; none = the all-in-one)\n", os.Args[1])
			os.Exit(2)
		}
		name, run = "certplatform "+os.Args[1], cmd
	}
	var args []string
	if len(os.Args) > 2 {
		args = os.Args[2:]
	}
	if err := run(args); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
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
