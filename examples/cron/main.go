// Command cron is a go-zero service that runs periodic and typed zerodq jobs:
// a cron entry fires every 10 seconds on every replica's scheduler but runs
// once, and its handler enqueues one typed Reminder job per account, which a
// typed handler on the same tube receives as a struct.
//
// Run several copies against the same beanstalkd nodes and Redis: each fire
// and each reminder is printed by exactly one of them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
)

var configFile = flag.String("f", "etc/cron.yaml", "the config file")

// Config is the service's config: go-zero's service section, the queue and
// the cron entries.
type Config struct {
	service.ServiceConf
	Dq   dq.DqConf
	Cron dqx.CronConf
}

// Reminder is the typed job the cron entry fans out into.
type Reminder struct {
	Account string    `json:"account"`
	Fire    time.Time `json:"fire"`
}

// reminderType is the job type of Reminder jobs on the tube.
const reminderType = "billing.reminder"

func main() {
	flag.Parse()
	var c Config
	conf.MustLoad(*configFile, &c)
	c.MustSetUp()

	group, producer, err := newServices(c, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cron:", err)
		os.Exit(1)
	}
	defer producer.Close()
	defer group.Stop()
	fmt.Println("scheduler and consumer running; stop with Ctrl-C")
	group.Start()
}

// newServices builds the service group of one replica: the scheduler and a
// consumer whose mux routes the cron fires and the typed jobs. The caller
// closes the producer after the group has stopped.
func newServices(c Config, out io.Writer) (*service.ServiceGroup, dq.Producer, error) {
	producer, err := dq.NewProducer(c.Dq)
	if err != nil {
		return nil, nil, err
	}
	scheduler, err := dqx.NewScheduler(c.Dq, c.Cron, dqx.WithProducer(producer))
	if err != nil {
		_ = producer.Close()
		return nil, nil, err
	}

	b := &billing{out: out, reminders: dqx.NewTypedProducer[Reminder](producer, reminderType)}
	mux := dqx.NewMux()
	mux.HandleCron("remind-unpaid", dq.WithHandle(b.remindUnpaid))
	mux.HandleCron("nightly-report", dq.WithHandle(b.nightlyReport))
	mux.Handle(reminderType, dqx.Handle(b.sendReminder))
	consumer, err := dq.NewConsumer(c.Dq, mux)
	if err != nil {
		scheduler.Stop()
		_ = producer.Close()
		return nil, nil, err
	}

	group := service.NewServiceGroup()
	group.Add(scheduler)
	group.Add(consumer)
	return group, producer, nil
}

// billing holds the handlers.
type billing struct {
	out       io.Writer
	reminders *dqx.TypedProducer[Reminder]
}

// remindUnpaid runs once per fire of the remind-unpaid entry and enqueues a
// reminder per account. The reminder's ID is derived from the fire and the
// account, so a retry of this handler does not send a reminder twice.
func (b *billing) remindUnpaid(ctx context.Context, body []byte) error {
	fire, _ := dqx.FireFromContext(ctx)
	for _, account := range strings.Fields(string(body)) {
		id := "reminder-" + account + "-" + strconv.FormatInt(fire.At.UnixMilli(), 10)
		r := Reminder{Account: account, Fire: fire.At}
		if _, err := b.reminders.Enqueue(ctx, r, 0, dq.WithID(id)); err != nil {
			return err
		}
	}
	fmt.Fprintf(b.out, "fire remind-unpaid at %s\n", fire.At.UTC().Format(time.RFC3339))
	return nil
}

// nightlyReport runs once a night.
func (b *billing) nightlyReport(ctx context.Context, _ []byte) error {
	fire, _ := dqx.FireFromContext(ctx)
	fmt.Fprintf(b.out, "fire nightly-report at %s\n", fire.At.UTC().Format(time.RFC3339))
	return nil
}

// sendReminder receives a Reminder decoded from its job.
func (b *billing) sendReminder(ctx context.Context, r Reminder) error {
	fmt.Fprintf(b.out, "reminder for %s (fire %s)\n", r.Account, r.Fire.UTC().Format(time.RFC3339))
	return nil
}
