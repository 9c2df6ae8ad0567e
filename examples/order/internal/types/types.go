// Package types holds the request and response bodies of the order API (see
// order.api) and the body of the cancellation job.
package types

// CreateOrderReq is the body of POST /orders.
type CreateOrderReq struct {
	// Id is chosen by the client so that a retried request creates nothing
	// twice; the service generates one when it is empty.
	Id     string `json:"id,optional"`
	Item   string `json:"item"`
	Amount int64  `json:"amount"`
	// CancelAfterMs overrides Order.CancelAfter when Order.ClientDelays is on.
	CancelAfterMs int64 `json:"cancelAfterMs,optional"`
}

// OrderReq names an order in the path.
type OrderReq struct {
	Id string `path:"id"`
}

// OrderResp is an order as the API shows it. Times are RFC 3339 with
// microseconds; the empty ones are left out.
type OrderResp struct {
	Id     string `json:"id"`
	Item   string `json:"item"`
	Amount int64  `json:"amount"`
	// State is pending, paid or cancelled.
	State     string `json:"state"`
	CreatedAt string `json:"createdAt"`
	// CancelJobId is the ID of the job that cancels the order if unpaid.
	CancelJobId string `json:"cancelJobId"`
	// CancelDueAt is when that job is due (exact once it has run).
	CancelDueAt string `json:"cancelDueAt"`
	// JobState is scheduled, revoked, not-revoked, fired or skipped.
	JobState      string `json:"jobState"`
	PaidAt        string `json:"paidAt,omitempty"`
	CancelledAt   string `json:"cancelledAt,omitempty"`
	CancelAttempt int    `json:"cancelAttempt,omitempty"`
}

// ErrorResp is the body of an error response.
type ErrorResp struct {
	Error string `json:"error"`
}

// CancelOrderMsg is the body of an order's cancellation job.
type CancelOrderMsg struct {
	OrderId string `json:"orderId"`
}
