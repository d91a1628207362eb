package domain

// The payment processor's webhook (BI-2, SV-3): a signed JSON event about
// one invoice. The signature is HMAC-SHA256 over t + "." + body with
// WEBHOOK_SECRET, in the header Webhook-Signature: t=<unix>,v1=<hex>; a
// timestamp more than 5 minutes from now is refused, so a captured
// request cannot be replayed later, and the event ID makes a replay
// within those minutes harmless.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/certlife/platform/pkg/errs"
)

// WebhookSkew is the largest difference between the signature's timestamp
// and now that is accepted (BI-2).
const WebhookSkew = 5 * time.Minute

// Webhook event types.
const (
	PaymentSucceeded = "payment.succeeded"
	PaymentFailed    = "payment.failed"
	PaymentRefunded  = "payment.refunded"
)

// Sign makes the Webhook-Signature header value for body at t (the
// processor's side; tests use it).
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks header against body at now (BI-2). Any failure
// is an errs.KindUnauthorized error: a missing or malformed header, a
// timestamp more than WebhookSkew away, or no v1 signature that matches
// (several v1 entries are allowed, as when the processor rotates its
// secret).
func VerifySignature(secret, header string, body []byte, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errs.Unauthorized("a Webhook-Signature header t=<unix>,v1=<hex> is required")
	}
	at := time.Unix(unix, 0)
	if d := now.Sub(at); d > WebhookSkew || d < -WebhookSkew {
		return errs.Unauthorized("the signature's timestamp is more than 5 minutes from now")
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return errs.Unauthorized("the signature does not match")
}

// WebhookEvent is the processor's event body.
type WebhookEvent struct {
	ID      string      `json:"id"`
	Type    string      `json:"type"`
	Created int64       `json:"created"`
	Data    WebhookData `json:"data"`
}

// WebhookData names the invoice (by its number) and the money.
type WebhookData struct {
	Invoice   string `json:"invoice"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	PaymentID string `json:"payment_id"`
	// FailureReason is what a payment.failed says, when it says it.
	FailureReason string `json:"failure_reason,omitempty"`
}

// Check validates the event's fields (a 422 naming them).
func (e WebhookEvent) Check() error {
	var f []errs.Field
	if e.ID == "" || len(e.ID) > 255 {
		f = append(f, errs.Field{Name: "id", Message: "required, at most 255 characters"})
	}
	switch e.Type {
	case PaymentSucceeded, PaymentFailed, PaymentRefunded:
	default:
		f = append(f, errs.Field{Name: "type", Message: "payment.succeeded, payment.failed or payment.refunded"})
	}
	if e.Data.Invoice == "" || len(e.Data.Invoice) > 64 {
		f = append(f, errs.Field{Name: "data.invoice", Message: "the invoice number is required"})
	}
	if e.Data.Amount < 0 {
		f = append(f, errs.Field{Name: "data.amount", Message: "minor units, not negative"})
	}
	if len(e.Data.Currency) != 3 || strings.ToUpper(e.Data.Currency) != e.Data.Currency {
		f = append(f, errs.Field{Name: "data.currency", Message: "an ISO 4217 code"})
	}
	if len(e.Data.PaymentID) > 255 || len(e.Data.FailureReason) > 1000 {
		f = append(f, errs.Field{Name: "data", Message: "payment_id at most 255 characters, failure_reason 1000"})
	}
	if len(f) > 0 {
		return errs.Invalid(f...)
	}
	return nil
}
