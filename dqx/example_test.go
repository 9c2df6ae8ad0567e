package dqx_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
	"github.com/zerodq/zerodq/dqx/dqtest"
)

type Order struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
}

// A scheduler and a consumer in one go-zero service group: every replica of
// the service runs both, and each fire runs once across them. (The example
// starts servers of its own with dqx/dqtest; a service takes its DqConf and
// CronConf from its yaml.)
func ExampleNewScheduler() {
	servers, err := dqtest.StartServers(dqtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer servers.Close()
	c := servers.Conf("app")
	cron := dqx.CronConf{Entries: []dqx.CronEntry{
		{Name: "report", Spec: "0 0 2 * * *", TimeZone: "Asia/Shanghai"},
		{Name: "sweep", Spec: "@every 1s", Missed: dqx.MissedRunOnce},
	}}

	swept := make(chan string, 10)
	mux := dqx.NewMux()
	mux.HandleCron("report", dq.WithHandle(func(ctx context.Context, body []byte) error {
		fire, _ := dqx.FireFromContext(ctx)
		logx.WithContext(ctx).Infof("daily report for %v", fire.At)
		return nil
	}))
	mux.HandleCron("sweep", dq.WithHandle(func(ctx context.Context, body []byte) error {
		fire, _ := dqx.FireFromContext(ctx)
		swept <- fire.Entry
		return nil
	}))

	group := service.NewServiceGroup()
	group.Add(dqx.MustNewScheduler(c, cron))
	group.Add(dq.MustNewConsumer(c, mux))
	go group.Start()
	defer group.Stop()
	fmt.Println("fired:", <-swept)
	// Output:
	// fired: sweep
}

// Typed jobs: the producer side encodes an Order, the handler gets it back.
func ExampleNewTypedProducer() {
	servers, err := dqtest.StartServers(dqtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer servers.Close()
	c := servers.Conf("app")

	producer := dq.MustNewProducer(c)
	defer producer.Close()
	orders := dqx.NewTypedProducer[Order](producer, "order.created")

	sent := make(chan struct{}, 1)
	mux := dqx.NewMux()
	mux.Handle(orders.Type(), dqx.Handle(func(ctx context.Context, o Order) error {
		fmt.Println("send receipt to", o.Email)
		sent <- struct{}{}
		return nil
	}))
	consumer := dq.MustNewConsumer(c, mux)
	go consumer.Start()
	defer consumer.Stop()

	if _, err := orders.Enqueue(context.Background(), Order{ID: 42, Email: "a@example.com"}, 100*time.Millisecond); err != nil {
		fmt.Println(err)
		return
	}
	<-sent
	// Output:
	// send receipt to a@example.com
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

// The coming fires of an entry in its own zone, read from the schedule's
// state in Redis: a running scheduler has written the next three of a daily
// entry. (The zerodq CLI's `cron ls` and `cron next` print the same.)
func ExampleNewCronInspector() {
	servers, err := dqtest.StartServers(dqtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer servers.Close()
	c := servers.Conf("app")
	cron := dqx.CronConf{Entries: []dqx.CronEntry{
		{Name: "report", Spec: "0 0 2 * * *", TimeZone: "Asia/Shanghai"},
	}}
	s := dqx.MustNewScheduler(c, cron)
	go s.Start()
	defer s.Stop()

	ci, err := dqx.NewCronInspector(c, cron)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ci.Close()
	var fires []dqx.CronFire
	dqtest.Await(10*time.Second, func() bool {
		fires, err = ci.Next(context.Background(), "report", 4)
		return err == nil && fires[2].Written
	})
	for _, f := range fires {
		fmt.Println(f.At.Format("15:04 MST"), "written:", f.Written)
	}
	// Output:
	// 02:00 CST written: true
	// 02:00 CST written: true
	// 02:00 CST written: true
	// 02:00 CST written: false
}
