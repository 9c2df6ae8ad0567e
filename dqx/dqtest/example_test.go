package dqtest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/dqtest"
)

// Servers of its own for a program, or for a package's tests from TestMain:
// each test then takes a config with a tube and key prefix of its own.
func ExampleStartServers() {
	servers, err := dqtest.StartServers(dqtest.Options{Nodes: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer servers.Close()
	c := servers.Conf("orders")

	ran := make(chan string, 1)
	consumer := dq.MustNewConsumer(c, dq.WithHandle(func(ctx context.Context, body []byte) error {
		ran <- string(body)
		return nil
	}))
	go consumer.Start()
	defer consumer.Stop()

	producer := dq.MustNewProducer(c)
	defer producer.Close()
	if _, err := producer.DelayCtx(context.Background(), []byte("order 42"), 100*time.Millisecond); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ran:", <-ran)
	// Output:
	// ran: order 42
}
