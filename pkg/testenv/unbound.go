package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Unbound is a real validating resolver (Debian's unbound) started for
// one test on a loopback port, with its own configuration: the test's
// authoritative server as the upstream of its zones (stub zones),
// and trust anchors for the test zones (VA-8).
type Unbound struct {
	// Addr is host:port of the resolver.
	Addr string

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process is gone
	mu     sync.Mutex
	stderr bytes.Buffer
}

// RequireTool finds an external program a test needs. Missing, it fails
// the test under CI=true and skips it elsewhere (BRIEF: a CI test whose
// tool is missing fails).
func RequireTool(t testing.TB, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, f := range fallbacks {
		if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
			return f
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv: %s is not installed (CI=true: install it, see .ci/run)", name)
	}
	t.Skipf("testenv: %s is not installed", name)
	return ""
}

// StartUnbound starts unbound resolving every name through upstream,
// validating with upstream's trust anchors, and kills it when the test
// ends. It returns once the resolver answers.
func StartUnbound(t testing.TB, upstream *DNSServer) *Unbound {
	t.Helper()
	bin := RequireTool(t, "unbound", "/usr/sbin/unbound")
	dir := t.TempDir()
	var u *Unbound
	var lastErr error
	// The port is chosen free, then bound by unbound: another process may
	// take it in between, so a failed start is retried on a new port.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: unbound: %v", err)
		}
		u, lastErr = startUnbound(bin, dir, port, upstream)
		if lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("testenv: unbound did not start: %v", lastErr)
	}
	t.Cleanup(func() {
		_ = u.cmd.Process.Kill()
		<-u.exited
		if t.Failed() {
			t.Logf("unbound log:\n%s", u.Log())
		}
	})
	return u
}

// Log is what unbound wrote to stderr so far.
func (u *Unbound) Log() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stderr.String()
}

type lockedWriter struct{ u *Unbound }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.u.mu.Lock()
	defer w.u.mu.Unlock()
	return w.u.stderr.Write(p)
}

func startUnbound(bin, dir string, port int, upstream *DNSServer) (*Unbound, error) {
	host, upPort, err := net.SplitHostPort(upstream.Addr)
	if err != nil {
		return nil, err
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, `server:
	do-daemonize: no
	interface: 127.0.0.1@%d
	access-control: 127.0.0.0/8 allow
	do-ip6: no
	do-not-query-localhost: no
	module-config: "validator iterator"
	val-permissive-mode: no
	chroot: ""
	username: ""
	directory: %q
	pidfile: %q
	use-syslog: no
	logfile: ""
	verbosity: 1
	val-log-level: 2
	num-threads: 1
	so-reuseport: no
	msg-cache-size: 1m
	rrset-cache-size: 1m
	key-cache-size: 1m
	neg-cache-size: 1m
	# Nothing is kept: a test that publishes a record after a lookup
	# sees it at the next one.
	cache-max-ttl: 0
	cache-max-negative-ttl: 0
	val-bogus-ttl: 0
	qname-minimisation: no
	aggressive-nsec: no
	prefetch: no
	target-fetch-policy: "0 0 0 0 0"
	harden-referral-path: no
	trust-anchor-signaling: no
	root-key-sentinel: no
	infra-host-ttl: 1
	infra-keep-probing: yes
	discard-timeout: 0
	wait-limit: 0
	# RFC 6761 reserves test. for testing; unbound answers it locally
	# (NXDOMAIN) unless told not to.
	local-zone: "test." nodefault
`, port, dir, filepath.Join(dir, "unbound.pid"))
	for _, a := range upstream.TrustAnchors() {
		fmt.Fprintf(&conf, "\ttrust-anchor: \"%s\"\n", strings.Join(strings.Fields(a), " "))
	}
	fmt.Fprintf(&conf, "remote-control:\n\tcontrol-enable: no\n")
	// One stub zone per top zone of the server: unbound asks it for every
	// name below. (A stub for the root would make unbound prime the root
	// instead.)
	for _, z := range upstream.topZones() {
		fmt.Fprintf(&conf, "stub-zone:\n\tname: %q\n\tstub-addr: %s@%s\n", z, host, upPort)
	}
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		return nil, err
	}
	u := &Unbound{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	u.cmd = exec.Command(bin, "-d", "-c", path)
	u.cmd.Stdout = lockedWriter{u}
	u.cmd.Stderr = lockedWriter{u}
	if err := u.cmd.Start(); err != nil {
		return nil, err
	}
	u.exited = make(chan struct{})
	go func() { _ = u.cmd.Wait(); close(u.exited) }()
	// Ready once it answers a query, whatever the answer.
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("ready.invalid.", dns.TypeSOA)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-u.exited:
			return nil, fmt.Errorf("unbound exited: %s", u.Log())
		default:
		}
		if _, _, err := c.Exchange(m, u.Addr); err == nil {
			return u, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = u.cmd.Process.Kill()
	<-u.exited
	return nil, fmt.Errorf("unbound did not answer on %s: %s", u.Addr, u.Log())
}

func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = ln.Close()
		if err == nil {
			_ = pc.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free for both UDP and TCP")
}
