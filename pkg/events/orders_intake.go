package events

import "time"

// TypeOrderCancelled is the type of OrderCancelled.
const TypeOrderCancelled = "OrderCancelled"

func init() { versions[TypeOrderCancelled] = 1 }

// Reasons an order is cancelled.
const (
	OrderCancelledApplication = "application_cancelled" // the application that placed it was cancelled in its window
	OrderCancelledDeclined    = "renewal_declined"      // the customer declined the renewal (SV-2)
)

// OrderCancelled: intake cancelled an order before it was paid for or
// issued (billing voids its open invoice; nothing is to be paid).
type OrderCancelled struct {
	OrderID     string    `json:"order_id"`
	CustomerID  string    `json:"customer_id"`
	Reason      string    `json:"reason"`
	CancelledAt time.Time `json:"cancelled_at"`
}

func (OrderCancelled) EventType() string     { return TypeOrderCancelled }
func (OrderCancelled) EventVersion() int     { return 1 }
func (e OrderCancelled) AggregateID() string { return e.OrderID }
func (e OrderCancelled) Validate() error {
	return required("order_id", e.OrderID, "customer_id", e.CustomerID, "reason", e.Reason)
}
