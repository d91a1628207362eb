package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
)

// EV-1: an envelope carries a UUIDv7 id, type, version, occurred_at,
// subject_id, correlation_id and data; it round-trips.
func TestEnvelopeRoundTrip_EV1(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	env, err := events.New(events.PaymentConfirmed{ApplicationID: "app-1", Method: "coupon"}, now, "corr-1")
	if err != nil {
		t.Fatal(err)
	}
	if env.ID.Version() != 7 || env.Type != "PaymentConfirmed" || env.Version != 1 || env.SubjectID != "app-1" ||
		env.CorrelationID != "corr-1" || !env.OccurredAt.Equal(now) {
		t.Fatalf("envelope %+v", env)
	}
	raw, _ := env.Marshal()
	back, err := events.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := events.Decode[events.PaymentConfirmed](back)
	if err != nil || p.ApplicationID != "app-1" {
		t.Fatalf("%+v %v", p, err)
	}
	if events.Subject(env.Type) != "events.PaymentConfirmed" {
		t.Fatal(events.Subject(env.Type))
	}
}

// EV-1: unknown types, newer versions, bad envelopes and invalid payloads
// are errors the consumer dead-letters.
func TestInvalidEventsAreRefused_EV1(t *testing.T) {
	good, _ := events.New(events.PaymentConfirmed{ApplicationID: "a", Method: "coupon"}, time.Now(), "")
	newer := good
	newer.Version = 2
	rawNewer, _ := newer.Marshal()
	if _, err := events.Parse(rawNewer); !errors.Is(err, events.ErrUnknownVersion) {
		t.Fatalf("newer version: %v", err)
	}
	unknown := good
	unknown.Type = "SomethingElse"
	rawUnknown, _ := unknown.Marshal()
	for name, raw := range map[string][]byte{
		"not json":     []byte("{"),
		"no id":        []byte(`{"type":"PaymentConfirmed","version":1,"occurred_at":"2026-01-01T00:00:00Z","data":{}}`),
		"unknown type": rawUnknown,
	} {
		if _, err := events.Parse(raw); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad := good
	bad.Data = []byte(`{"application_id":""}`)
	if _, err := events.Decode[events.PaymentConfirmed](bad); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("empty required field: %v", err)
	}
	if _, err := events.New(events.PaymentConfirmed{}, time.Now(), ""); err == nil {
		t.Fatal("New accepted an invalid payload")
	}
}

// PC-16, NO-2: a code the applicant asked for is about the mailbox, not a
// certificate — it needs no certificate_id (and is the applicant's
// aggregate); every other code still names its certificate. A recipient
// built from an application is addressed by the applicant's name in the
// mail's language.
func TestMailboxCodeAndRecipientName_PC16_NO2(t *testing.T) {
	to := events.Recipient{Email: "taro@example.co.jp", Language: "ja", Name: "辺利 太郎"}
	mailbox := events.CertificateCodeIssued{ApplicantID: "a-1", Reason: events.CodeForMailboxValidation, Recipient: to, SealedCode: []byte{1}}
	if err := mailbox.Validate(); err != nil || mailbox.AggregateID() != "a-1" {
		t.Fatalf("mailbox code: %v, aggregate %q", err, mailbox.AggregateID())
	}
	ready := mailbox
	ready.Reason = events.CodeForCertificateReady
	if err := ready.Validate(); err == nil {
		t.Fatal("a certificate_ready code without certificate_id validated")
	}
	a := events.Application{Language: "ja", Applicant: events.Applicant{NameJa: "辺利 太郎", NameEn: "Veri Taro", Email: "taro@example.co.jp"}}
	if r := a.Recipient(); r.Name != "辺利 太郎" || r.Email != "taro@example.co.jp" || r.Language != "ja" {
		t.Fatalf("ja recipient %+v", r)
	}
	a.Language = "en"
	if r := a.Recipient(); r.Name != "Veri Taro" {
		t.Fatalf("en recipient %+v", r)
	}
	a.Applicant.NameEn = ""
	if r := a.Recipient(); r.Name != "辺利 太郎" {
		t.Fatalf("en recipient without an English name %+v", r)
	}
}
