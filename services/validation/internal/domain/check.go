package domain

import (
	"fmt"
	"strings"
)

// CheckKind is what a perspective looks at.
type CheckKind string

const (
	CheckDNSTXT   CheckKind = "dns-txt"   // TXT records holding a value
	CheckHTTPFile CheckKind = "http-file" // a file over HTTP holding a value
	CheckCAA      CheckKind = "caa"       // the CAA permission (RFC 8659)
)

// CheckRequest is one check, the same for the primary perspective and
// every remote one (VA-7).
type CheckRequest struct {
	Kind   CheckKind `json:"kind"`
	Domain string    `json:"domain"`
	// dns-txt: the names to look at, in order.
	Names []string `json:"names,omitempty"`
	// http-file: the URL path on the domain.
	Path string `json:"path,omitempty"`
	// dns-txt, http-file: the value that must be found (not secret: the
	// customer publishes it).
	Expected string `json:"expected,omitempty"`
	// caa: whose issuance is asked about.
	CAA *CAAPolicy `json:"caa,omitempty"`
}

// Outcomes of an observation.
const (
	OutcomeFound     = "found"     // the expected value was there
	OutcomeNotFound  = "not_found" // an answer, without the value
	OutcomeAllowed   = "allowed"   // CAA permits issuance
	OutcomeForbidden = "forbidden" // CAA forbids issuance
	OutcomeError     = "error"     // no usable answer: SERVFAIL, REFUSED, timeout, connection refused, bad redirect…
	OutcomeNoAnswer  = "no_answer" // a remote perspective did not answer in time
)

// DNSSEC states of what a perspective saw.
const (
	DNSSECSecure   = "secure"   // every answer validated (AD)
	DNSSECInsecure = "insecure" // unsigned (no AD, no signature)
	// DNSSECUnvalidated: signed, not validated by the perspective's
	// resolver (allowed for remote perspectives only).
	DNSSECUnvalidated = "unvalidated"
)

// Observation is what one perspective saw (VA-7, VA-9).
type Observation struct {
	Perspective string `json:"perspective"`
	Region      string `json:"region,omitempty"`
	Primary     bool   `json:"primary,omitempty"`
	Outcome     string `json:"outcome"`
	DNSSEC      string `json:"dnssec,omitempty"`
	// Seen is what it found, one line per record or response.
	Seen []string `json:"seen,omitempty"`
	// Detail says what went wrong, or where a CAA RRset was found.
	Detail string `json:"detail,omitempty"`
	// Corroborates is set on a remote observation: whether it agrees
	// with the primary perspective's determination.
	Corroborates *bool `json:"corroborates,omitempty"`
}

// Passed reports whether the observation is a positive determination:
// the value was found, or CAA permits.
func (o Observation) Passed() bool { return o.Outcome == OutcomeFound || o.Outcome == OutcomeAllowed }

// Summary is one line about the observation.
func (o Observation) Summary() string {
	var b strings.Builder
	b.WriteString(o.Outcome)
	if len(o.Seen) > 0 {
		b.WriteString(", saw ")
		b.WriteString(strings.Join(o.Seen, "; "))
	} else if o.Outcome == OutcomeNotFound {
		b.WriteString(", saw nothing")
	}
	if o.Detail != "" {
		b.WriteString(" (")
		b.WriteString(o.Detail)
		b.WriteString(")")
	}
	return b.String()
}

// Failure is why a validation did not pass (VA-6): the domain, the
// method, what was expected and what was found — and, when remote
// perspectives disagreed, which ones and what each saw.
type Failure struct {
	Domain   string `json:"domain"`
	Method   string `json:"method"`
	Expected string `json:"expected"`
	Found    string `json:"found"`
	// Perspectives are the disagreeing remote perspectives (VA-7).
	Perspectives []Observation `json:"perspectives,omitempty"`
}

func (f Failure) Error() string {
	msg := fmt.Sprintf("%s, method %s: expected %s; found %s", f.Domain, f.Method, f.Expected, f.Found)
	for _, p := range f.Perspectives {
		msg += fmt.Sprintf("; perspective %s (%s): %s", p.Perspective, p.Region, p.Summary())
	}
	return msg
}

// Expectation says what a check looks for, in words.
func (r CheckRequest) Expectation() string {
	switch r.Kind {
	case CheckDNSTXT:
		return fmt.Sprintf("a TXT record %q at %s", r.Expected, strings.Join(r.Names, " or "))
	case CheckHTTPFile:
		return fmt.Sprintf("a 2xx answer holding %q at http://%s%s", r.Expected, r.Domain, r.Path)
	case CheckCAA:
		if r.CAA == nil {
			return "CAA permission"
		}
		return fmt.Sprintf("CAA permitting %s (account %s, methods %s)", strings.Join(r.CAA.Identities, " or "),
			r.CAA.AccountURI, strings.Join(r.CAA.MethodLabels, " or "))
	}
	return string(r.Kind)
}

// FailureOf describes a primary observation that did not pass.
func FailureOf(r CheckRequest, method string, o Observation) *Failure {
	return &Failure{Domain: r.Domain, Method: method, Expected: r.Expectation(), Found: o.Summary()}
}

// Validate refuses a request no check of this service would make: a name
// that is not a domain, TXT names outside it, a path outside
// /.well-known/. An agent checks it before touching the network, so that
// it cannot be used to query or fetch anything else.
func (r CheckRequest) Validate() error {
	d, err := NormalizeDomain(r.Domain)
	if err != nil {
		return err
	}
	base := BaseDomain(d)
	switch r.Kind {
	case CheckDNSTXT:
		if len(r.Names) == 0 || r.Expected == "" {
			return fmt.Errorf("a TXT check needs names and a value")
		}
		for _, n := range r.Names {
			n = strings.TrimSuffix(strings.ToLower(n), ".")
			if n != base && !strings.HasSuffix(n, "."+base) {
				return fmt.Errorf("%s is not at or under %s", n, base)
			}
		}
	case CheckHTTPFile:
		if !strings.HasPrefix(r.Path, "/.well-known/") || strings.Contains(r.Path, "..") || r.Expected == "" {
			return fmt.Errorf("an HTTP check needs a path under /.well-known/ and a value")
		}
	case CheckCAA:
		if r.CAA == nil || len(r.CAA.Identities) == 0 {
			return fmt.Errorf("a CAA check needs the CA's identities")
		}
	default:
		return fmt.Errorf("unknown check %q", r.Kind)
	}
	return nil
}
