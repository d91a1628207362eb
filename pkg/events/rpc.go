package events

import "time"

// Synchronous queries over NATS request/reply, for the few answers that
// must be instant (SPEC §2). Each subject is served by one service behind a
// queue group, so replicas share the load.
const (
	// RPCCouponCheck is served by billing: is this coupon usable now? (PC-2)
	RPCCouponCheck = "rpc.billing.coupon.check"
	// RPCSessionIntrospect is served by intake: who holds this session token?
	RPCSessionIntrospect = "rpc.intake.session.introspect"
)

// CouponCheckRequest asks billing about a coupon.
type CouponCheckRequest struct {
	Coupon  string `json:"coupon"`
	Product string `json:"product"`
}

// CouponCheckResponse: OK, or the reason it is unusable.
type CouponCheckResponse struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"` // unknown | used | expired | wrong_product
}

// SessionIntrospectRequest carries a bearer token to intake. It is sent
// over request/reply only; it is never stored or published to a stream.
type SessionIntrospectRequest struct {
	Token string `json:"token"`
}

// SessionIntrospectResponse names the applicant behind a live session.
type SessionIntrospectResponse struct {
	Active      bool      `json:"active"`
	ApplicantID string    `json:"applicant_id,omitempty"`
	Email       string    `json:"email,omitempty"`
	ExpiresAt   time.Time `json:"expires_at,omitempty"`
}

// RPCError is the body of a failed reply.
type RPCError struct {
	Error string `json:"error"`
}
