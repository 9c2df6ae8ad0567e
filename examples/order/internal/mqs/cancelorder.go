// Package mqs holds the handlers of the service's queued jobs.
package mqs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/examples/order/internal/logic"
	"github.com/zerodq/zerodq/examples/order/internal/svc"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// CancelOrder is the dq.ConsumeHandler of the order cancellation jobs.
type CancelOrder struct {
	svcCtx *svc.ServiceContext
}

// NewCancelOrder returns the handler that cancels unpaid orders.
func NewCancelOrder(svcCtx *svc.ServiceContext) *CancelOrder {
	return &CancelOrder{svcCtx: svcCtx}
}

// Consume runs one cancellation job.
func (c *CancelOrder) Consume(ctx context.Context, body []byte) error {
	// Read the clock first: this is the moment the job fired.
	firedAt := time.Now()
	var msg types.CancelOrderMsg
	if err := json.Unmarshal(body, &msg); err != nil || msg.OrderId == "" {
		// No retry can repair a body: straight to the dead letter.
		return fmt.Errorf("%w: cancellation job body %q", dq.ErrSkipRetry, body)
	}
	return logic.NewCancelOrderLogic(ctx, c.svcCtx).CancelOrder(&msg, firedAt)
}
