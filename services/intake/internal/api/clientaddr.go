package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies whose X-Forwarded-For is believed
// (TRUSTED_PROXIES, SE-3).
type Proxies struct{ nets []netip.Prefix }

// ParseProxies reads TRUSTED_PROXIES: CIDRs or single addresses,
// comma-separated.
func ParseProxies(s string) (Proxies, error) {
	var p Proxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			a, err := netip.ParseAddr(part)
			if err != nil {
				return p, fmt.Errorf("TRUSTED_PROXIES: %q is not an address or CIDR", part)
			}
			part = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()).String()
		}
		n, err := netip.ParsePrefix(part)
		if err != nil {
			return p, fmt.Errorf("TRUSTED_PROXIES: %q is not an address or CIDR", part)
		}
		p.nets = append(p.nets, n.Masked())
	}
	return p, nil
}

func (p Proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the client's address: the peer, or — when the peer is a
// trusted proxy — the right-most X-Forwarded-For entry that is not one,
// walking from the right. Entries left of the first untrusted hop were
// written by the client and are ignored; an unreadable entry stops the
// walk at the proxy that passed it on.
func (p Proxies) ClientAddr(r *http.Request) netip.Addr {
	cur := parseHost(r.RemoteAddr)
	if !cur.IsValid() || !p.trusted(cur) {
		return cur
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0 && p.trusted(cur); i-- {
		next := parseHost(strings.TrimSpace(hops[i]))
		if !next.IsValid() {
			break
		}
		cur = next
	}
	return cur.Unmap()
}

// parseHost reads "ip", "ip:port" or "[ipv6]:port".
func parseHost(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a
		}
	}
	return netip.Addr{}
}
