// Package testenv gives tests real infrastructure: a fresh Postgres
// database, an embedded NATS JetStream server and an SMTP server that
// records what it receives. Nothing here is a mock.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/bus"
)

// AdminURL is the server the test databases are created on:
// TEST_DATABASE_URL, else the local server.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var dbSeq atomic.Int64

// Database creates an empty database for the test and drops it after.
// It returns its URL.
func Database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("testenv: Postgres at %s: %v (is it running? see .ci/run)", AdminURL(), err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("certlife_t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, dbSeq.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return replaceDB(AdminURL(), name)
}

func replaceDB(url, name string) string {
	base, query, _ := strings.Cut(url, "?")
	i := strings.LastIndex(base, "/")
	if i < len("postgres://") {
		base += "/"
		i = len(base) - 1
	}
	out := base[:i+1] + name
	if query != "" {
		out += "?" + query
	}
	return out
}

// NATS is an embedded JetStream server for one test.
type NATS struct {
	Server *server.Server
	dir    string
}

// StartNATS starts an embedded JetStream server with storage in a temp dir.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{dir: t.TempDir()}
	n.start(t)
	t.Cleanup(func() { n.Server.Shutdown(); n.Server.WaitForShutdown() })
	return n
}

func (n *NATS) start(t testing.TB) {
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: n.dir, Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatalf("testenv: nats: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("testenv: nats did not start")
	}
	n.Server = ns
}

// URL is the client URL.
func (n *NATS) URL() string { return n.Server.ClientURL() }

// Connect returns a client connection with the platform's streams set up.
func (n *NATS) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatalf("testenv: connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.SetupStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Eventually polls cond until it holds or the timeout passes. Tests wait
// on real asynchronous delivery with it; it never asserts on timing.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
