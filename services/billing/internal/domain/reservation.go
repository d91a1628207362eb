package domain

// Reservation states. Reserved is the only one that is not final: a
// record moves reserved -> consumed | released, and consumed, released
// and rejected are never left.
const (
	StateReserved = "reserved"
	StateConsumed = "consumed"
	StateReleased = "released"
	StateRejected = "rejected"
)

// Reservation is what billing knows of one application's coupon. A zero
// State means billing has no record of the application yet.
type Reservation struct {
	ApplicationID string
	Coupon        string
	State         string
	Reason        string // why the coupon was rejected (a Reason* value)
}

// Known reports whether the application was already decided: any record
// at all means an earlier event (or an earlier delivery of this one) got
// there first.
func (r Reservation) Known() bool { return r.State != "" }
