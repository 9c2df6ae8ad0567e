package logic

import (
	"context"
	"errors"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/examples/order/internal/model"
	"github.com/zerodq/zerodq/examples/order/internal/svc"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// CancelOrderLogic cancels an order whose cancellation job came due.
type CancelOrderLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// NewCancelOrderLogic returns the logic of one run of a cancellation job;
// ctx is the handler's, which carries the job.
func NewCancelOrderLogic(ctx context.Context, svcCtx *svc.ServiceContext) *CancelOrderLogic {
	return &CancelOrderLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

// CancelOrder cancels the order if it is still pending. It is idempotent, as
// a job handler must be: an order already cancelled or paid is left alone,
// and an order this process does not know is not an error (retrying would not
// make it appear). A returned error makes the job run again later.
func (l *CancelOrderLogic) CancelOrder(msg *types.CancelOrderMsg, firedAt time.Time) error {
	job, _ := dq.JobFromContext(l.ctx)
	o, changed, err := l.svcCtx.Orders.Cancel(l.ctx, msg.OrderId, model.Cancellation{
		At:      firedAt,
		DueAt:   job.DueAt,
		Attempt: job.Attempt,
	})
	switch {
	case errors.Is(err, model.ErrNotFound):
		l.Infof("job %s: order %s not found, nothing to cancel", job.ID, msg.OrderId)
		return nil
	case err != nil:
		return err
	case changed:
		l.Infof("job %s: order %s cancelled, unpaid at %s (due %s, attempt %d)",
			job.ID, o.ID, formatTime(firedAt), formatTime(job.DueAt), job.Attempt)
	default:
		l.Infof("job %s: order %s is %s, nothing to cancel", job.ID, o.ID, o.State)
	}
	return nil
}
