package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier"
)

const day = 24 * time.Hour

// harness is one notifier on real Postgres, NATS and SMTP.
type harness struct {
	*testenv.Platform
	SMTP    *testenv.SMTP
	Key     *seal.PrivateKey
	KeyPath string
	DB      *pgx.Conn
}

type startOpts struct {
	smtp     *testenv.SMTP
	keyPath  string
	reuse    *harness // restart on the same database, NATS and clock
	mailFrom string   // MAIL_FROM; "" = the default
}

func start(t *testing.T, o startOpts) *harness {
	t.Helper()
	h := &harness{SMTP: o.smtp, KeyPath: o.keyPath}
	if h.SMTP == nil {
		h.SMTP = testenv.StartSMTP(t)
	}
	opts := testenv.Options{Config: func(c *app.Config) {
		c.SMTPAddr = h.SMTP.Addr
		if h.KeyPath == "" {
			// The key the test seals codes to, in the test's data dir.
			h.KeyPath = filepath.Join(c.DataDir, "notifier-test.key")
			if _, err := seal.LoadOrCreate(h.KeyPath, true); err != nil {
				t.Fatal(err)
			}
		}
		c.NotifierPrivateKeyFile = h.KeyPath
		if o.mailFrom != "" {
			c.MailFrom = o.mailFrom
		}
	}}
	if o.reuse != nil {
		opts.DBURL, opts.NATS, opts.Clock = o.reuse.DBURL, o.reuse.NATS, o.reuse.Clock
	}
	h.Platform = testenv.Start(t, opts, notifier.Definition)
	key, err := seal.LoadOrCreate(h.KeyPath, false)
	if err != nil {
		t.Fatal(err)
	}
	h.Key = key
	ctx := context.Background()
	h.DB, err = pgx.Connect(ctx, h.DBURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.DB.Close(context.Background()) })
	return h
}

// waitHandled waits until a consumer of the notifier has handled an event.
func (h *harness) waitHandled(t *testing.T, consumer string, env events.Envelope) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, consumer+" handling "+env.Type, func() bool {
		var n int
		err := h.DB.QueryRow(context.Background(),
			`SELECT count(*) FROM notifier.inbox WHERE consumer = $1 AND event_id = $2`, consumer, env.ID).Scan(&n)
		return err == nil && n == 1
	})
}

// delivery is a row of GET /ops/v1/deliveries.
type delivery struct {
	ID            int64      `json:"id"`
	MessageID     string     `json:"message_id"`
	Reason        string     `json:"reason"`
	Recipient     string     `json:"recipient"`
	Language      string     `json:"language"`
	SubjectID     string     `json:"subject_id"`
	CausedBy      string     `json:"caused_by"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastError     *string    `json:"last_error"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	SentAt        *time.Time `json:"sent_at"`
}

func (h *harness) deliveries(t *testing.T, recipient, reason string) []delivery {
	t.Helper()
	q := url.Values{}
	if recipient != "" {
		q.Set("recipient", recipient)
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	resp := h.Ops("GET", "/ops/v1/deliveries?"+q.Encode(), nil)
	if resp.Status != 200 {
		t.Fatalf("GET deliveries: %d %s", resp.Status, resp.Body)
	}
	var out struct {
		Deliveries []delivery `json:"deliveries"`
	}
	resp.JSON(t, &out)
	return out.Deliveries
}

// reminderOutcome is the reminders log row of one reminder, once it fired.
func (h *harness) reminderOutcome(t *testing.T, certificateID string, days int) (outcome, why string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, fmt.Sprintf("the %d-day reminder of %s", days, certificateID), func() bool {
		var w *string
		err := h.DB.QueryRow(context.Background(), `SELECT outcome, why FROM notifier.reminders
			WHERE certificate_id = $1 AND days_before = $2`, certificateID, days).Scan(&outcome, &w)
		if w != nil {
			why = *w
		}
		return err == nil
	})
	return outcome, why
}

// renewalDue returns the RenewalDue events of a certificate.
func (h *harness) renewalDue(t *testing.T, certificateID string) []events.RenewalDue {
	t.Helper()
	var out []events.RenewalDue
	for _, env := range h.Events(events.TypeRenewalDue) {
		if env.SubjectID != certificateID {
			continue
		}
		p, err := events.Decode[events.RenewalDue](env)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func subjectOf(t *testing.T, m testenv.Mail) string {
	t.Helper()
	if m.Msg == nil {
		t.Fatalf("unparseable mail:\n%s", m.Raw)
	}
	s, err := new(mime.WordDecoder).DecodeHeader(m.Msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newID() string { return uuid.NewString() }

func application(id, email, lang string) events.Application {
	return events.Application{
		ID: id, ApplicantID: "applicant-" + id[:8], Product: events.ProductClient, Kind: events.KindNew, Language: lang,
		Coupon:       "12345678-87654321",
		Organization: events.Organization{CompanyCode: "984940947", NameJa: "日本ベリサイン株式会社", NameEn: "VeriSign Japan K.K."},
		Applicant: events.Applicant{NameJa: "辺利 太郎", NameEn: "Veri Taro", Email: email, Phone: "0350001111",
			Address: events.Address{PostalCode: "1040028", Prefecture: "東京都", City: "中央区", Street: "八重洲2-8-1"}},
	}
}

func issued(certID, email string, notAfter time.Time) events.CertificateIssued {
	return events.CertificateIssued{
		CertificateID: certID, ApplicationID: "app-" + certID, ApplicantID: "applicant-1", Product: events.ProductClient,
		Kind: events.KindNew, Recipient: events.Recipient{Email: email, Language: "ja"}, Serial: "0a1b2c3d4e5f6071",
		Issuer: "client-ca", NotBefore: notAfter.Add(-365 * day), NotAfter: notAfter,
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// publishWhileStopped publishes an event, as another service would, while
// the notifier (and its platform's connection) is stopped.
func (h *harness) publishWhileStopped(t *testing.T, p events.Payload) {
	t.Helper()
	_, js := h.NATS.Connect(t)
	env, err := events.New(p, h.Clock.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		t.Fatal(err)
	}
}
