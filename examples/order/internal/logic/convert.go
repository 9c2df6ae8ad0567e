package logic

import (
	"time"

	"github.com/zerodq/zerodq/examples/order/internal/model"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// TimeLayout is how the API writes times: RFC 3339 with microseconds, so
// that the lateness of a cancellation can be read off two fields.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

func orderResp(o model.Order) *types.OrderResp {
	return &types.OrderResp{
		Id:            o.ID,
		Item:          o.Item,
		Amount:        o.Amount,
		State:         string(o.State),
		CreatedAt:     formatTime(o.CreatedAt),
		CancelJobId:   o.CancelJobID,
		CancelDueAt:   formatTime(o.CancelDueAt),
		JobState:      string(o.JobState),
		PaidAt:        formatTime(o.PaidAt),
		CancelledAt:   formatTime(o.CancelledAt),
		CancelAttempt: o.CancelAttempt,
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(TimeLayout)
}
