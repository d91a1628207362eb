package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/errs"
)

// Fan-out ops queries. Some ops routes read a table every service keeps in
// its own schema (the audit log, parked timers, …). So that they work the
// same in the all-in-one and in split mode — where the process answering
// HTTP holds only one service — the HTTP handler asks every service over
// NATS request/reply and each answers from its own schema. Services list
// themselves in a JetStream key-value bucket at start; a listed service
// that does not answer is reported, never silently left out.

// ServicesBucket is the key-value bucket of running service names.
const ServicesBucket = "SERVICES"

const opsSubjectPrefix = "rpc.ops."

// OpsQuery answers one fan-out query from the service's own schema.
type OpsQuery func(ctx context.Context, params json.RawMessage) (any, error)

// OpsQueries are the fan-out queries a service answers.
type OpsQueries struct {
	mu sync.Mutex
	m  map[string]OpsQuery
}

// Handle registers q as the answer to op ("audit.list").
func (o *OpsQueries) Handle(op string, q OpsQuery) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]OpsQuery{}
	}
	o.m[op] = q
}

func (o *OpsQueries) get(op string) OpsQuery {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[op]
}

type opsReply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Status int             `json:"status,omitempty"`
	Slug   string          `json:"slug,omitempty"`
}

// auditQueries registers the audit log's list and verify (OP-4).
func auditQueries(d *Deps) {
	d.OpsQueries.Handle("audit.list", func(ctx context.Context, params json.RawMessage) (any, error) {
		var f audit.Filter
		if len(params) > 0 {
			if err := json.Unmarshal(params, &f); err != nil {
				return nil, errs.Malformed("bad audit filter")
			}
		}
		list, err := audit.List(ctx, d.Pool, f)
		if list == nil {
			list = []audit.Entry{}
		}
		return list, err
	})
	d.OpsQueries.Handle("audit.verify", func(ctx context.Context, _ json.RawMessage) (any, error) {
		return audit.Verify(ctx, d.Pool)
	})
}

// serveOps subscribes the service's fan-out queries (queue group: one
// replica answers) and lists the service in the registry.
func serveOps(ctx context.Context, d *Deps) (*nats.Subscription, error) {
	subject := opsSubjectPrefix + d.Name + ".>"
	sub, err := d.NC.QueueSubscribe(subject, opsSubjectPrefix+d.Name, func(m *nats.Msg) {
		op := m.Subject[len(opsSubjectPrefix+d.Name+"."):]
		reply := answerOps(ctx, d.Log, d.OpsQueries.get(op), op, m.Data)
		raw, _ := json.Marshal(reply)
		_ = m.Respond(raw)
	})
	if err != nil {
		return nil, err
	}
	kv, err := servicesKV(ctx, d.JS)
	if err == nil {
		_, err = kv.PutString(ctx, d.Name, d.Name)
	}
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("service registry: %w", err)
	}
	return sub, nil
}

func answerOps(ctx context.Context, log *slog.Logger, q OpsQuery, op string, params []byte) (reply opsReply) {
	if q == nil {
		return opsReply{Error: "unknown query " + op, Status: http.StatusNotFound}
	}
	defer func() {
		if v := recover(); v != nil {
			log.Error("panic in ops query", "op", op, "panic", v, "stack", string(debug.Stack()))
			reply = opsReply{Error: "internal error", Status: http.StatusInternalServerError}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := q(ctx, params)
	if err != nil {
		if e, ok := errs.As(err); ok && e.Kind != errs.KindInternal {
			return opsReply{Error: e.Error(), Status: statusOf(e.Kind), Slug: e.Slug}
		}
		log.Error("ops query failed", "op", op, "err", err)
		return opsReply{Error: "internal error", Status: http.StatusInternalServerError}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return opsReply{Error: "internal error", Status: http.StatusInternalServerError}
	}
	return opsReply{Result: raw}
}

func statusOf(k errs.Kind) int {
	switch k {
	case errs.KindMalformed, errs.KindInvalid:
		return http.StatusBadRequest
	case errs.KindNotFound:
		return http.StatusNotFound
	case errs.KindConflict:
		return http.StatusConflict
	case errs.KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func servicesKV(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, ServicesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ServicesBucket, History: 1})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, ServicesBucket)
		}
	}
	return kv, err
}

// Answer is one service's answer to a fan-out query.
type Answer struct {
	Service string          `json:"service"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   string          `json:"error,omitempty"`
	Status  int             `json:"-"`
	Slug    string          `json:"-"`
}

// FanOut asks every registered service (or only those named) the query op
// with params, in parallel, and returns their answers sorted by service. A
// service that does not answer in time has an Error.
func FanOut(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, op string, params any, only ...string) ([]Answer, error) {
	kv, err := servicesKV(ctx, js)
	if err != nil {
		return nil, errs.Unavailable("", "the service registry cannot be read", 5*time.Second, err)
	}
	names, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, errs.Unavailable("", "the service registry cannot be read", 5*time.Second, err)
	}
	if len(only) > 0 {
		names = slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(only, n) })
	}
	slices.Sort(names)
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	answers := make([]Answer, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = Answer{Service: name}
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			m, err := nc.RequestWithContext(qctx, opsSubjectPrefix+name+"."+op, raw)
			if err != nil {
				answers[i].Error = "did not answer: " + err.Error()
				answers[i].Status = http.StatusServiceUnavailable
				return
			}
			var rep opsReply
			if err := json.Unmarshal(m.Data, &rep); err != nil {
				answers[i].Error = "unreadable answer"
				answers[i].Status = http.StatusBadGateway
				return
			}
			answers[i].Result, answers[i].Error, answers[i].Status, answers[i].Slug = rep.Result, rep.Error, rep.Status, rep.Slug
		}()
	}
	wg.Wait()
	return answers, nil
}
