// Package mailsink is the SMTP server of the all-in-one runner (SPEC §7.1,
// SMTP_ADDR empty): it accepts every message on loopback and writes it as
// an .eml file, so that the mail the platform sent can be read on disk.
package mailsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// MaxMessageBytes bounds one message.
const MaxMessageBytes = 10 << 20

// Start listens on 127.0.0.1 on a free port and writes each message it
// receives to dir (created 0700) as <time>-<n>.eml, mode 0600. stop shuts
// the server down.
func Start(dir string, log *slog.Logger) (addr string, stop func(), err error) {
	return Listen("127.0.0.1:0", dir, log)
}

// Listen is Start on a given address (split mode runs the sink as a
// process of its own, on a port the notifier is told in advance).
func Listen(listenAddr, dir string, log *slog.Logger) (addr string, stop func(), err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("mailsink: %w", err)
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return "", nil, fmt.Errorf("mailsink: %w", err)
	}
	srv := smtp.NewServer(&backend{dir: dir, log: log})
	srv.Domain = "localhost"
	srv.MaxMessageBytes = MaxMessageBytes
	srv.MaxRecipients = 100
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = slogLogger{log}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			log.Error("mailsink stopped", "err", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			// Let a message being received finish, but not forever.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if srv.Shutdown(ctx) != nil {
				_ = srv.Close()
			}
			<-done
		})
	}
	log.Info("mail sink listening", "addr", ln.Addr().String(), "dir", dir)
	return ln.Addr().String(), stop, nil
}

type backend struct {
	dir string
	log *slog.Logger
	seq atomic.Uint64
}

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

type session struct {
	b    *backend
	from string
	to   []string
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	// The envelope is kept the way a delivering MTA would.
	fmt.Fprintf(&buf, "Return-Path: <%s>\r\n", s.from)
	for _, to := range s.to {
		fmt.Fprintf(&buf, "X-Envelope-To: <%s>\r\n", to)
	}
	buf.Write(raw)
	name := fmt.Sprintf("%s-%06d.eml", time.Now().UTC().Format("20060102T150405.000000000"), s.b.seq.Add(1))
	if err := writeFile(filepath.Join(s.b.dir, name), buf.Bytes()); err != nil {
		s.b.log.Error("mail sink cannot write", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store the message"}
	}
	s.b.log.Debug("mail sink stored a message", "file", name, "recipients", len(s.to))
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// writeFile writes through a temporary name, so a reader never sees half a message.
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) {
	l.log.Warn("mail sink", "msg", fmt.Sprintf(format, v...))
}
func (l slogLogger) Println(v ...any) { l.log.Warn("mail sink", "msg", fmt.Sprint(v...)) }
