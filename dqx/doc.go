// Package dqx builds periodic and typed jobs on package dq's public API.
//
// Periodic jobs: a Scheduler is a go-zero service.Service that every replica
// of a service runs, with no leader. Each fire time of a cron entry becomes
// one dq job, under an ID that the replicas agree on in Redis, written ahead
// of time, so that N replicas run each fire once and a restart misses
// nothing:
//
//	type Config struct {
//		service.ServiceConf
//		Dq   dq.DqConf
//		Cron dqx.CronConf
//	}
//
//	# etc/app.yaml
//	Cron:
//	  Entries:
//	    - { Name: report, Spec: "0 0 2 * * *", TimeZone: Asia/Shanghai }
//	    - { Name: sweep, Spec: "@every 30s", Body: "all", Missed: once }
//
//	mux := dqx.NewMux()
//	mux.HandleCron("report", dq.WithHandle(report))
//	group.Add(dqx.MustNewScheduler(c.Dq, c.Cron))
//	group.Add(dq.MustNewConsumer(c.Dq, mux))
//
// Typed jobs: a TypedProducer encodes values of a Go type into job bodies
// (JSON unless WithCodec says otherwise) and marks them with a job type;
// Handle decodes them back for a handler, and a Mux routes the jobs of one
// tube to the handler of their type:
//
//	orders := dqx.NewTypedProducer[Order](producer, "order.created")
//	id, err := orders.Enqueue(ctx, Order{ID: 42}, 30*time.Minute)
//
//	mux.Handle("order.created", dqx.Handle(func(ctx context.Context, o Order) error { ... }))
package dqx
