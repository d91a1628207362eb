package domain

import (
	"strings"
	"testing"
)

func agents(spec string) []Agent {
	a, err := ParseAgents(spec)
	if err != nil {
		panic(err)
	}
	return a
}

// VA-7: the quorum table of TLS BR 3.2.2.9.
func TestQuorumTable_VA7(t *testing.T) {
	for n, want := range map[int]int{0: 0, 1: 0, 2: 1, 5: 1, 6: 2, 9: 2} {
		if got := MaxNonCorroborations(n); got != want {
			t.Errorf("%d perspectives: %d allowed, want %d", n, got, want)
		}
	}
}

// VA-7: a configuration weaker than the BRs is refused, naming why.
func TestQuorumConfigWeakerThanBRRefused_VA7(t *testing.T) {
	five := agents("a@arin,b@arin,c@ripe,d@apnic,e@ripe")
	six := agents("a@arin,b@arin,c@ripe,d@apnic,e@ripe,f@lacnic")
	oneRegion := agents("a@arin,b@arin,c@arin,d@arin,e@arin")
	cases := []struct {
		q   Quorum
		bad string
	}{
		{Quorum{Perspectives: 5, AllowedFailures: 1, Agents: five}, ""},
		{Quorum{Perspectives: 5, AllowedFailures: 0, Agents: five}, ""},
		{Quorum{Perspectives: 6, AllowedFailures: 2, Agents: six}, ""},
		{Quorum{Perspectives: 5, AllowedFailures: 1}, ""}, // none configured: starts, checks fail
		{Quorum{Perspectives: 4, AllowedFailures: 1, Agents: five[:4]}, "at least 5"},
		{Quorum{Perspectives: 3, AllowedFailures: 1}, "at least 5"},
		{Quorum{Perspectives: 5, AllowedFailures: 2, Agents: five}, "allow at most 1"},
		{Quorum{Perspectives: 6, AllowedFailures: 3, Agents: six}, "allow at most 2"},
		{Quorum{Perspectives: 6, AllowedFailures: 1, Agents: five}, "fewer than MPIC_PERSPECTIVES"},
		{Quorum{Perspectives: 5, AllowedFailures: 1, Agents: oneRegion}, "1 region"},
		{Quorum{Perspectives: 5, AllowedFailures: -1, Agents: five}, "negative"},
	}
	for _, c := range cases {
		err := c.q.Validate()
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%+v refused: %v", c.q, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%+v: %v, want refused with %q", c.q, err, c.bad)
		}
	}
	for _, bad := range []string{"a", "a@", "A@arin", "a@arin,a@ripe", "a.b@arin"} {
		if _, err := ParseAgents(bad); err == nil {
			t.Errorf("MPIC_AGENTS=%q accepted", bad)
		}
	}
}

// VA-7: corroboration by quorum: one disagreement of five passes, two
// fail naming both; a perspective that did not answer does not
// corroborate; corroborating perspectives must span two regions.
func TestCorroborate_VA7(t *testing.T) {
	q := Quorum{Perspectives: 5, AllowedFailures: 1, Agents: agents("a@arin,b@arin,c@ripe,d@apnic,e@ripe")}
	primary := Observation{Perspective: "primary", Primary: true, Outcome: OutcomeFound}
	obs := func(outcomes ...string) []Observation {
		var out []Observation
		for i, o := range outcomes {
			out = append(out, Observation{Perspective: q.Agents[i].Name, Region: q.Agents[i].Region, Outcome: o})
		}
		return out
	}
	if v := q.Corroborate(primary, obs("found", "found", "found", "found", "found")); !v.Corroborated {
		t.Errorf("all agree: %s", v.Reason)
	}
	v := q.Corroborate(primary, obs("found", "found", "not_found", "found", "found"))
	if !v.Corroborated || len(v.Disagreeing) != 1 || *v.Remotes[2].Corroborates {
		t.Errorf("one disagrees: %+v", v)
	}
	v = q.Corroborate(primary, obs("found", "found", "not_found", "no_answer", "found"))
	if v.Corroborated || !strings.Contains(v.Reason, "c, d") || len(v.Disagreeing) != 2 {
		t.Errorf("two disagree: %+v", v)
	}
	// Corroborated only in one region: a and b (arin) — c, d, e disagree.
	q0 := q
	q0.AllowedFailures = 3 // (not a valid configuration; isolates the region rule)
	v = q0.Corroborate(primary, obs("found", "found", "error", "error", "no_answer"))
	if v.Corroborated || !strings.Contains(v.Reason, "region") {
		t.Errorf("one region: %+v", v)
	}
	if v := (Quorum{Perspectives: 5}).Corroborate(primary, nil); v.Corroborated || !strings.Contains(v.Reason, "MPIC_AGENTS") {
		t.Errorf("no agents: %+v", v)
	}
	// CAA: remotes must see permission too.
	caa := Observation{Perspective: "primary", Outcome: OutcomeAllowed}
	if v := q.Corroborate(caa, obs("allowed", "allowed", "allowed", "forbidden", "allowed")); !v.Corroborated {
		t.Errorf("caa: %s", v.Reason)
	}
	if v := q.Corroborate(caa, obs("allowed", "forbidden", "allowed", "forbidden", "allowed")); v.Corroborated {
		t.Error("caa with two forbidding remotes corroborated")
	}
}
