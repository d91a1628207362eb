package dcv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// Agent answers check requests as one remote perspective (VA-7): a
// validation-agent process, with its own resolver and no database.
type Agent struct {
	Name, Region string
	Checker      *Checker
	Log          *slog.Logger
	// Concurrency bounds the checks run at once (default 16).
	Concurrency int
}

// Serve subscribes the agent to its subject. Replicas of one agent (the
// same name) share the work through a queue group. Checks run
// concurrently; the subscription ends with the connection or Unsubscribe.
func (a *Agent) Serve(nc *nats.Conn) (*nats.Subscription, error) {
	if !domain.ValidAgentName(a.Name) {
		return nil, fmt.Errorf("AGENT_NAME %q: lower-case letters, digits, - and _ only", a.Name)
	}
	if a.Region == "" {
		return nil, fmt.Errorf("AGENT_REGION is required")
	}
	n := a.Concurrency
	if n <= 0 {
		n = 16
	}
	slots := make(chan struct{}, n)
	subject := events.AgentCheckSubject(a.Name)
	return nc.QueueSubscribe(subject, subject, func(m *nats.Msg) {
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			a.handle(m)
		}()
	})
}

func (a *Agent) handle(m *nats.Msg) {
	resp := events.PerspectiveCheckResponse{Agent: a.Name, Region: a.Region}
	defer func() {
		// A panic in a check is the check's error, never the process's end
		// (SE-9).
		if p := recover(); p != nil {
			a.Log.Error("check panicked", "agent", a.Name, "panic", p, "stack", string(debug.Stack()))
			resp.Outcome, resp.Detail, resp.Seen = domain.OutcomeError, "internal error in the agent", nil
			a.respond(m, resp)
		}
	}()
	var req events.PerspectiveCheckRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		resp.Outcome, resp.Detail = domain.OutcomeError, "malformed request"
		a.respond(m, resp)
		return
	}
	resp.CheckID = req.CheckID
	ctx := context.Background()
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	check := FromWire(req)
	if err := check.Validate(); err != nil {
		resp.Outcome, resp.Detail = domain.OutcomeError, "refused: "+err.Error()
		a.respond(m, resp)
		return
	}
	start := time.Now()
	o := a.Checker.Check(ctx, check)
	resp.Outcome, resp.DNSSEC, resp.Seen, resp.Detail = o.Outcome, o.DNSSEC, o.Seen, o.Detail
	a.Log.Info("check", "agent", a.Name, "check", req.CheckID, "kind", req.Kind, "domain", req.Domain,
		"outcome", o.Outcome, "took", time.Since(start).Round(time.Millisecond))
	a.respond(m, resp)
}

func (a *Agent) respond(m *nats.Msg, resp events.PerspectiveCheckResponse) {
	raw, err := json.Marshal(resp)
	if err != nil {
		return
	}
	if err := m.Respond(raw); err != nil {
		a.Log.Warn("respond", "agent", a.Name, "err", err)
	}
}

// ToWire is a check request as sent to the agents.
func ToWire(id string, r domain.CheckRequest, deadline time.Time) events.PerspectiveCheckRequest {
	w := events.PerspectiveCheckRequest{
		CheckID: id, Kind: string(r.Kind), Domain: r.Domain, Names: r.Names, Path: r.Path,
		Expected: r.Expected, Deadline: deadline,
	}
	if r.CAA != nil {
		w.CAA = &events.PerspectiveCAAPolicy{Identities: r.CAA.Identities, AccountURI: r.CAA.AccountURI,
			MethodLabels: r.CAA.MethodLabels, Wildcard: r.CAA.Wildcard}
	}
	return w
}

// FromWire is a received check request.
func FromWire(w events.PerspectiveCheckRequest) domain.CheckRequest {
	r := domain.CheckRequest{Kind: domain.CheckKind(w.Kind), Domain: w.Domain, Names: w.Names, Path: w.Path, Expected: w.Expected}
	if w.CAA != nil {
		r.CAA = &domain.CAAPolicy{Identities: w.CAA.Identities, AccountURI: w.CAA.AccountURI,
			MethodLabels: w.CAA.MethodLabels, Wildcard: w.CAA.Wildcard}
	}
	return r
}
