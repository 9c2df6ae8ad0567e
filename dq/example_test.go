package dq_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeromicro/go-zero/core/service"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/dqtest"
)

// The examples that talk to servers start their own with dqx/dqtest
// (beanstalkd and redis-server must be installed), so that they run as
// they are written. A service takes its DqConf from its yaml instead.

// A config names the nodes, each with its tube, and the Redis. Validate
// fills in the defaults and names the first field that is wrong.
func ExampleDqConf() {
	c := dq.DqConf{
		Beanstalks: []dq.Beanstalk{
			{Endpoint: "127.0.0.1:11300", Tube: "orders"},
			{Endpoint: "127.0.0.1:11301", Tube: "orders"},
			{Endpoint: "127.0.0.1:11302", Tube: "orders"},
		},
		Redis: redis.RedisConf{Host: "127.0.0.1:6379", Type: redis.NodeType},
	}
	fmt.Println(c.Validate())

	c.Beanstalks[2].Endpoint = "127.0.0.1:11300"
	fmt.Println(c.Validate())
	// Output:
	// <nil>
	// dq: bad config: Beanstalks[2].Endpoint = "127.0.0.1:11300": duplicate of Beanstalks[0]
}

// A producer schedules a job and can revoke it from any process.
func ExampleNewProducer() {
	servers, err := dqtest.StartServers(dqtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer servers.Close()

	p, err := dq.NewProducer(servers.Conf("orders"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	ctx := context.Background()
	id, err := p.DelayCtx(ctx, []byte(`{"order":"42"}`), 30*time.Minute, dq.WithID("cancel-42"))
	if err != nil {
		fmt.Println("enqueue:", err)
		return
	}
	fmt.Println("enqueued", id)

	// The order was paid: the cancellation must not run.
	switch err := p.RevokeCtx(ctx, id); {
	case errors.Is(err, dq.ErrRunning), errors.Is(err, dq.ErrDone):
		fmt.Println("too late:", err)
	case err != nil:
		fmt.Println("revoke:", err)
	default:
		fmt.Println("revoked", id)
	}
	// Output:
	// enqueued cancel-42
	// revoked cancel-42
}

// A consumer runs in the service group beside the service's servers.
func ExampleNewConsumer() {
	servers, err := dqtest.StartServers(dqtest.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer servers.Close()
	c := servers.Conf("orders")

	ran := make(chan struct{}, 1)
	consumer, err := dq.NewConsumer(c, dq.WithHandle(func(ctx context.Context, body []byte) error {
		job, _ := dq.JobFromContext(ctx)
		fmt.Printf("job %s attempt %d: %s\n", job.ID, job.Attempt, body)
		ran <- struct{}{}
		return nil
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	group := service.NewServiceGroup()
	group.Add(consumer)
	go group.Start()
	defer group.Stop()

	p := dq.MustNewProducer(c)
	defer p.Close()
	if _, err := p.DelayCtx(context.Background(), []byte(`{"order":"42"}`), 100*time.Millisecond, dq.WithID("remind-42")); err != nil {
		fmt.Println("enqueue:", err)
		return
	}
	<-ran
	// Output:
	// job remind-42 attempt 1: {"order":"42"}
}
