package dq_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeromicro/go-zero/core/service"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/dq"
)

func exampleConf() dq.DqConf {
	return dq.DqConf{
		Beanstalks: []dq.Beanstalk{
			{Endpoint: "127.0.0.1:11300", Tube: "orders"},
			{Endpoint: "127.0.0.1:11301", Tube: "orders"},
			{Endpoint: "127.0.0.1:11302", Tube: "orders"},
		},
		Redis: redis.RedisConf{Host: "127.0.0.1:6379", Type: redis.NodeType},
	}
}

// A producer schedules a job and can revoke it from any process.
func ExampleNewProducer() {
	p, err := dq.NewProducer(exampleConf())
	if err != nil {
		fmt.Println("no servers:", err)
		return
	}
	defer p.Close()

	ctx := context.Background()
	id, err := p.DelayCtx(ctx, []byte(`{"order":"42"}`), 30*time.Minute, dq.WithID("cancel-42"))
	if err != nil {
		fmt.Println("enqueue:", err)
		return
	}
	// The order was paid: the cancellation must not run.
	if err := p.RevokeCtx(ctx, id); errors.Is(err, dq.ErrRunning) || errors.Is(err, dq.ErrDone) {
		fmt.Println("too late:", err)
	}
}

// A consumer runs in the service group beside the service's servers.
func ExampleNewConsumer() {
	c, err := dq.NewConsumer(exampleConf(), dq.WithHandle(func(ctx context.Context, body []byte) error {
		job, _ := dq.JobFromContext(ctx)
		fmt.Printf("job %s attempt %d due %v\n", job.ID, job.Attempt, job.DueAt)
		return nil
	}))
	if err != nil {
		fmt.Println("no servers:", err)
		return
	}
	group := service.NewServiceGroup()
	group.Add(c)
	defer group.Stop()
	go group.Start()
}
