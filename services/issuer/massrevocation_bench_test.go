package issuer_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/issuer"
)

// benchCertificates and benchSubscribers: 100,000 certificates of 10,000
// subscribers (ten each), half in Japanese and half in English.
const (
	benchCertificates = 100000
	benchSubscribers  = 10000
)

// BenchmarkMassRevocation100k (OP-5) seeds 100,000 issued certificates of
// one organization by bulk SQL, revokes them all with one
// POST /ops/v1/mass-revocations, and reports the time until
//   - s_to_crl: the CRL served at /crl/ica1.crl lists all of them,
//   - s_to_notices_queued: the last subscriber notice (a CertificateRevoked
//     event with a recipient) is committed to the outbox,
//   - s_to_notices_published: the relay has put every event on JetStream
//     (the outbox is empty), from where the notifier mails them.
//
// Run: go test -run '^$' -bench BenchmarkMassRevocation100k -benchtime 1x -timeout 20m ./services/issuer/
func BenchmarkMassRevocation100k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchMassRevocation(b)
	}
}

func benchMassRevocation(b *testing.B) {
	b.StopTimer()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	p := testenv.Start(b, testenv.Options{Config: func(c *app.Config) {
		c.SessionPublicKey = session.EncodePublicKey(session.NewSigner(key).Public())
		c.DevMode = true
	}}, issuer.Definition)
	pool := p.Unit("issuer").Deps.Pool
	ctx := context.Background()
	now := p.Clock.Now().UTC()
	// One statement: the certificates and their recorded serials (IS-2);
	// the foreign keys between them are checked at its end.
	if _, err := pool.Exec(ctx, `WITH s AS (
			SELECT g, gen_random_uuid() AS id, '7e' || lpad(to_hex(g), 14, '0') AS serial
			FROM generate_series(1, $1::int) g),
		c AS (INSERT INTO certificates (id, application_id, applicant_id, product, kind, correlation_id, name_en,
				organization_en, organization_identifier, email, language, recipient_name, status, created_at,
				retrieval_mode, retrieval_status, serial, issuer, not_before, not_after, der, issued_at)
			SELECT id, 'bench-app-' || g, 'bench-applicant-' || (g % $2::int), 'client', 'new', id::text, 'Bench Person',
				'Bench Corp K.K.', 'NTRJP-4010001012345', 'bench' || (g % $2::int) || '@example.co.jp',
				CASE WHEN g % 2 = 0 THEN 'ja' ELSE 'en' END, 'Bench Person', 'issued', $3,
				'csr', 'delivered', serial, 'ica1', $3, $4, '\x00'::bytea, $3
			FROM s)
		INSERT INTO serials (serial, certificate_id, recorded_at) SELECT serial, id, $3 FROM s`,
		benchCertificates, benchSubscribers, now, now.Add(365*24*time.Hour)); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE certificates`); err != nil {
		b.Fatal(err)
	}

	var crlBefore int64
	if err := pool.QueryRow(ctx, `SELECT last_number FROM crl_numbers WHERE issuer = 'ica1'`).Scan(&crlBefore); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	r := p.Ops("POST", "/ops/v1/mass-revocations", map[string]any{"reason": "keyCompromise", "organization": "Bench Corp K.K."})
	if r.Status != http.StatusAccepted {
		b.Fatalf("mass revocation: %d %s", r.Status, r.Body)
	}
	var m massProgress
	r.JSON(b, &m)
	accepted := time.Since(start)
	var toCRL, toQueued, toPublished time.Duration
	deadline := time.Now().Add(15 * time.Minute)
	for toCRL == 0 || toQueued == 0 || toPublished == 0 {
		if time.Now().After(deadline) {
			b.Fatalf("not done after 15 minutes: crl %s, queued %s, published %s", toCRL, toQueued, toPublished)
		}
		if toQueued == 0 {
			g := p.Ops("GET", "/ops/v1/mass-revocations/"+m.ID, nil)
			g.JSON(b, &m)
			if m.NoticesQueued == benchSubscribers && m.Revoked == benchCertificates {
				toQueued = time.Since(start)
			}
		}
		if toCRL == 0 && m.Done {
			c := p.Do("GET", "/crl/ica1.crl", nil)
			crl, err := x509.ParseRevocationList(c.Body)
			if err != nil {
				b.Fatal(err)
			}
			if len(crl.RevokedCertificateEntries) == benchCertificates {
				toCRL = time.Since(start)
			}
		}
		if toPublished == 0 && toQueued != 0 {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				toPublished = time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a real pipeline, not waiting for time to pass
	}
	b.StopTimer()
	var crlAfter int64
	if err := pool.QueryRow(ctx, `SELECT last_number FROM crl_numbers WHERE issuer = 'ica1'`).Scan(&crlAfter); err != nil {
		b.Fatal(err)
	}
	crls := crlAfter - crlBefore
	b.ReportMetric(accepted.Seconds(), "s_to_202")
	b.ReportMetric(toCRL.Seconds(), "s_to_crl")
	b.ReportMetric(toQueued.Seconds(), "s_to_notices_queued")
	b.ReportMetric(toPublished.Seconds(), "s_to_notices_published")
	b.Logf("%d certificates of %d subscribers: 202 after %s, CRL listing all after %s, last notice queued after %s, all events published after %s; CRLs of ica1 made for it: %d",
		benchCertificates, benchSubscribers, accepted, toCRL, toQueued, toPublished, crls)
}
