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

// PayOrderLogic pays an order and revokes its cancellation.
type PayOrderLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// NewPayOrderLogic returns the logic of one POST /orders/{id}/pay.
func NewPayOrderLogic(ctx context.Context, svcCtx *svc.ServiceContext) *PayOrderLogic {
	return &PayOrderLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

// PayOrder marks the order paid, then revokes its cancellation job. The order
// is paid first so that it stays paid whatever the revoke answers: a job that
// could not be revoked finds the order paid and leaves it.
func (l *PayOrderLogic) PayOrder(req *types.OrderReq) (*types.OrderResp, error) {
	o, err := l.svcCtx.Orders.Pay(l.ctx, req.Id, time.Now())
	if err != nil {
		return nil, err
	}
	if o.JobState != model.JobScheduled && o.JobState != model.JobNotRevoked {
		return orderResp(o), nil
	}

	state := model.JobRevoked
	switch err := l.svcCtx.Producer.RevokeCtx(l.ctx, o.CancelJobID); {
	case err == nil:
	case errors.Is(err, dq.ErrRunning), errors.Is(err, dq.ErrDone),
		errors.Is(err, dq.ErrDead), errors.Is(err, dq.ErrMaybeDone):
		state = model.JobNotRevoked
	default:
		// The payment stands; the job, if it runs, finds the order paid.
		// A retried payment tries the revoke again.
		l.Errorf("order %s paid, revoking job %s: %v", o.ID, o.CancelJobID, err)
		return orderResp(o), nil
	}

	o, err = l.svcCtx.Orders.RecordRevoke(l.ctx, o.ID, state)
	if err != nil {
		return nil, err
	}
	return orderResp(o), nil
}
