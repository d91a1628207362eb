package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// EV-3, OP-2: operators see dead letters with their error through the ops
// API and can replay them; bad requests are problems, never a 500.
func TestDeadLettersOpsAPI_EV3_OP2(t *testing.T) {
	e := startE2E(t, nil, nil)
	if r := e.do("GET", "/ops/v1/dead-letters", nil); r.Status != 401 {
		t.Fatalf("without a token: %d", r.Status)
	}
	var list struct {
		DeadLetters []struct {
			ID       uint64 `json:"id"`
			Consumer string `json:"consumer"`
			Error    string `json:"error"`
		} `json:"dead_letters"`
	}
	r := e.ops("GET", "/ops/v1/dead-letters", nil)
	r.JSON(t, &list)
	if r.Status != 200 || list.DeadLetters == nil || len(list.DeadLetters) != 0 {
		t.Fatalf("empty list: %d %s", r.Status, r.Body)
	}
	// An event of a version newer than the platform knows (EV-1).
	env, _ := events.New(events.PaymentConfirmed{ApplicationID: "app-x", Method: "coupon"}, time.Now(), "")
	env.Version = 9
	raw, _ := env.Marshal()
	nc, err := nats.Connect(e.p.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(context.Background(), events.Subject(env.Type), raw); err != nil {
		t.Fatal(err)
	}
	// Every consumer of PaymentConfirmed dead-letters it once.
	want := consumersOf(t, js, env.Type)
	if want < 2 {
		t.Fatalf("%d consumers of %s", want, env.Type)
	}
	testenv.Eventually(t, 20*time.Second, "a dead letter per consumer", func() bool {
		r := e.ops("GET", "/ops/v1/dead-letters", nil)
		r.JSON(t, &list)
		return len(list.DeadLetters) == want
	})
	for _, dl := range list.DeadLetters {
		if dl.Error == "" || dl.Consumer == "" {
			t.Fatalf("dead letter without its error or consumer: %+v", dl)
		}
	}
	if r := e.ops("POST", "/ops/v1/dead-letters/999999/replay", nil); r.Status != 404 {
		t.Fatalf("unknown dead letter: %d", r.Status)
	}
	if r := e.ops("POST", "/ops/v1/dead-letters/not-a-number/replay", nil); r.Status != 404 {
		t.Fatalf("bad id: %d", r.Status)
	}
	if r := e.ops("POST", "/ops/v1/dead-letters/"+strconv.FormatUint(list.DeadLetters[0].ID, 10)+"/replay", nil); r.Status != 200 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	// Still unknown to this version: dead-lettered again, never lost.
	testenv.Eventually(t, 20*time.Second, "the replayed event dead-lettered again", func() bool {
		r := e.ops("GET", "/ops/v1/dead-letters", nil)
		r.JSON(t, &list)
		return len(list.DeadLetters) >= want
	})
}

// consumersOf counts the durable consumers of the events stream whose
// filter takes events of this type.
func consumersOf(t *testing.T, js jetstream.JetStream, eventType string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	subject, n := events.Subject(eventType), 0
	lister := stream.ListConsumers(ctx)
	for info := range lister.Info() {
		filters := append([]string{info.Config.FilterSubject}, info.Config.FilterSubjects...)
		for _, f := range filters {
			if f == subject || f == events.SubjectPrefix+">" {
				n++
				break
			}
		}
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
