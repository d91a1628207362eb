package testenv

import (
	"crypto"
	"encoding/base64"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// ZoneKind is how a test zone is served.
type ZoneKind int

const (
	// Unsigned zones answer without DNSSEC: a validating resolver calls
	// their answers insecure (VA-8: accepted as unsigned).
	Unsigned ZoneKind = iota
	// Signed zones are signed online with a key of their own; with the
	// zone's TrustAnchor configured, a validating resolver sets AD.
	Signed
	// Bogus zones are signed like Signed ones, but every signature over
	// data other than the DNSKEY RRset is broken: a validating resolver
	// answers SERVFAIL.
	Bogus
)

// TTL of every record a test zone serves: short, so that a resolver
// never answers a test from stale cache for long.
const testTTL = 1

// DNSServer is a real authoritative DNS server (miekg/dns) on a loopback
// port, UDP and TCP, for tests of DNS-based validation (VA-2, VA-4, VA-8).
// It serves the zones added to it; records can be changed while it runs.
// Signed zones are signed online, negative answers proven by "black lies"
// NSEC records (owner = the name asked, next = the name's immediate
// successor), as some large operators serve them.
type DNSServer struct {
	// Addr is host:port of the server.
	Addr string

	mu      sync.RWMutex
	zones   map[string]*Zone
	queries int
	servers []*dns.Server
}

// Zone is one zone of a DNSServer.
type Zone struct {
	Origin string
	Kind   ZoneKind

	srv  *DNSServer
	key  *dns.DNSKEY
	priv crypto.Signer
	// rrs: owner name (lower case, fully qualified) → type → records.
	rrs map[string]map[uint16][]dns.RR
}

// StartDNS starts an authoritative server on 127.0.0.1 and stops it
// when the test ends.
func StartDNS(t testing.TB) *DNSServer { return StartDNSOn(t, "127.0.0.1") }

// StartDNSOn starts an authoritative server on ip (any 127.0.0.0/8
// address works on Linux).
func StartDNSOn(t testing.TB, ip string) *DNSServer {
	t.Helper()
	s := &DNSServer{zones: map[string]*Zone{}}
	pc, ln := listenPair(t, ip)
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	for _, srv := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("testenv: dns server did not start")
		}
		s.servers = append(s.servers, srv)
	}
	t.Cleanup(func() {
		for _, srv := range s.servers {
			_ = srv.Shutdown()
		}
	})
	return s
}

// AddZone adds a zone with its SOA and NS records (and, signed, its
// DNSKEY).
func (s *DNSServer) AddZone(t testing.TB, origin string, kind ZoneKind) *Zone {
	t.Helper()
	origin = canonical(origin)
	z := &Zone{Origin: origin, Kind: kind, srv: s, rrs: map[string]map[uint16][]dns.RR{}}
	z.add(mustRR(t, fmt.Sprintf("%s %d IN SOA ns.%s hostmaster.%s 1 3600 600 86400 %d", origin, testTTL, origin, origin, testTTL)))
	z.add(mustRR(t, fmt.Sprintf("%s %d IN NS ns.%s", origin, testTTL, origin)))
	if kind != Unsigned {
		k := &dns.DNSKEY{
			Hdr:      dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: testTTL},
			Flags:    257, // a key-signing key that also signs the zone
			Protocol: 3, Algorithm: dns.ECDSAP256SHA256,
		}
		priv, err := k.Generate(256)
		if err != nil {
			t.Fatalf("testenv: dnssec key: %v", err)
		}
		z.key, z.priv = k, priv.(crypto.Signer)
		z.add(k)
	}
	s.mu.Lock()
	s.zones[origin] = z
	s.mu.Unlock()
	return z
}

// TrustAnchor is the zone's DS record in presentation format, for a
// resolver's trust-anchor setting ("" for an unsigned zone).
func (z *Zone) TrustAnchor() string {
	if z.key == nil {
		return ""
	}
	return z.key.ToDS(dns.SHA256).String()
}

// TrustAnchors are the trust anchors of every signed or bogus zone.
func (s *DNSServer) TrustAnchors() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, z := range s.zones {
		if a := z.TrustAnchor(); a != "" {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// topZones are the origins not below another zone of the server.
func (s *DNSServer) topZones() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for origin := range s.zones {
		if s.zoneForLocked(origin, true) == nil {
			out = append(out, origin)
		}
	}
	slices.Sort(out)
	return out
}

// Queries is how many queries the server has answered.
func (s *DNSServer) Queries() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.queries
}

// Add adds records given in zone-file syntax with fully qualified names
// ("www.example.test. IN TXT \"v\""); a record's name picks its zone.
func (s *DNSServer) Add(t testing.TB, records ...string) {
	t.Helper()
	for _, text := range records {
		rr := mustRR(t, text)
		rr.Header().Ttl = testTTL
		z := s.zoneFor(rr.Header().Name)
		if z == nil {
			t.Fatalf("testenv: dns: no zone for %s", rr.Header().Name)
		}
		s.mu.Lock()
		z.add(rr)
		s.mu.Unlock()
	}
}

// Set replaces the records of one name and type with the given ones
// (none = delete them).
func (s *DNSServer) Set(t testing.TB, name string, qtype uint16, records ...string) {
	t.Helper()
	name = canonical(name)
	z := s.zoneFor(name)
	if z == nil {
		t.Fatalf("testenv: dns: no zone for %s", name)
	}
	s.mu.Lock()
	delete(z.rrs[name], qtype)
	s.mu.Unlock()
	s.Add(t, records...)
}

// TXT sets the TXT records of name: one record per value.
func (s *DNSServer) TXT(t testing.TB, name string, values ...string) {
	t.Helper()
	var recs []string
	for _, v := range values {
		recs = append(recs, fmt.Sprintf("%s IN TXT %q", canonical(name), v))
	}
	s.Set(t, name, dns.TypeTXT, recs...)
}

// CAA sets the CAA records of name, each "flag tag value" as in a zone
// file (`0 issue "ca.example"`).
func (s *DNSServer) CAA(t testing.TB, name string, records ...string) {
	t.Helper()
	var recs []string
	for _, r := range records {
		recs = append(recs, canonical(name)+" IN CAA "+r)
	}
	s.Set(t, name, dns.TypeCAA, recs...)
}

// A sets the A records of name.
func (s *DNSServer) A(t testing.TB, name string, ips ...string) {
	t.Helper()
	var recs []string
	for _, ip := range ips {
		recs = append(recs, canonical(name)+" IN A "+ip)
	}
	s.Set(t, name, dns.TypeA, recs...)
}

// CNAME makes name an alias of target.
func (s *DNSServer) CNAME(t testing.TB, name, target string) {
	t.Helper()
	s.Set(t, name, dns.TypeCNAME, canonical(name)+" IN CNAME "+canonical(target))
}

func (z *Zone) add(rr dns.RR) {
	name := canonical(rr.Header().Name)
	rr.Header().Name = name
	if z.rrs[name] == nil {
		z.rrs[name] = map[uint16][]dns.RR{}
	}
	z.rrs[name][rr.Header().Rrtype] = append(z.rrs[name][rr.Header().Rrtype], rr)
}

func canonical(name string) string { return strings.ToLower(dns.Fqdn(name)) }

func mustRR(t testing.TB, text string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(text)
	if err != nil || rr == nil {
		t.Fatalf("testenv: dns record %q: %v", text, err)
	}
	return rr
}

// zoneFor is the zone of name: the longest origin it is in.
func (s *DNSServer) zoneFor(name string) *Zone {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.zoneForLocked(canonical(name), false)
}

// zoneForLocked: with parent set, a zone's own origin belongs to the zone
// above it (where a DS record lives).
func (s *DNSServer) zoneForLocked(name string, parent bool) *Zone {
	var best *Zone
	for origin, z := range s.zones {
		if !dns.IsSubDomain(origin, name) || (parent && origin == name) {
			continue
		}
		if best == nil || dns.CountLabel(origin) > dns.CountLabel(best.Origin) {
			best = z
		}
	}
	return best
}

// ServeDNS answers one query authoritatively.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s.mu.Lock()
	s.queries++
	s.mu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := new(dns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
		m.SetEdns0(4096, do)
	}
	q := r.Question[0]
	name := canonical(q.Name)
	z := s.zoneForLocked(name, q.Qtype == dns.TypeDS)
	if z == nil {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	// Follow aliases inside the server's zones, as an authoritative
	// server does for in-zone targets.
	for hop := 0; hop < 8; hop++ {
		if set := z.rrs[name][q.Qtype]; len(set) > 0 {
			m.Answer = append(m.Answer, z.signed(set, do)...)
			_ = w.WriteMsg(m)
			return
		}
		cname := z.rrs[name][dns.TypeCNAME]
		if len(cname) == 0 || q.Qtype == dns.TypeCNAME {
			break
		}
		m.Answer = append(m.Answer, z.signed(cname, do)...)
		name = canonical(cname[0].(*dns.CNAME).Target)
		if z = s.zoneForLocked(name, false); z == nil {
			_ = w.WriteMsg(m) // the target is elsewhere: the resolver follows it
			return
		}
	}
	z.negative(m, name, do)
	_ = w.WriteMsg(m)
}

// negative fills in a NODATA or NXDOMAIN answer for name.
func (z *Zone) negative(m *dns.Msg, name string, do bool) {
	m.Ns = append(m.Ns, z.signed(z.rrs[z.Origin][dns.TypeSOA], do)...)
	if z.Kind == Unsigned {
		if !z.exists(name) && len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		return
	}
	// Signed: NODATA proven by an NSEC at the name itself listing only
	// the types it has ("black lies": a missing name is answered as an
	// empty one, which needs no zone walk).
	types := []uint16{dns.TypeNSEC, dns.TypeRRSIG}
	for t := range z.rrs[name] {
		types = append(types, t)
	}
	slices.Sort(types)
	nsec := &dns.NSEC{
		Hdr:        dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: testTTL},
		NextDomain: `\000.` + name,
		TypeBitMap: types,
	}
	m.Ns = append(m.Ns, z.signed([]dns.RR{nsec}, do)...)
}

// exists reports whether name has records or names below it.
func (z *Zone) exists(name string) bool {
	if len(z.rrs[name]) > 0 {
		return true
	}
	for owner := range z.rrs {
		if owner != name && dns.IsSubDomain(name, owner) {
			return true
		}
	}
	return false
}

// signed returns set and, for a signed zone asked with DO, its RRSIG
// (broken for a bogus zone, except over the DNSKEY RRset).
func (z *Zone) signed(set []dns.RR, do bool) []dns.RR {
	out := slices.Clone(set)
	if z.key == nil || !do || len(set) == 0 {
		return out
	}
	now := time.Now()
	sig := &dns.RRSIG{
		Hdr:        dns.RR_Header{Ttl: set[0].Header().Ttl},
		Algorithm:  z.key.Algorithm,
		KeyTag:     z.key.KeyTag(),
		SignerName: z.Origin,
		Inception:  uint32(now.Add(-time.Hour).Unix()),
		Expiration: uint32(now.Add(24 * time.Hour).Unix()),
	}
	if err := sig.Sign(z.priv, set); err != nil {
		panic("testenv: dns: sign: " + err.Error())
	}
	sig.Hdr.Ttl = set[0].Header().Ttl
	if z.Kind == Bogus && set[0].Header().Rrtype != dns.TypeDNSKEY {
		raw, _ := base64.StdEncoding.DecodeString(sig.Signature)
		raw[len(raw)-1] ^= 0xff
		sig.Signature = base64.StdEncoding.EncodeToString(raw)
	}
	return append(out, sig)
}

// BlackholeDNS is a UDP and TCP "DNS server" that never answers: the
// timeout case (VA-4: no answer is never permission). It returns its
// address and stops when the test ends.
func BlackholeDNS(t testing.TB) string {
	t.Helper()
	pc, ln := listenPair(t, "127.0.0.1")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		_ = ln.Close()
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return pc.LocalAddr().String()
}

// listenPair listens on one port of ip for both UDP and TCP, as a DNS
// server does.
func listenPair(t testing.TB, ip string) (net.PacketConn, net.Listener) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("testenv: dns: %v", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		_ = pc.Close()
		if attempt > 50 {
			t.Fatalf("testenv: dns: no port free for both UDP and TCP: %v", err)
		}
	}
}
