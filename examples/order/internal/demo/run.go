package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zeromicro/go-zero/core/conf"

	"github.com/zerodq/zerodq/examples/order/internal/config"
	"github.com/zerodq/zerodq/examples/order/internal/model"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

// ErrFailed is returned by Run when the service did not do what the scenario
// expects; the output says what went wrong.
var ErrFailed = errors.New("demo: scenario failed")

const (
	// pollEvery is how often an order near or past its due time is read.
	pollEvery = 20 * time.Millisecond
	// pollAhead starts reading an order a little before it is due, so that
	// an early cancellation would be seen as early.
	pollAhead = 100 * time.Millisecond
	// paidWatch is how long past its due time a paid order is watched to
	// see that it stays paid.
	paidWatch = time.Second
	// maxLate is the lateness past which a cancellation does not count as
	// "at its due time".
	maxLate = time.Second
	// settleGrace is how long past the last due time the demo waits.
	settleGrace = 3 * time.Second
	// clockSlack covers Redis comparing due times in whole milliseconds.
	clockSlack = time.Millisecond
)

// Options configure Run.
type Options struct {
	// Out receives the report; os.Stdout if nil.
	Out io.Writer
	// ConfigFile is the service's yaml, read for the server addresses.
	ConfigFile string
	// ServiceBin is the order service binary; empty builds one.
	ServiceBin string
	// BuildFlags are extra go build flags for that build.
	BuildFlags []string
	// Scenario is the orders to run; DefaultScenario if empty.
	Scenario []Step
	// Timeout bounds the run up to the end of the scenario; 60 s if zero.
	Timeout time.Duration
	// Keep leaves the service and its dashboard running after the
	// scenario, until ctx ends (an interrupt), to look at the dashboard.
	Keep bool
}

// Run finds or starts the servers, starts the order service, plays the
// scenario through the HTTP API while printing what happens, prints a
// summary, stops what it started, and returns an error wrapping ErrFailed if
// a paid order was cancelled or an unpaid one was not cancelled at its due
// time.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if len(o.Scenario) == 0 {
		o.Scenario = DefaultScenario
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	var c config.Config
	if err := conf.Load(o.ConfigFile, &c); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	servers, err := PrepareServers(ctx, c.Dq)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer servers.Close()
	offset, uncertainty, err := redisOffset(ctx, servers.Redis)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	dir, err := os.MkdirTemp("", "zerodq-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.ServiceBin
	if bin == "" {
		if bin, err = Build(ctx, dir, o.BuildFlags...); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	name := "zerodq-demo-" + randomHex(4)
	cfgPath := filepath.Join(dir, "order-api.yaml")
	err = WriteConfig(cfgPath, ServiceConfig{
		Port: port, Beanstalks: servers.Beanstalks, Tube: name, Redis: servers.Redis, KeyPrefix: name,
	})
	if err != nil {
		return err
	}
	svc, err := StartService(ctx, bin, cfgPath, filepath.Join(dir, "order-api.log"), port)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	p := &player{
		out:         o.Out,
		client:      NewClient(svc.URL),
		svc:         svc,
		offset:      offset,
		uncertainty: uncertainty,
	}
	p.header(servers, svc, name, o.Scenario)
	playErr := p.play(ctx, o.Scenario)
	took := time.Since(start)
	if o.Keep && playErr == nil {
		p.printf("")
		p.printf("the service and its dashboard stay up at %s%s until interrupted (Ctrl-C)", svc.URL, DashboardPath)
		select {
		case <-outer.Done():
		case <-svc.Exited():
		}
	}
	stopErr := svc.Stop()
	if stopErr != nil {
		p.fail("service: %v", stopErr)
	}
	p.summary(took)
	if playErr != nil {
		return fmt.Errorf("demo: %w; service log:\n%s", playErr, svc.LogTail(30))
	}
	if len(p.failures) > 0 {
		return fmt.Errorf("%w: %s", ErrFailed, strings.Join(p.failures, "; "))
	}
	return nil
}

// order is what the player knows of one order of the scenario.
type order struct {
	step    Step
	created time.Time
	due     time.Time // the service's estimate, until the job fires
	payAt   time.Time
	payTry  bool
	paid    bool // a payment succeeded
	revoked bool // that payment revoked the job
	settled bool
}

type player struct {
	out         io.Writer
	client      *Client
	svc         *Service
	offset      time.Duration // Redis clock minus this host's
	uncertainty time.Duration

	orders      []*order
	cancelled   int
	unpaid      int
	paid        int
	revoked     int
	refused     int
	lateness    []time.Duration
	failures    []string
	paidWronged int
}

func (p *player) printf(format string, args ...any) {
	fmt.Fprintf(p.out, format+"\n", args...)
}

func (p *player) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.failures = append(p.failures, msg)
	p.printf("FAIL   %s", msg)
}

func (p *player) header(s *Servers, svc *Service, name string, scenario []Step) {
	paid := 0
	for _, st := range scenario {
		if st.PayAfter > 0 && st.PayAfter < st.CancelAfter {
			paid++
		}
	}
	p.printf("zerodq demo: orders are cancelled by a delayed job unless paid first")
	for _, n := range s.Notes {
		p.printf("  %s", n)
	}
	p.printf("  service order-api at %s (child process), tube and key prefix %s", svc.URL, name)
	p.printf("  dashboard %s%s (read-only), user %s, password %s", svc.URL, DashboardPath, DashboardUser, DashboardPassword)
	if p.offset.Abs() > time.Millisecond {
		p.printf("  times below are Redis time (this host's clock is %v behind it), the clock zerodq fires by", p.offset.Round(time.Millisecond))
	}
	p.printf("  %d orders, cancelled %v to %v after creation unless paid; %d get paid in time",
		len(scenario), minDelay(scenario), maxDelay(scenario), paid)
	p.printf("")
}

// play creates the orders, then reads the ones near or past their due time
// every pollEvery and pays the ones due for payment, until every order is
// settled or settleGrace after the last due time.
func (p *player) play(ctx context.Context, scenario []Step) error {
	for _, st := range scenario {
		if err := p.create(ctx, st); err != nil {
			return err
		}
	}
	last := slices.MaxFunc(p.orders, func(a, b *order) int { return a.due.Compare(b.due) })
	deadline := last.due.Add(settleGrace)

	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		pending := 0
		for _, o := range p.orders {
			if o.settled {
				continue
			}
			if err := p.advance(ctx, o); err != nil {
				return err
			}
			if !o.settled {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, o := range p.orders {
				if !o.settled && !o.paid {
					p.fail("order %s: not cancelled %v after its due time %s", o.step.ID, settleGrace, clock(o.due))
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.svc.Exited():
			return errors.New("the order service exited during the scenario")
		case <-tick.C:
		}
	}
}

func (p *player) create(ctx context.Context, st Step) error {
	req := types.CreateOrderReq{
		Id: st.ID, Item: "book-" + st.ID, Amount: 1000 + int64(len(p.orders)),
		CancelAfterMs: st.CancelAfter.Milliseconds(),
	}
	created := time.Now()
	resp, err := p.client.Create(ctx, req)
	if err != nil {
		return fmt.Errorf("create order %s: %w", st.ID, err)
	}
	due, err := ParseTime(resp.CancelDueAt)
	if err != nil {
		return err
	}
	o := &order{step: st, created: created, due: due}
	if st.PayAfter > 0 {
		o.payAt = created.Add(st.PayAfter)
	}
	p.orders = append(p.orders, o)
	if st.PayAfter == 0 || st.PayAfter >= st.CancelAfter {
		p.unpaid++
	}
	p.printf("order %s  created  %s due %s  (in %v)", st.ID, resp.CancelJobId, clock(due.Add(p.offset)), st.CancelAfter)

	if st.RetryCreate {
		again, err := p.client.Create(ctx, req)
		if err != nil {
			return fmt.Errorf("retried create of order %s: %w", st.ID, err)
		}
		if again.CancelJobId != resp.CancelJobId || again.CancelDueAt != resp.CancelDueAt || again.CreatedAt != resp.CreatedAt {
			p.fail("order %s: retried create changed the order: %+v then %+v", st.ID, resp, again)
		} else {
			p.printf("order %s  created again (a retried request)  -> same order, same job %s, nothing new enqueued",
				st.ID, again.CancelJobId)
		}
	}
	return nil
}

// advance pays o when its time has come and reads it once it is near its
// due time, settling it when its outcome is known.
func (p *player) advance(ctx context.Context, o *order) error {
	now := time.Now()
	if !o.payAt.IsZero() && !o.payTry && !now.Before(o.payAt) {
		o.payTry = true
		if err := p.pay(ctx, o); err != nil {
			return err
		}
	}
	if now.Before(o.due.Add(-pollAhead)) {
		return nil
	}

	resp, err := p.client.Get(ctx, o.step.ID)
	if err != nil {
		return fmt.Errorf("get order %s: %w", o.step.ID, err)
	}
	switch model.State(resp.State) {
	case model.StateCancelled:
		o.settled = true
		return p.onCancelled(ctx, o, resp)
	case model.StatePaid:
		if now.Before(o.due.Add(paidWatch)) {
			return nil
		}
		o.settled = true
		switch {
		case o.revoked && resp.JobState != string(model.JobRevoked):
			p.fail("order %s: its job was revoked but ran anyway (job %s)", o.step.ID, resp.JobState)
		case o.revoked:
			p.printf("order %s  due %s  passed  -> still paid; job revoked, never ran", o.step.ID, clock(o.due.Add(p.offset)))
		default:
			p.printf("order %s  due %s  passed  -> still paid; job %s", o.step.ID, clock(o.due.Add(p.offset)), resp.JobState)
		}
	}
	return nil
}

func (p *player) pay(ctx context.Context, o *order) error {
	resp, err := p.client.Pay(ctx, o.step.ID)
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		p.printf("order %s  payment refused: %v", o.step.ID, apiErr)
		return nil
	}
	if err != nil {
		return fmt.Errorf("pay order %s: %w", o.step.ID, err)
	}
	paidAt, err := ParseTime(resp.PaidAt)
	if err != nil {
		return err
	}
	o.paid = true
	o.revoked = resp.JobState == string(model.JobRevoked)
	p.paid++
	if o.revoked {
		p.revoked++
	}
	p.printf("order %s  paid %s  (%v before due)  -> job %s", o.step.ID, clock(paidAt.Add(p.offset)),
		o.due.Sub(paidAt).Round(time.Millisecond), resp.JobState)
	return nil
}

// onCancelled reports a cancellation and checks it: the order was not paid,
// and the job fired at its due time, on the Redis clock.
func (p *player) onCancelled(ctx context.Context, o *order, resp types.OrderResp) error {
	due, err := ParseTime(resp.CancelDueAt)
	if err != nil {
		return err
	}
	fired, err := ParseTime(resp.CancelledAt)
	if err != nil {
		return err
	}
	fired = fired.Add(p.offset)
	late := fired.Sub(due)
	p.printf("order %s  due %s  fired %s  late %s  -> cancelled", o.step.ID, clock(due), clock(fired), ms(late))

	switch {
	case o.paid:
		p.paidWronged++
		p.fail("order %s: cancelled although paid", o.step.ID)
	case late < -(p.uncertainty + clockSlack):
		p.fail("order %s: cancelled %s early", o.step.ID, ms(-late))
	case late > maxLate:
		p.fail("order %s: cancelled %s late", o.step.ID, ms(late))
	default:
		p.cancelled++
		p.lateness = append(p.lateness, late)
	}

	if o.step.PayLate {
		_, err := p.client.Pay(ctx, o.step.ID)
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			p.fail("order %s: a payment after the cancellation was not refused (%v)", o.step.ID, err)
			return nil
		}
		p.refused++
		p.printf("order %s  paid after the cancellation  -> refused, %v", o.step.ID, apiErr)
	}
	return nil
}

func (p *player) summary(took time.Duration) {
	p.printf("")
	p.printf("summary  cancelled %d of %d unpaid orders at their due time; paid %d, of which cancelled %d; revoked %d jobs; refused %d late payments",
		p.cancelled, p.unpaid, p.paid, p.paidWronged, p.revoked, p.refused)
	if len(p.lateness) > 0 {
		l := slices.Clone(p.lateness)
		slices.Sort(l)
		p.printf("lateness (fired minus due) over %d cancellations: p50 %s  max %s", len(l), ms(percentile(l, 50)), ms(l[len(l)-1]))
	}
	verdict := "PASS"
	if len(p.failures) > 0 {
		verdict = fmt.Sprintf("FAIL (%d problems)", len(p.failures))
	}
	p.printf("%s in %v", verdict, took.Round(100*time.Millisecond))
}

// percentile returns the nearest-rank percentile of sorted values.
func percentile(sorted []time.Duration, pct int) time.Duration {
	rank := (pct*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

// ms writes a duration in milliseconds with a tenth below 10 ms.
func ms(d time.Duration) string {
	if d.Abs() < 10*time.Millisecond {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds())
}

func minDelay(s []Step) time.Duration {
	return slices.MinFunc(s, func(a, b Step) int { return int(a.CancelAfter - b.CancelAfter) }).CancelAfter
}

func maxDelay(s []Step) time.Duration {
	return slices.MaxFunc(s, func(a, b Step) int { return int(a.CancelAfter - b.CancelAfter) }).CancelAfter
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
