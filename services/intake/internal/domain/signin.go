package domain

import (
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certlife/platform/pkg/errs"
)

// Throttle is the sign-in limit (SE-3). Every attempt — a session login
// or a Basic request — reserves its place before any password work:
//
//   - per e-mail: at most EmailFailures attempts that did not succeed
//     (failed, or still being checked) within Window; the attempt that
//     would exceed it is refused without a password check, and the
//     EmailFailures-th failure locks the e-mail for Lock (429 with
//     Retry-After). So 200 parallel guesses get at most 10 checked.
//   - per client address: only a delay. Past AddressFree failures within
//     Window, each attempt from the address waits AddressStep per further
//     failure, up to AddressMax, before its password is checked. An
//     address is slowed, never locked: behind the reverse proxy every
//     applicant may share one, and another e-mail's right credentials
//     still get in.
type Throttle struct {
	Window        time.Duration
	EmailFailures int
	Lock          time.Duration
	AddressFree   int
	AddressStep   time.Duration
	AddressMax    time.Duration
}

// DefaultThrottle is SE-3's figures.
func DefaultThrottle() Throttle {
	return Throttle{
		Window: 15 * time.Minute, EmailFailures: 10, Lock: 15 * time.Minute,
		AddressFree: 30, AddressStep: 100 * time.Millisecond, AddressMax: 3 * time.Second,
	}
}

// EmailState is what the store knows of an e-mail's recent attempts.
type EmailState struct {
	LockedUntil *time.Time
	// Open counts attempts in the window that did not succeed: failures
	// and reservations still being checked (or whose process died).
	Open int
	// Oldest is the oldest of them.
	Oldest time.Time
}

// Admit decides whether an attempt for the e-mail may be checked at now.
func (t Throttle) Admit(s EmailState, now time.Time) error {
	if s.LockedUntil != nil && now.Before(*s.LockedUntil) {
		return tooMany(s.LockedUntil.Sub(now))
	}
	if s.Open >= t.EmailFailures {
		// Every place is taken by failures or by attempts still being
		// checked; one frees when the oldest leaves the window.
		return tooMany(s.Oldest.Add(t.Window).Sub(now))
	}
	return nil
}

// Locks reports whether confirmed failures within the window lock the e-mail.
func (t Throttle) Locks(failures int) bool { return failures >= t.EmailFailures }

// AddressDelay is how long an attempt from an address with that many
// recent failures waits before its password is checked.
func (t Throttle) AddressDelay(failures int) time.Duration {
	extra := failures - t.AddressFree
	if extra <= 0 {
		return 0
	}
	return min(time.Duration(extra)*t.AddressStep, t.AddressMax)
}

func tooMany(retry time.Duration) error {
	return errs.TooMany("too-many-failures", "sign-in is locked for a while after repeated failures", max(retry, time.Second))
}

// NormalizeEmail is the form e-mails are compared in.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// AddressKey is the throttling key of a client address: the address, or
// for IPv6 its /64, which one subscriber usually holds whole.
func AddressKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// CredentialFields checks the text of sign-in fields: valid UTF-8, no
// control characters (NUL included), bounded. A bad one is a 422 naming it,
// before any work or any database query.
func CredentialFields(pairs ...string) error {
	var bad []errs.Field
	for i := 0; i+1 < len(pairs); i += 2 {
		name, v := pairs[i], pairs[i+1]
		switch {
		case len(v) > 256:
			bad = append(bad, errs.Field{Name: name, Message: "is too long"})
		case !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl):
			bad = append(bad, errs.Field{Name: name, Message: "contains characters that are not allowed"})
		}
	}
	if len(bad) > 0 {
		return errs.Invalid(bad...)
	}
	return nil
}
