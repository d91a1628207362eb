package api

import (
	"net/http"
	"testing"
)

// SE-3: the client address is the peer unless the peer is a trusted
// proxy; then the right-most untrusted X-Forwarded-For entry.
func TestClientAddr_SE3(t *testing.T) {
	p, err := ParseProxies("10.0.0.0/8, 192.0.2.1, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"198.51.100.4:5555", []string{"203.0.113.1"}, "198.51.100.4"},             // untrusted peer: header ignored
		{"192.0.2.1:80", []string{"203.0.113.1"}, "203.0.113.1"},                   // trusted single address
		{"10.0.0.1:80", []string{"1.2.3.4, 203.0.113.1, 10.9.9.9"}, "203.0.113.1"}, // right-most untrusted
		{"10.0.0.1:80", []string{"1.2.3.4", "203.0.113.1"}, "203.0.113.1"},         // several headers, in order
		{"10.0.0.1:80", nil, "10.0.0.1"},                                           // no header: the proxy
		{"10.0.0.1:80", []string{"garbage"}, "10.0.0.1"},                           // unreadable: stop
		{"[fd00::1]:80", []string{"[2001:db8::1]:4000"}, "2001:db8::1"},            // IPv6 with port
		{"[::ffff:10.0.0.1]:80", []string{"203.0.113.9"}, "203.0.113.9"},           // mapped IPv4 peer
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, h := range c.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		if got := p.ClientAddr(r).String(); got != c.want {
			t.Errorf("peer %s xff %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if _, err := ParseProxies("10.0.0.0/33"); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}
