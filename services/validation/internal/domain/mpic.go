package domain

import (
	"fmt"
	"regexp"
	"strings"
)

// Agent is a remote network perspective: a validation-agent process,
// reached by its name, in a region (VA-7).
type Agent struct {
	Name   string `json:"name"`
	Region string `json:"region"`
}

var agentName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidAgentName reports whether s can name an agent: it is a NATS
// subject token, so lower-case letters, digits, '-' and '_'.
func ValidAgentName(s string) bool { return agentName.MatchString(s) }

// ParseAgents reads MPIC_AGENTS: "name@region,name@region,…".
func ParseAgents(spec string) ([]Agent, error) {
	var out []Agent
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, region, ok := strings.Cut(item, "@")
		if !ok || !ValidAgentName(name) || strings.TrimSpace(region) == "" {
			return nil, fmt.Errorf("MPIC_AGENTS: %q is not name@region (name: lower-case letters, digits, - and _)", item)
		}
		if seen[name] {
			return nil, fmt.Errorf("MPIC_AGENTS: %s is listed twice", name)
		}
		seen[name] = true
		out = append(out, Agent{Name: name, Region: strings.TrimSpace(region)})
	}
	return out, nil
}

// Quorum is the multi-perspective configuration (VA-7, BR 3.2.2.9).
type Quorum struct {
	// Perspectives is MPIC_PERSPECTIVES: the remote perspectives required.
	Perspectives int
	// AllowedFailures is MPIC_QUORUM_ALLOWED_FAILURES.
	AllowedFailures int
	// Agents are the remote perspectives asked, every one of them.
	Agents []Agent
}

// MinPerspectives is the BRs' minimum of remote perspectives from
// 2026-12-15 (BR 3.2.2.9).
const MinPerspectives = 5

// MinRegions is the minimum of distinct regions the corroborating remote
// perspectives must fall in (BR 3.2.2.9: two RIR service regions).
const MinRegions = 2

// MaxNonCorroborations is the BR 3.2.2.9 quorum table: with 2 to 5
// remote perspectives 1 may disagree, with 6 or more 2.
func MaxNonCorroborations(remotes int) int {
	switch {
	case remotes >= 6:
		return 2
	case remotes >= 2:
		return 1
	}
	return 0
}

// Configured reports whether any remote perspective is configured.
func (q Quorum) Configured() bool { return len(q.Agents) > 0 }

// Validate refuses a configuration weaker than the BRs: fewer than 5
// remote perspectives required, more non-corroborations allowed than the
// quorum table allows for the perspectives asked, and — once agents are
// named — fewer agents than MPIC_PERSPECTIVES or agents in fewer than 2
// regions. (With no agent named, every check fails instead: see
// Corroborate.)
func (q Quorum) Validate() error {
	var problems []string
	if q.Perspectives < MinPerspectives {
		problems = append(problems, fmt.Sprintf("MPIC_PERSPECTIVES=%d: the TLS BRs require at least %d remote perspectives", q.Perspectives, MinPerspectives))
	}
	asked := max(q.Perspectives, len(q.Agents))
	if q.AllowedFailures < 0 {
		problems = append(problems, "MPIC_QUORUM_ALLOWED_FAILURES must not be negative")
	} else if m := MaxNonCorroborations(asked); q.AllowedFailures > m {
		problems = append(problems, fmt.Sprintf("MPIC_QUORUM_ALLOWED_FAILURES=%d: with %d remote perspectives the TLS BRs allow at most %d", q.AllowedFailures, asked, m))
	}
	if q.Configured() {
		if len(q.Agents) < q.Perspectives {
			problems = append(problems, fmt.Sprintf("MPIC_AGENTS names %d agents, fewer than MPIC_PERSPECTIVES=%d", len(q.Agents), q.Perspectives))
		}
		if r := len(q.regions()); r < MinRegions {
			problems = append(problems, fmt.Sprintf("MPIC_AGENTS are in %d region(s): the TLS BRs require at least %d", r, MinRegions))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("multi-perspective corroboration weaker than the TLS BRs (VA-7): %s", strings.Join(problems, "; "))
	}
	return nil
}

func (q Quorum) regions() map[string]bool {
	out := map[string]bool{}
	for _, a := range q.Agents {
		out[a.Region] = true
	}
	return out
}

// Verdict is the outcome of corroboration.
type Verdict struct {
	Corroborated bool
	// Remotes are the remote observations, each marked corroborating or not.
	Remotes []Observation
	// Disagreeing are the remote observations that did not corroborate.
	Disagreeing []Observation
	Reason      string
}

// Corroborate applies the quorum to the remote observations of a check
// whose primary determination passed: a remote corroborates when it made
// the same determination (found the same value; saw CAA permit). It
// passes when at most AllowedFailures remotes did not corroborate and the
// corroborating ones are in at least MinRegions regions.
func (q Quorum) Corroborate(primary Observation, remotes []Observation) Verdict {
	v := Verdict{}
	regions := map[string]bool{}
	agreeing := 0
	for _, o := range remotes {
		ok := primary.Passed() && o.Passed() && o.Outcome == primary.Outcome
		o.Corroborates = &ok
		if ok {
			agreeing++
			regions[o.Region] = true
		} else {
			v.Disagreeing = append(v.Disagreeing, o)
		}
		v.Remotes = append(v.Remotes, o)
	}
	switch {
	case !q.Configured():
		v.Reason = "no remote perspective is configured (MPIC_AGENTS): nothing can corroborate the primary perspective (VA-7)"
	case !primary.Passed():
		v.Reason = "the primary perspective's determination was negative"
	case len(v.Disagreeing) > q.AllowedFailures:
		names := make([]string, 0, len(v.Disagreeing))
		for _, o := range v.Disagreeing {
			names = append(names, o.Perspective)
		}
		v.Reason = fmt.Sprintf("corroborated by %d of %d remote perspectives; at most %d may disagree, %d did: %s",
			agreeing, len(remotes), q.AllowedFailures, len(v.Disagreeing), strings.Join(names, ", "))
	case len(regions) < MinRegions:
		v.Reason = fmt.Sprintf("the corroborating remote perspectives are in %d region(s); at least %d are required", len(regions), MinRegions)
	default:
		v.Corroborated = true
	}
	return v
}
