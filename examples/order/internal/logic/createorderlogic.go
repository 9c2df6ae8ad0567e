package logic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/examples/order/internal/model"
	"github.com/zerodq/zerodq/examples/order/internal/svc"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// orderID keeps order IDs safe in URLs and in job IDs.
var orderID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CreateOrderLogic creates an order and schedules its cancellation.
type CreateOrderLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// NewCreateOrderLogic returns the logic of one POST /orders.
func NewCreateOrderLogic(ctx context.Context, svcCtx *svc.ServiceContext) *CreateOrderLogic {
	return &CreateOrderLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

// CreateOrder stores the order and enqueues the job that cancels it if it is
// still unpaid when the job comes due. A request retried with the same id
// returns the stored order and enqueues nothing new.
func (l *CreateOrderLogic) CreateOrder(req *types.CreateOrderReq) (*types.OrderResp, error) {
	delay, err := l.cancelAfter(req)
	if err != nil {
		return nil, err
	}
	id := req.Id
	if id == "" {
		id = newOrderID()
	}

	now := time.Now()
	o, created, err := l.svcCtx.Orders.Insert(l.ctx, model.Order{
		ID:          id,
		Item:        req.Item,
		Amount:      req.Amount,
		State:       model.StatePending,
		CreatedAt:   now,
		CancelJobID: "cancel-" + id,
		CancelDueAt: now.Add(delay),
		JobState:    model.JobScheduled,
	})
	if err != nil {
		return nil, err
	}
	if !created && (o.Item != req.Item || o.Amount != req.Amount) {
		return nil, fmt.Errorf("%w: %s", ErrIDTaken, id)
	}
	if o.State != model.StatePending {
		return orderResp(o), nil
	}

	// A retried request enqueues again on purpose: if the first attempt
	// stored the order but failed to enqueue, this one schedules the
	// cancellation; if it had succeeded, WithID makes this a no-op and the
	// first due time stands.
	body, err := json.Marshal(types.CancelOrderMsg{OrderId: o.ID})
	if err != nil {
		return nil, err
	}
	_, err = l.svcCtx.Producer.DelayCtx(l.ctx, body, max(time.Until(o.CancelDueAt), 0),
		dq.WithID(o.CancelJobID))
	if err != nil {
		return nil, fmt.Errorf("%w: scheduling the cancellation of order %s: %w", ErrUnavailable, o.ID, err)
	}

	return orderResp(o), nil
}

func (l *CreateOrderLogic) cancelAfter(req *types.CreateOrderReq) (time.Duration, error) {
	switch {
	case req.Id != "" && !orderID.MatchString(req.Id):
		return 0, fmt.Errorf("%w: id must be 1 to 64 letters, digits, '-' or '_'", ErrInvalid)
	case req.Item == "":
		return 0, fmt.Errorf("%w: item is empty", ErrInvalid)
	case req.Amount <= 0:
		return 0, fmt.Errorf("%w: amount must be positive", ErrInvalid)
	case req.CancelAfterMs < 0:
		return 0, fmt.Errorf("%w: cancelAfterMs is negative", ErrInvalid)
	case req.CancelAfterMs == 0:
		return l.svcCtx.Config.Order.CancelAfter, nil
	case !l.svcCtx.Config.Order.ClientDelays:
		return 0, fmt.Errorf("%w: cancelAfterMs is not accepted (Order.ClientDelays is off)", ErrInvalid)
	default:
		return time.Duration(req.CancelAfterMs) * time.Millisecond, nil
	}
}

func newOrderID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
