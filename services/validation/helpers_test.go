package validation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation/internal/api"
)

const (
	reviewerToken = "tok-review-0123456789"
	billingToken  = "tok-billing-0123456789"
	wait          = 10 * time.Second
)

// reviewerActor is how opsauth names the reviewer token's operator.
func reviewerActor() string {
	h := sha256.Sum256([]byte(reviewerToken))
	return "ops:" + hex.EncodeToString(h[:4])
}

func start(t *testing.T, autoApprove bool) *testenv.Platform {
	t.Helper()
	return testenv.Start(t, testenv.Options{Config: func(c *app.Config) {
		c.ReviewAutoApprove = autoApprove
		c.OpsTokens = testenv.OpsToken + ":admin," + billingToken + ":billing," + reviewerToken + ":reviewer"
	}}, Definition)
}

// ops sends a request with the reviewer token.
func ops(t *testing.T, p *testenv.Platform, method, path string, body any, headers ...string) testenv.Response {
	t.Helper()
	return p.Do(method, path, body, append([]string{"Authorization", "Bearer " + reviewerToken}, headers...)...)
}

func application(companyCode, email string) events.Application {
	id := uuid.NewString()
	return events.Application{
		ID: id, ApplicantID: "applicant-" + id[:8], Product: events.ProductClient, Kind: events.KindNew, Language: "en",
		Coupon: "12345678-87654321",
		Organization: events.Organization{CompanyCode: companyCode, NameJa: "日本ベリサイン株式会社", NameEn: "VeriSign Japan K.K.",
			Identifier: "NTRJP-4010001012345"},
		Applicant: events.Applicant{NameJa: "辺利 太郎", NameEn: "Veri Taro", TitleEn: "Director", Email: email, Phone: "0350001111",
			Address: events.Address{PostalCode: "1040028", Prefecture: "東京都", City: "中央区", Street: "八重洲2-8-1"}},
	}
}

func final(p *testenv.Platform, a events.Application) events.CancelWindowClosed {
	return events.CancelWindowClosed{Application: a, ClosedAt: p.Clock.Now(), Reason: "deadline"}
}

func paid(a events.Application) events.PaymentConfirmed {
	return events.PaymentConfirmed{ApplicationID: a.ID, Method: "coupon", Reference: a.Coupon}
}

// list returns the reviews of a status.
func list(t *testing.T, p *testenv.Platform, status string) []api.Review {
	t.Helper()
	r := ops(t, p, "GET", "/ops/v1/reviews?status="+status, nil)
	if r.Status != 200 {
		t.Fatalf("list %s: %d %s", status, r.Status, r.Body)
	}
	var out struct {
		Reviews []api.Review `json:"reviews"`
	}
	r.JSON(t, &out)
	return out.Reviews
}

// pendingReview waits for the application's review to be in the queue.
func pendingReview(t *testing.T, p *testenv.Platform, applicationID string) api.Review {
	t.Helper()
	var found api.Review
	testenv.Eventually(t, wait, "review of "+applicationID+" in the queue", func() bool {
		for _, r := range list(t, p, "pending") {
			if r.ApplicationID == applicationID {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// reviewOf reads the review ID of an application from the database.
func reviewOf(t *testing.T, p *testenv.Platform, applicationID string) string {
	t.Helper()
	var id string
	testenv.Eventually(t, wait, "review of "+applicationID, func() bool {
		err := p.Unit("validation").Deps.Pool.QueryRow(context.Background(),
			`SELECT id::text FROM reviews WHERE application_id = $1`, applicationID).Scan(&id)
		return err == nil
	})
	return id
}

func eventsOf(p *testenv.Platform, eventType, applicationID string) []events.Envelope {
	var out []events.Envelope
	for _, e := range p.Events(eventType) {
		if e.SubjectID == applicationID {
			out = append(out, e)
		}
	}
	return out
}

func decode[T events.Payload](t *testing.T, env events.Envelope) T {
	t.Helper()
	v, err := events.Decode[T](env)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustStatus(t *testing.T, r testenv.Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
}
