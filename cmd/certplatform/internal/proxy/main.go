package proxy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/certlife/platform/pkg/app"
)

// upstreamFlag collects -upstream service=url,url… flags.
type upstreamFlag map[string][]string

func (u upstreamFlag) String() string { return fmt.Sprint(map[string][]string(u)) }

func (u upstreamFlag) Set(v string) error {
	name, urls, ok := strings.Cut(v, "=")
	if !ok || name == "" || urls == "" {
		return errors.New("want service=http://host:port[,http://host:port…]")
	}
	u[name] = append(u[name], strings.Split(urls, ",")...)
	return nil
}

// Main runs `certplatform proxy` until SIGINT or SIGTERM.
func Main(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "address of the public API")
	ups := upstreamFlag{}
	fs.Var(ups, "upstream", "service=http://host:port,… (repeat for each service)")
	interval := fs.Duration("health-interval", time.Second, "how often each replica's /readyz is probed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := app.NewLogger(os.Getenv("LOG_LEVEL")).With("process", "proxy")
	p, err := New(ups, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go p.RunHealth(ctx, *interval)
	srv := &http.Server{
		Addr:              *listen,
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("proxy listening", "addr", *listen)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
