// Package smtpsend sends one e-mail over SMTP (NO-1): STARTTLS whenever
// the server offers it, no authentication, a caller-given Message-ID.
package smtpsend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// Message is one e-mail.
type Message struct {
	From      string
	To        string
	Subject   string
	Body      string
	MessageID string // "<id@domain>"
	Date      time.Time
	// Attachments are files sent with the text body.
	Attachments []Attachment
}

// Attachment is one file of a message.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Sender sends to one SMTP server.
type Sender struct {
	host    string
	port    int
	timeout time.Duration
}

// New returns a sender to addr (host:port).
func New(addr string, timeout time.Duration) (*Sender, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("SMTP_ADDR %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("SMTP_ADDR %q: bad port", addr)
	}
	return &Sender{host: host, port: port, timeout: timeout}, nil
}

// PermanentError is a failure a retry cannot fix: a malformed address, or
// a 5xx answer of the server.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Send delivers m, one connection per message: the queue sends a message
// at a time, and a fresh connection never inherits a broken session.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg()
	if err := msg.From(m.From); err != nil {
		return &PermanentError{fmt.Errorf("sender %q: %w", m.From, err)}
	}
	if err := msg.To(m.To); err != nil {
		return &PermanentError{fmt.Errorf("recipient: %w", err)}
	}
	// go-mail folds an encoded subject before its first word, which
	// parsers (Python's email among them) then decode with a leading
	// space: the subject is encoded and folded here instead.
	msg.SetGenHeaderPreformatted(mail.HeaderSubject, EncodeSubject(m.Subject))
	msg.SetMessageIDWithValue(strings.TrimSuffix(strings.TrimPrefix(m.MessageID, "<"), ">"))
	msg.SetDateWithValue(m.Date)
	msg.SetBulk()
	// RFC 3834: a machine wrote it; auto-responders must not answer.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	for _, a := range m.Attachments {
		if err := msg.AttachReader(a.Name, bytes.NewReader(a.Data), mail.WithFileContentType(mail.ContentType(a.ContentType))); err != nil {
			return &PermanentError{fmt.Errorf("attachment %s: %w", a.Name, err)}
		}
	}

	c, err := mail.NewClient(s.host,
		mail.WithPort(s.port),
		mail.WithTLSPolicy(mail.TLSOpportunistic),
		mail.WithTimeout(s.timeout),
	)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *mail.SendError
		if errors.As(err, &se) {
			code := se.ErrorCode()
			if (code >= 500 && code < 600) || se.Reason == mail.ErrGetSender || se.Reason == mail.ErrGetRcpts {
				return &PermanentError{err}
			}
		}
		return err
	}
	return nil
}
