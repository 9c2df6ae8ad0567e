// Command demo shows zerodq working: it runs the order example against three
// beanstalkd nodes and a Redis (those answering at the addresses of the
// example's config, or servers it starts on free loopback ports), plays a
// scripted scenario of orders through the HTTP API, prints which job fired
// when, and exits non-zero if a paid order was cancelled or an unpaid one
// was not cancelled at its due time. It prints the address of the service's
// dashboard and the demo user's password; -keep leaves both up after the
// scenario. make demo runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zerodq/zerodq/examples/order/internal/demo"
)

func main() {
	configFile := flag.String("f", "examples/order/etc/order-api.yaml",
		"the order service's config; the demo uses the servers it names that answer")
	service := flag.String("service", "", "a built order service binary (default: build one)")
	timeout := flag.Duration("timeout", 60*time.Second, "bound on the scenario")
	keep := flag.Bool("keep", false, "keep the service and its dashboard running after the scenario, until interrupted")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := demo.Run(ctx, demo.Options{
		Out:        os.Stdout,
		ConfigFile: *configFile,
		ServiceBin: *service,
		Timeout:    *timeout,
		Keep:       *keep,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(1)
	}
}
