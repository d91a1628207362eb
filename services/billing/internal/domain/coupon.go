// Package domain holds billing's types and rules, with no I/O: prepaid
// coupons (PC-2, BI-1) — the number format, products, expiry, why a
// coupon cannot be used, the import file — and the states of an
// application's coupon reservation.
package domain

import (
	"errors"
	"regexp"
	"time"

	"github.com/certlife/platform/pkg/events"
)

// Reasons a coupon cannot be used; they are the wire values of
// events.CouponCheckResponse.Reason and events.CouponRejected.Reason.
const (
	ReasonUnknown      = "unknown"
	ReasonUsed         = "used"
	ReasonExpired      = "expired"
	ReasonWrongProduct = "wrong_product"
)

// Statuses of a coupon row.
const (
	StatusAvailable = "available"
	StatusReserved  = "reserved"
	StatusConsumed  = "consumed"
)

var numberRe = regexp.MustCompile(`^[0-9]{8}-[0-9]{8}$`)

// ValidNumber reports whether s has the coupon format NNNNNNNN-NNNNNNNN.
func ValidNumber(s string) bool { return numberRe.MatchString(s) }

// ValidProduct reports whether p is a product a coupon can be for.
func ValidProduct(p string) bool { return p == events.ProductClient || p == events.ProductServer }

// Coupon is what the rules need to know of a stored coupon.
type Coupon struct {
	Number    string
	Product   string
	ExpiresAt time.Time // exclusive: usable while t < ExpiresAt
	Status    string
}

// Expired reports whether the coupon has expired at t.
func (c Coupon) Expired(t time.Time) bool { return !t.Before(c.ExpiresAt) }

// Unusable returns why c cannot be used for product at t, or "" when it
// can. The order gives the applicant the most useful answer: a coupon
// that is both used and expired is reported as used.
func (c Coupon) Unusable(product string, t time.Time) string {
	switch {
	case c.Status != StatusAvailable:
		return ReasonUsed
	case c.Expired(t):
		return ReasonExpired
	case c.Product != product:
		return ReasonWrongProduct
	}
	return ""
}

// JST is the time zone of a date-only expiry.
var JST = time.FixedZone("JST", 9*60*60)

var errExpiry = errors.New("expires_at must be an RFC 3339 timestamp or a date YYYY-MM-DD")

// ParseExpiry reads an expiry: an RFC 3339 timestamp, or a date
// YYYY-MM-DD meaning "usable until the end of that day in Japan", stored
// as the next midnight JST (the exclusive bound).
func ParseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseInLocation(time.DateOnly, s, JST); err == nil {
		return d.AddDate(0, 0, 1).UTC(), nil
	}
	return time.Time{}, errExpiry
}
