package dcv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certlife/platform/services/validation/internal/domain"
)

// Config configures one perspective's checker.
type Config struct {
	// DNSServer is DCV_DNS_SERVER (host:port; empty = the system resolver).
	DNSServer string
	// HTTPPort is DCV_HTTP_PORT.
	HTTPPort int
	// Timeout bounds one whole check (every lookup and fetch in it).
	Timeout time.Duration
	// Primary: the primary perspective, which must validate DNSSEC
	// (Resolver.Strict).
	Primary bool
}

// Checker runs checks from one network perspective.
type Checker struct {
	Resolver *Resolver
	HTTP     *HTTPFetcher
	Timeout  time.Duration
}

// NewChecker builds a checker from c.
func NewChecker(c Config) (*Checker, error) {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.HTTPPort <= 0 || c.HTTPPort > 65535 {
		return nil, fmt.Errorf("DCV_HTTP_PORT %d is not a port", c.HTTPPort)
	}
	// Each query may take a third of the check: one retry, and a CAA
	// search of a few names, still fit.
	q := c.Timeout / 3
	if q > 5*time.Second {
		q = 5 * time.Second
	}
	r, err := NewResolver(c.DNSServer, q)
	if err != nil {
		return nil, err
	}
	r.Strict = c.Primary
	return &Checker{Resolver: r, HTTP: &HTTPFetcher{Resolver: r, Port: c.HTTPPort}, Timeout: c.Timeout}, nil
}

// Check runs one check and says what it saw; it never fails otherwise:
// whatever went wrong is the observation's outcome "error" and detail.
func (c *Checker) Check(ctx context.Context, req domain.CheckRequest) domain.Observation {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	switch req.Kind {
	case domain.CheckDNSTXT:
		return c.txt(ctx, req)
	case domain.CheckHTTPFile:
		return c.file(ctx, req)
	case domain.CheckCAA:
		return c.caa(ctx, req)
	}
	return domain.Observation{Outcome: domain.OutcomeError, Detail: fmt.Sprintf("unknown check %q", req.Kind)}
}

// txt looks for the value in the TXT records of each name (VA-2).
func (c *Checker) txt(ctx context.Context, req domain.CheckRequest) domain.Observation {
	o := domain.Observation{Outcome: domain.OutcomeNotFound}
	var problems []string
	weakest := domain.DNSSECSecure
	for _, name := range req.Names {
		values, sec, err := c.Resolver.TXT(ctx, name)
		if err != nil {
			problems = append(problems, err.Error())
			o.Seen = append(o.Seen, fmt.Sprintf("%s TXT: lookup failed", name))
			continue
		}
		weakest = weaker(weakest, sec)
		if len(values) == 0 {
			o.Seen = append(o.Seen, fmt.Sprintf("%s TXT: none (%s)", name, sec))
		}
		for _, v := range values {
			o.Seen = append(o.Seen, fmt.Sprintf("%s TXT %q (%s)", name, v, sec))
			if v == req.Expected && o.Outcome != domain.OutcomeFound {
				o.Outcome, o.DNSSEC = domain.OutcomeFound, sec
			}
		}
	}
	if o.Outcome == domain.OutcomeFound {
		return o
	}
	o.DNSSEC = weakest
	if len(problems) > 0 {
		// A failed lookup may hide the value: it is not a plain "not found".
		o.Outcome, o.Detail, o.DNSSEC = domain.OutcomeError, strings.Join(problems, "; "), ""
	}
	return o
}

// file fetches the HTTP method's file and looks for the value (VA-2).
func (c *Checker) file(ctx context.Context, req domain.CheckRequest) domain.Observation {
	if domain.IsWildcard(req.Domain) {
		return domain.Observation{Outcome: domain.OutcomeError, Detail: "the HTTP method cannot validate a wildcard name"}
	}
	res, err := c.HTTP.fetch(ctx, req.Domain, req.Path)
	o := domain.Observation{Seen: res.hops}
	switch {
	case err != nil:
		o.Outcome, o.Detail = domain.OutcomeError, httpProblem(err)
	case res.status < 200 || res.status > 299:
		o.Outcome, o.Detail = domain.OutcomeNotFound, fmt.Sprintf("HTTP %d, not 2xx", res.status)
	case holds(res.body, req.Expected):
		o.Outcome = domain.OutcomeFound
	default:
		o.Outcome, o.Detail = domain.OutcomeNotFound, "the answer does not hold the value"
	}
	return o
}

func httpProblem(err error) string {
	var le *LookupError
	switch {
	case errors.Is(err, errRedirect):
		return err.Error()
	case errors.As(err, &le):
		return "resolving the host: " + le.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time (timeout)"
	}
	return err.Error()
}

// caa finds the relevant CAA RRset and decides (VA-4).
func (c *Checker) caa(ctx context.Context, req domain.CheckRequest) domain.Observation {
	if req.CAA == nil {
		return domain.Observation{Outcome: domain.OutcomeError, Detail: "no CAA policy in the request"}
	}
	set, at, sec, err := c.Resolver.RelevantCAA(ctx, req.Domain)
	if err != nil {
		return domain.Observation{Outcome: domain.OutcomeError, Detail: "CAA lookup failed, which is never permission: " + err.Error()}
	}
	o := domain.Observation{DNSSEC: sec}
	for _, r := range set {
		o.Seen = append(o.Seen, fmt.Sprintf("%s CAA %s", at, r))
	}
	d := domain.EvaluateCAA(set, at, *req.CAA)
	o.Detail = d.Reason
	if d.Allowed {
		o.Outcome = domain.OutcomeAllowed
	} else {
		o.Outcome = domain.OutcomeForbidden
	}
	return o
}
