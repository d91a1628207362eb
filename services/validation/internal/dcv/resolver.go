// Package dcv is validation's network perspective: the DNS lookups (TXT,
// CAA with tree climbing, A/AAAA) through one validating resolver, the
// HTTP file fetch with the BR's redirect rules, the Checker that runs one
// check and says what it saw, the validation-agent's NATS responder, and
// the client that asks the remote perspectives (VA-2 … VA-4, VA-7, VA-8).
// It holds no cache: every check asks the resolver afresh, so one
// perspective never reuses another's results.
package dcv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/certlife/platform/services/validation/internal/domain"
)

// Resolver sends every query to one DNS server: DCV_DNS_SERVER, a
// validating resolver (VA-3, VA-8). Queries ask for DNSSEC (DO and AD
// set); a SERVFAIL — what a validating resolver answers for bogus data —
// is a failure, and so is a signed answer the resolver did not validate.
type Resolver struct {
	// Server is host:port.
	Server string
	// Timeout bounds one query; a query that times out is retried once.
	Timeout time.Duration
	// Strict refuses a signed answer the server did not validate (no AD):
	// the primary perspective must validate (VA-8, BR §4.2.2.1.3). Remote
	// perspectives MAY validate: theirs record it as "unvalidated".
	Strict bool
}

// NewResolver uses server, or when empty the first nameserver of
// /etc/resolv.conf (the system resolver, SPEC §7.1's default); with
// neither, every lookup fails saying so.
func NewResolver(server string, timeout time.Duration) (*Resolver, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if server == "" {
		if cc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(cc.Servers) > 0 {
			server = net.JoinHostPort(cc.Servers[0], cc.Port)
		}
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		return nil, fmt.Errorf("DCV_DNS_SERVER %q is not host:port", server)
	}
	return &Resolver{Server: server, Timeout: timeout}, nil
}

// LookupError is a lookup that brought no usable answer: no answer is
// never an answer (VA-4).
type LookupError struct {
	Name, Type, Problem string
}

func (e *LookupError) Error() string { return fmt.Sprintf("%s %s: %s", e.Name, e.Type, e.Problem) }

// result is the records of one type at the end of a name's alias chain.
type result struct {
	records []dns.RR
	secure  bool
	// unvalidated: signed, but the server did not validate (not Strict).
	unvalidated bool
}

// security is the DNSSEC state of a result.
func (r result) security() string {
	switch {
	case r.secure:
		return domain.DNSSECSecure
	case r.unvalidated:
		return domain.DNSSECUnvalidated
	}
	return domain.DNSSECInsecure
}

const maxAliases = 8

// lookup asks for name's records of qtype, following CNAMEs.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) (result, error) {
	res := result{secure: true}
	unvalidated := false
	target := dns.Fqdn(strings.ToLower(name))
	for hop := 0; hop <= maxAliases; hop++ {
		msg, err := r.exchange(ctx, target, qtype)
		if err != nil {
			return res, err
		}
		res.secure = res.secure && msg.AuthenticatedData
		unvalidated = unvalidated || !msg.AuthenticatedData && signed(msg)
		// Walk the answer's alias chain from target.
		cur := target
		for i := 0; i <= maxAliases; i++ {
			var next string
			for _, rr := range msg.Answer {
				h := rr.Header()
				if !strings.EqualFold(h.Name, cur) {
					continue
				}
				if h.Rrtype == qtype {
					res.records = append(res.records, rr)
				} else if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
					next = strings.ToLower(c.Target)
				}
			}
			if len(res.records) > 0 || next == "" {
				break
			}
			cur = next
		}
		if len(res.records) > 0 || cur == target {
			res.unvalidated = unvalidated
			return res, nil
		}
		target = cur // the resolver did not follow the alias: ask for its target
	}
	return res, &LookupError{Name: name, Type: dns.TypeToString[qtype], Problem: "too many aliases (CNAME)"}
}

// exchange sends one query, over TCP when the UDP answer is truncated,
// retrying once on a timeout (BR §4.2.2.1: a failed lookup is retried),
// and turns an unusable answer into a LookupError.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	typ := dns.TypeToString[qtype]
	if r.Server == "" {
		return nil, &LookupError{Name: name, Type: typ, Problem: "no DNS server: set DCV_DNS_SERVER"}
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true
	m.SetEdns0(4096, true) // DO: the resolver validates and returns signatures
	var in *dns.Msg
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		in, err = r.once(ctx, m, "udp")
		if err == nil && in.Truncated {
			in, err = r.once(ctx, m, "tcp")
		}
		if err == nil || ctx.Err() != nil || !isTimeout(err) {
			break
		}
	}
	if err != nil {
		problem := "no answer from " + r.Server + ": " + err.Error()
		if isTimeout(err) || ctx.Err() != nil {
			problem = "no answer from " + r.Server + " in time (timeout)"
		}
		return nil, &LookupError{Name: name, Type: typ, Problem: problem}
	}
	switch in.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeServerFailure:
		return nil, &LookupError{Name: name, Type: typ, Problem: "SERVFAIL: the resolver has no valid answer (a DNSSEC validation failure — bogus — or failing servers)"}
	default:
		return nil, &LookupError{Name: name, Type: typ, Problem: dns.RcodeToString[in.Rcode]}
	}
	if r.Strict && !in.AuthenticatedData && signed(in) {
		return nil, &LookupError{Name: name, Type: typ, Problem: "the answer is signed but was not validated (no AD): DCV_DNS_SERVER must be a validating resolver"}
	}
	return in, nil
}

func (r *Resolver) once(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: r.Timeout}
	in, _, err := c.ExchangeContext(qctx, m, r.Server)
	return in, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// signed reports whether an answer carries DNSSEC signatures.
func signed(m *dns.Msg) bool {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeRRSIG {
				return true
			}
		}
	}
	return false
}

// TXT returns the TXT values at name (each record's strings joined) and
// their DNSSEC state.
func (r *Resolver) TXT(ctx context.Context, name string) (values []string, security string, err error) {
	res, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, "", err
	}
	for _, rr := range res.records {
		values = append(values, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return values, res.security(), nil
}

// CAA returns the CAA RRset at name (following aliases) and its DNSSEC
// state.
func (r *Resolver) CAA(ctx context.Context, name string) ([]domain.CAARecord, string, error) {
	res, err := r.lookup(ctx, name, dns.TypeCAA)
	if err != nil {
		return nil, "", err
	}
	var out []domain.CAARecord
	for _, rr := range res.records {
		c := rr.(*dns.CAA)
		out = append(out, domain.CAARecord{Flag: c.Flag, Tag: c.Tag, Value: c.Value})
	}
	return out, res.security(), nil
}

// RelevantCAA finds the relevant CAA RRset of a name (RFC 8659 §3): the
// CAA RRset of the name itself (a wildcard's base), else of its parent,
// and so on up to the top-level domain, the first that is not empty.
// Each lookup follows aliases as DNS resolution does. A failed lookup on
// the way fails the whole search: records could be hiding behind it.
// security is the weakest DNSSEC state of the lookups made.
func (r *Resolver) RelevantCAA(ctx context.Context, name string) (set []domain.CAARecord, foundAt, security string, err error) {
	security = domain.DNSSECSecure
	for cur := domain.BaseDomain(strings.TrimSuffix(strings.ToLower(name), ".")); cur != ""; {
		rrs, sec, err := r.CAA(ctx, cur)
		if err != nil {
			return nil, cur, "", err
		}
		security = weaker(security, sec)
		if len(rrs) > 0 {
			return rrs, cur, security, nil
		}
		_, parent, ok := strings.Cut(cur, ".")
		if !ok {
			break
		}
		cur = parent
	}
	return nil, "", security, nil
}

// weaker is the weaker of two DNSSEC states.
func weaker(a, b string) string {
	rank := map[string]int{domain.DNSSECSecure: 2, domain.DNSSECUnvalidated: 1, domain.DNSSECInsecure: 0}
	if rank[b] < rank[a] {
		return b
	}
	return a
}

// Addrs resolves a host for the HTTP method: its IPv4 addresses, then
// its IPv6 ones, through the same validating resolver.
func (r *Resolver) Addrs(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	var out []netip.Addr
	var firstErr error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		res, err := r.lookup(ctx, host, qtype)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range res.records {
			switch a := rr.(type) {
			case *dns.A:
				if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
					out = append(out, ip)
				}
			case *dns.AAAA:
				if ip, ok := netip.AddrFromSlice(a.AAAA); ok {
					out = append(out, ip)
				}
			}
		}
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, &LookupError{Name: host, Type: "A/AAAA", Problem: "no address"}
	}
	return out, nil
}
