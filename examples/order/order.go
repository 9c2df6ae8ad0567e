// Command order is a go-zero REST service that cancels unpaid orders with
// zerodq: POST /orders schedules an order's cancellation, POST
// /orders/{id}/pay revokes it, GET /orders/{id} shows both.
//
// The API process also serves zerodq's dashboard under /zerodq, read-only
// and behind basic auth (the Dashboard section of its config).
//
// By default one process serves the API and runs the cancellation worker in
// the same service group. -mode api or -mode worker runs one of them, for
// separate deployments; the order store of this example is in memory, so the
// two halves only share orders when the store is replaced by a database.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"
	"github.com/zeromicro/go-zero/rest"
	"github.com/zeromicro/go-zero/rest/httpx"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx/admin"
	"github.com/zerodq/zerodq/examples/order/internal/config"
	"github.com/zerodq/zerodq/examples/order/internal/handler"
	"github.com/zerodq/zerodq/examples/order/internal/mqs"
	"github.com/zerodq/zerodq/examples/order/internal/svc"
)

var (
	configFile = flag.String("f", "etc/order-api.yaml", "the config file")
	mode       = flag.String("mode", "all", "what this process runs: all, api (REST only) or worker (cancellations only)")
)

func main() {
	flag.Parse()
	api, worker := *mode == "all" || *mode == "api", *mode == "all" || *mode == "worker"
	if !api && !worker {
		fmt.Fprintf(os.Stderr, "order: -mode must be all, api or worker, not %q\n", *mode)
		os.Exit(2)
	}

	var c config.Config
	conf.MustLoad(*configFile, &c)

	var server *rest.Server
	if api {
		server = rest.MustNewServer(c.RestConf)
	} else {
		c.MustSetUp()
	}
	ctx := svc.NewServiceContext(c)
	defer ctx.Producer.Close()

	if api {
		handler.RegisterHandlers(server, ctx)
		httpx.SetErrorHandlerCtx(handler.ErrorHandler)

		// The dashboard looks at the queue through an Inspector of its own.
		in, err := dq.NewInspector(c.Dq)
		logx.Must(err)
		defer in.Close()
		dash, err := admin.Mount(server, c.Dashboard, in)
		logx.Must(err)
		defer dash.Close()
		fmt.Printf("Starting server at %s:%d...\n", c.Host, c.Port)
	}

	group := service.NewServiceGroup()
	defer group.Stop()
	if api {
		group.Add(server)
	}
	if worker {
		group.Add(dq.MustNewConsumer(c.Dq, mqs.NewCancelOrder(ctx)))
	}
	group.Start()
}
