package runner

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/services/validation"
)

// DevAgentRegions are the regions of the dev validation agents: BR
// 3.2.2.9 wants the corroborating perspectives in at least two.
var DevAgentRegions = []string{"dev-region-a", "dev-region-b"}

// DevAgents names the dev validation agents (VA-7) when MPIC_AGENTS is
// unset: MPIC_PERSPECTIVES agents (at least 5), alternating between two
// regions, each resolving through DCV_DNS_SERVER with a resolver of its
// own (no shared cache in the process; a dev machine's upstream resolver
// is the one thing they share). It sets cfg.MPICAgents and returns each
// agent's configuration; nil when MPIC_AGENTS names real ones.
func DevAgents(cfg *app.Config) []validation.AgentConfig {
	if strings.TrimSpace(cfg.MPICAgents) != "" {
		return nil
	}
	n := max(cfg.MPICPerspectives, 5)
	var out []validation.AgentConfig
	var spec []string
	for i := 1; i <= n; i++ {
		a := validation.AgentConfig{Name: fmt.Sprintf("dev-agent-%d", i), Region: DevAgentRegions[(i-1)%len(DevAgentRegions)],
			NatsURL: cfg.NatsURL, DNSServer: cfg.DCVDNSServer, HTTPPort: cfg.DCVHTTPPort, Timeout: cfg.DCVTimeout,
			LogLevel: cfg.LogLevel}
		out = append(out, a)
		spec = append(spec, a.Name+"@"+a.Region)
	}
	cfg.MPICAgents = strings.Join(spec, ",")
	return out
}

// startAgents runs the dev validation agents in this process, each with
// its own NATS connection and resolver.
func (p *Platform) startAgents(agents []validation.AgentConfig, log *slog.Logger) error {
	for _, a := range agents {
		nc, err := nats.Connect(p.NATSURL, nats.Name("validation-agent-"+a.Name), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("validation agent %s: %w", a.Name, err)
		}
		p.agentConns = append(p.agentConns, nc)
		if _, err := validation.StartAgent(nc, a, log.With("service", "validation-agent")); err != nil {
			return fmt.Errorf("validation agent %s: %w", a.Name, err)
		}
	}
	return nil
}
