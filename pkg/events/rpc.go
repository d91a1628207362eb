package events

// Synchronous queries over NATS request/reply, for the few answers that
// must be instant (SPEC §2). Each subject is served by one service behind a
// queue group, so replicas share the load.
const (
	// RPCCouponCheck is served by billing: is this coupon usable now? (PC-2)
	RPCCouponCheck = "rpc.billing.coupon.check"
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

// RPCError is the body of a failed reply.
type RPCError struct {
	Error string `json:"error"`
}
