package dcv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// Remote asks the remote perspectives (VA-7): every agent at once, each
// with the same deadline. An agent that does not answer in time — or is
// not connected at all — is observed as "no_answer", which does not
// corroborate.
type Remote struct {
	NC      *nats.Conn
	Agents  []domain.Agent
	Timeout time.Duration
}

// Ask sends the check to every agent and returns one observation per
// agent, in the configured order.
func (r *Remote) Ask(ctx context.Context, checkID string, req domain.CheckRequest) []domain.Observation {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	raw, err := json.Marshal(ToWire(checkID, req, deadline))
	out := make([]domain.Observation, len(r.Agents))
	var wg sync.WaitGroup
	for i, a := range r.Agents {
		out[i] = domain.Observation{Perspective: a.Name, Region: a.Region}
		if err != nil {
			out[i].Outcome, out[i].Detail = domain.OutcomeError, err.Error()
			continue
		}
		wg.Add(1)
		go func(o *domain.Observation, a domain.Agent) {
			defer wg.Done()
			r.ask(ctx, o, a, checkID, raw)
		}(&out[i], a)
	}
	wg.Wait()
	return out
}

func (r *Remote) ask(ctx context.Context, o *domain.Observation, a domain.Agent, checkID string, raw []byte) {
	m, err := r.NC.RequestWithContext(ctx, events.AgentCheckSubject(a.Name), raw)
	if err != nil {
		o.Outcome = domain.OutcomeNoAnswer
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			o.Detail = "the agent is not connected"
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			o.Detail = fmt.Sprintf("no answer within %s", r.Timeout)
		default:
			o.Detail = err.Error()
		}
		return
	}
	var resp events.PerspectiveCheckResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		o.Outcome, o.Detail = domain.OutcomeError, "malformed answer"
		return
	}
	if resp.Agent != a.Name || resp.CheckID != checkID {
		o.Outcome, o.Detail = domain.OutcomeError, fmt.Sprintf("answered as %s for check %s", resp.Agent, resp.CheckID)
		return
	}
	o.Outcome, o.DNSSEC, o.Seen, o.Detail = resp.Outcome, resp.DNSSEC, resp.Seen, resp.Detail
}
