package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/events"
)

// DeadLetter is one message in the dead-letter stream, as operators see it.
type DeadLetter struct {
	Seq        uint64          `json:"id"`
	At         time.Time       `json:"at"`
	Consumer   string          `json:"consumer"`
	Subject    string          `json:"subject"`
	Error      string          `json:"error"`
	Stack      string          `json:"stack,omitempty"` // where a handler panicked
	Deliveries int             `json:"deliveries"`
	Failures   int             `json:"failures"` // counted failures (outages are not counted)
	StreamSeq  uint64          `json:"stream_seq"`
	StoredAt   time.Time       `json:"stored_at"` // when the event was first stored
	Event      json.RawMessage `json:"event,omitempty"`
}

// maxDeliveriesAdvisory is the part of the server's advisory we use.
type maxDeliveriesAdvisory struct {
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

// ListDeadLetters returns up to limit dead letters, oldest first.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, limit int) ([]DeadLetter, error) {
	stream, err := js.Stream(ctx, events.DeadLetterStream)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(out) < limit; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		dl, err := toDeadLetter(ctx, js, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

func toDeadLetter(ctx context.Context, js jetstream.JetStream, raw *jetstream.RawStreamMsg) (DeadLetter, error) {
	dl := DeadLetter{Seq: raw.Sequence, At: raw.Time}
	if strings.HasPrefix(raw.Subject, "$JS.EVENT.ADVISORY.") {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(raw.Data, &adv); err != nil {
			return dl, err
		}
		dl.Consumer, dl.StreamSeq, dl.Deliveries = adv.Consumer, adv.StreamSeq, adv.Deliveries
		dl.Error = "maximum deliveries reached without an acknowledgement"
		dl.StoredAt = raw.Time
		if orig, err := getEvent(ctx, js, adv.StreamSeq); err == nil {
			dl.Subject, dl.Event, dl.StoredAt = orig.Subject, orig.Data, orig.Time
		}
		return dl, nil
	}
	dl.Consumer = raw.Header.Get(HeaderConsumer)
	dl.Subject = raw.Header.Get(HeaderOriginalSubject)
	dl.Error = raw.Header.Get(HeaderError)
	dl.Stack = raw.Header.Get(HeaderStack)
	dl.Deliveries, _ = strconv.Atoi(raw.Header.Get(HeaderDeliveries))
	dl.Failures, _ = strconv.Atoi(raw.Header.Get(HeaderFailures))
	dl.StreamSeq, _ = strconv.ParseUint(raw.Header.Get(HeaderStreamSeq), 10, 64)
	dl.Event = raw.Data
	if raw.Header.Get(HeaderEventOmitted) != "" {
		if orig, err := getEvent(ctx, js, dl.StreamSeq); err == nil {
			dl.Event = orig.Data
		}
	}
	// Before the header existed, the dead letter's own time is the best
	// bound known (the original was stored earlier).
	dl.StoredAt = raw.Time
	if t, err := time.Parse(time.RFC3339Nano, raw.Header.Get(HeaderStoredAt)); err == nil {
		dl.StoredAt = t
	}
	return dl, nil
}

func getEvent(ctx context.Context, js jetstream.JetStream, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, events.Stream)
	if err != nil {
		return nil, err
	}
	return s.GetMsg(ctx, seq)
}

// ErrNoDeadLetter: no dead letter with that ID.
var ErrNoDeadLetter = errors.New("no such dead letter")

// ErrOriginalGone: the dead letter is an advisory whose event has aged
// out of the event stream; there is nothing left to replay.
var ErrOriginalGone = errors.New("the original event is no longer in the stream")

// ErrReplayTooOld: the event was first stored more than ReplayHorizon ago;
// a copy published now might outlive the inbox rows that would catch it.
var ErrReplayTooOld = fmt.Errorf("the event is older than the replay horizon (%s): the consumers' inboxes may no longer recognize it", ReplayHorizon)

// ReplayDeadLetter publishes the dead letter's event again on its original
// subject and removes it from the dead-letter stream. Consumers that had
// already handled the event skip it through their inbox; the one that
// failed gets it again. An event first stored more than ReplayHorizon ago
// is refused (ErrReplayTooOld). Ages are the stream's, in real time.
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	stream, err := js.Stream(ctx, events.DeadLetterStream)
	if err != nil {
		return err
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrNoDeadLetter
	}
	if err != nil {
		return err
	}
	dl, err := toDeadLetter(ctx, js, raw)
	if err != nil {
		return err
	}
	if dl.Subject == "" || len(dl.Event) == 0 {
		return fmt.Errorf("dead letter %d: %w", seq, ErrOriginalGone)
	}
	if time.Since(dl.StoredAt) > ReplayHorizon {
		return fmt.Errorf("dead letter %d: %w", seq, ErrReplayTooOld)
	}
	msg := nats.NewMsg(dl.Subject)
	msg.Data = dl.Event
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("replay-%d", seq))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return err
	}
	return stream.DeleteMsg(ctx, seq)
}
