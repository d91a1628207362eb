package split

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Banner is what `make run-split` prints once every process is ready: the
// same facts as the all-in-one's banner, plus every process.
func (s *Supervisor) Banner() string {
	c := s.Config
	api := s.State.API
	var b strings.Builder
	n := 0
	for _, st := range s.stages {
		n += len(st)
	}
	fmt.Fprintf(&b, "\ncertlife platform is up in split mode (%d processes; one that dies is restarted)\n\n", n)
	fmt.Fprintf(&b, "  API            %s   (reverse proxy over every replica; OpenAPI: %s/v1/openapi.json)\n", api, api)
	fmt.Fprintf(&b, "  metrics        %s/metrics (proxy); each service's own under \"processes\" below\n", api)
	fmt.Fprintf(&b, "  NATS           %s\n", c.NatsURL)
	fmt.Fprintf(&b, "                 (%d-node JetStream cluster, streams with %d replicas, storage %s)\n", NATSNodes, c.NatsReplicas, filepath.Join(s.dir, "nats-N"))
	fmt.Fprintf(&b, "  Postgres       %s\n", redact(c.DatabaseURL))
	if s.OpsToken != "" {
		fmt.Fprintf(&b, "  ops token      %s   (role admin; kept in %s; Authorization: Bearer …)\n", s.OpsToken, filepath.Join(c.DataDir, "ops-token"))
	} else {
		fmt.Fprintf(&b, "  ops tokens     from OPS_TOKENS\n")
	}
	if s.webhookSecret != "" {
		fmt.Fprintf(&b, "  webhook secret in %s\n", s.webhookSecret)
	} else {
		fmt.Fprintf(&b, "  webhook secret from WEBHOOK_SECRET\n")
	}
	if s.State.MailDir != "" {
		fmt.Fprintf(&b, "  mail           every message lands as .eml in %s (SMTP sink at %s)\n", s.State.MailDir, c.SMTPAddr)
	} else {
		fmt.Fprintf(&b, "  mail           sent to %s\n", c.SMTPAddr)
	}
	fmt.Fprintf(&b, "  CA             %s/ca/root.pem  CRL: %s/crl/ica1.crl  (files in %s)\n", api, api, c.CADir)
	fmt.Fprintf(&b, "  cancel window  %s   auto-approve reviews: %v\n", c.CancelWindow, c.ReviewAutoApprove)
	fmt.Fprintf(&b, "  processes      PIDs in %s/<name>.pid, logs in %s/<name>.log, all in %s\n",
		s.runDir, filepath.Join(s.dir, "log"), filepath.Join(s.runDir, "split.json"))
	for _, st := range s.stages {
		for _, p := range st {
			where := p.Addr
			switch {
			case strings.HasPrefix(p.Name, "nats-"):
				where = "nats://" + p.Addr + "   monitor " + strings.TrimSuffix(p.Health, "/healthz")
			case p.Name == "mailsink":
				where = "smtp://" + p.Addr
			case p.Metrics != "":
				where = "http://" + p.Addr + "   metrics " + p.Metrics
			}
			fmt.Fprintf(&b, "    %-12s pid %-7d %s\n", p.Name, p.PID(), where)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// redact hides a password in a database URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	return raw
}
