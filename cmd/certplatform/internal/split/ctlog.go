package split

import (
	"flag"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/ctlog"
)

// CTLogMain runs `certplatform ct-log`: one dev CT log (pkg/ctlog) as a
// process of its own, as the all-in-one runs them in-process. The key file
// is made by the supervisor first (it needs the public key for CT_LOGS);
// the log stamps SCTs by the real clock, as split mode has no other.
func CTLogMain(args []string) error {
	fs := flag.NewFlagSet("ct-log", flag.ContinueOnError)
	name := fs.String("name", "certlife-dev-log", "the log's description")
	key := fs.String("key", "", "the log's key file (made when missing)")
	listen := fs.String("listen", "127.0.0.1:0", "HTTP address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := ctlog.LoadOrCreate(*name, *key)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	log := app.NewLogger(os.Getenv("LOG_LEVEL")).With("process", "ct-log", "log", *name)
	srv := &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("dev CT log listening", "addr", ln.Addr().String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return srv.Close()
}
