package split

import (
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/services/notifier/mailsink"
)

// MailSinkMain runs `certplatform mailsink`: the all-in-one's SMTP sink as
// a process of its own, writing each message as an .eml file.
func MailSinkMain(args []string) error {
	fs := flag.NewFlagSet("mailsink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:2525", "SMTP address")
	dir := fs.String("dir", "./var/mail", "where each message is written as an .eml file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := app.NewLogger(os.Getenv("LOG_LEVEL")).With("process", "mailsink")
	_, stop, err := mailsink.Listen(*listen, *dir, log)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	stop()
	return nil
}
