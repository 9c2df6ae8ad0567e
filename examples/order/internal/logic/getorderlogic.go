package logic

import (
	"context"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/examples/order/internal/svc"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// GetOrderLogic reads an order.
type GetOrderLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// NewGetOrderLogic returns the logic of one GET /orders/{id}.
func NewGetOrderLogic(ctx context.Context, svcCtx *svc.ServiceContext) *GetOrderLogic {
	return &GetOrderLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

// GetOrder returns the order's state and its cancellation job's due time.
func (l *GetOrderLogic) GetOrder(req *types.OrderReq) (*types.OrderResp, error) {
	o, err := l.svcCtx.Orders.FindOne(l.ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return orderResp(o), nil
}
