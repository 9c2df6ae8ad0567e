// Package dq gives go-zero services distributed delayed and scheduled jobs:
// "close this unpaid order in 30 minutes", "send the reminder at 09:00".
//
// Each job is written to several beanstalkd nodes (Replicas, default 3), so a
// node can die without losing it, and Redis makes sure its handler runs once
// although several copies exist. A job fires at its due time to the
// millisecond, never early; a handler that fails is retried with backoff and
// ends in the dead letter (a buried copy) after MaxRetries.
//
// Using it takes four steps. A Dq section in the service's yaml:
//
//	Dq:
//	  Beanstalks:
//	    - { Endpoint: 127.0.0.1:11300, Tube: orders }
//	    - { Endpoint: 127.0.0.1:11301, Tube: orders }
//	    - { Endpoint: 127.0.0.1:11302, Tube: orders }
//	  Redis: { Host: 127.0.0.1:6379, Type: node }
//
// A field of type DqConf in the service's config:
//
//	type Config struct {
//		rest.RestConf
//		Dq dq.DqConf
//	}
//
// A Producer in the ServiceContext, used from the logic layer:
//
//	svcCtx.Producer = dq.MustNewProducer(c.Dq)
//	id, err := l.svcCtx.Producer.DelayCtx(l.ctx, body, 30*time.Minute, dq.WithID("cancel-"+orderID))
//
// And a Consumer in the service group, beside the REST server:
//
//	group := service.NewServiceGroup()
//	group.Add(server)
//	group.Add(dq.MustNewConsumer(c.Dq, dq.WithHandle(func(ctx context.Context, body []byte) error {
//		job, _ := dq.JobFromContext(ctx)
//		return cancelOrder(ctx, job.ID, body)
//	})))
//	group.Start()
//
// Delivery is at-least-once and execution exactly-once across a job's
// copies: a handler runs again only when an earlier run failed, timed out or
// was interrupted (a crash, a lost lease, Stop). Handlers should be
// idempotent for that case.
package dq
