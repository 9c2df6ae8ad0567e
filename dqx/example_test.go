package dqx_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeromicro/go-zero/core/service"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
)

type Order struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
}

// A scheduler and a consumer in one go-zero service group: every replica of
// the service runs both, and each fire runs once across them.
func ExampleNewScheduler() {
	c := dq.DqConf{
		Beanstalks: []dq.Beanstalk{
			{Endpoint: "127.0.0.1:11300", Tube: "app"},
			{Endpoint: "127.0.0.1:11301", Tube: "app"},
			{Endpoint: "127.0.0.1:11302", Tube: "app"},
		},
		Redis: redis.RedisConf{Host: "127.0.0.1:6379", Type: redis.NodeType},
	}
	cron := dqx.CronConf{Entries: []dqx.CronEntry{
		{Name: "report", Spec: "0 0 2 * * *", TimeZone: "Asia/Shanghai"},
		{Name: "sweep", Spec: "@every 30s", Missed: dqx.MissedRunOnce},
	}}

	mux := dqx.NewMux()
	mux.HandleCron("report", dq.WithHandle(func(ctx context.Context, body []byte) error {
		fire, _ := dqx.FireFromContext(ctx)
		fmt.Println("daily report for", fire.At)
		return nil
	}))
	mux.HandleCron("sweep", dq.WithHandle(func(ctx context.Context, body []byte) error { return nil }))

	group := service.NewServiceGroup()
	defer group.Stop()
	group.Add(dqx.MustNewScheduler(c, cron))
	group.Add(dq.MustNewConsumer(c, mux))
	group.Start()
}

// Typed jobs: the producer side encodes an Order, the handler gets it back.
func ExampleNewTypedProducer() {
	var producer dq.Producer // dq.MustNewProducer(c) in a service
	orders := dqx.NewTypedProducer[Order](producer, "order.created")

	mux := dqx.NewMux()
	mux.Handle(orders.Type(), dqx.Handle(func(ctx context.Context, o Order) error {
		fmt.Println("send receipt to", o.Email)
		return nil
	}))

	_, _ = orders.Enqueue(context.Background(), Order{ID: 42, Email: "a@example.com"}, 30*time.Minute)
}

func ExampleHandle() {
	h := dqx.Handle(func(ctx context.Context, o Order) error {
		fmt.Printf("order %d for %s\n", o.ID, o.Email)
		return nil
	})
	_ = h.Consume(context.Background(), []byte(`{"id":42,"email":"a@example.com"}`))

	err := h.Consume(context.Background(), []byte(`not json`))
	fmt.Println(err != nil, errors.Is(err, dq.ErrSkipRetry))
	// Output:
	// order 42 for a@example.com
	// true true
}

func ExampleCronConf_Validate() {
	c := dqx.CronConf{Entries: []dqx.CronEntry{{Name: "report", Spec: "0 0 25 * * *"}}}
	fmt.Println(c.Validate())
	// Output:
	// dqx: bad cron config: Entries[0].Spec = "0 0 25 * * *": end of range (25) above maximum (23): 25
}
