// Package natsnode runs one node of split mode's NATS JetStream cluster as
// a process of its own (`certplatform nats-node`), built from the
// nats-server library the all-in-one already embeds.
package natsnode

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterName names split mode's cluster.
const ClusterName = "certlife"

// Main parses the node's flags and serves until SIGINT or SIGTERM.
func Main(args []string) error {
	fs := flag.NewFlagSet("nats-node", flag.ContinueOnError)
	name := fs.String("name", "", "server name, unique in the cluster (nats-1, …)")
	client := fs.String("client", "127.0.0.1:4222", "client address")
	cluster := fs.String("cluster", "127.0.0.1:6222", "cluster (route) address")
	monitor := fs.String("monitor", "", "HTTP monitoring address (/healthz, /varz, /jsz); empty = none")
	routes := fs.String("routes", "", "comma-separated route URLs of the other nodes (nats://host:port)")
	store := fs.String("store", "", "JetStream storage directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *store == "" {
		return errors.New("nats-node: -name and -store are required")
	}
	opts := &server.Options{
		ServerName: *name,
		JetStream:  true,
		StoreDir:   *store,
		Routes:     server.RoutesFromStr(*routes),
		NoSigs:     true,
		// Explicit routes are retried until the other node answers, so a
		// restarted node rejoins by itself.
		Cluster: server.ClusterOpts{Name: ClusterName},
	}
	var err error
	if opts.Host, opts.Port, err = hostPort(*client); err != nil {
		return err
	}
	if opts.Cluster.Host, opts.Cluster.Port, err = hostPort(*cluster); err != nil {
		return err
	}
	if *monitor != "" {
		if opts.HTTPHost, opts.HTTPPort, err = hostPort(*monitor); err != nil {
			return err
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-node: %w", err)
	}
	ns.ConfigureLogger()
	go ns.Start()
	if !ns.ReadyForConnections(60 * time.Second) {
		ns.Shutdown()
		return errors.New("nats-node: not ready for connections after 60s")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}

func hostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("nats-node: %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("nats-node: %q: %w", addr, err)
	}
	return h, port, nil
}
