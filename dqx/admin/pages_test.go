package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestCronPageShowsNextFiresInTheirZoneAndPastFiresWithTheirRun runs a
// schedule with an entry every second and one at 02:30 in Shanghai: the
// page lists both, the Shanghai fires in Shanghai time, and the ticks that
// ran, each with its job.
func TestCronPageShowsNextFiresInTheirZoneAndPastFiresWithTheirRun(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	cc := dqx.CronConf{Lookahead: time.Second, Refresh: 250 * time.Millisecond, Entries: []dqx.CronEntry{
		{Name: "tick", Spec: "@every 1s"},
		{Name: "nightly", Spec: "0 30 2 * * *", TimeZone: "Asia/Shanghai", Missed: dqx.MissedRunOnce},
	}}
	var mu sync.Mutex
	ran := 0
	consumer(t, c, func(ctx context.Context, body []byte) error {
		mu.Lock()
		ran++
		mu.Unlock()
		return nil
	})
	sch, err := dqx.NewScheduler(c, cc)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sch.Start()
	}()
	t.Cleanup(func() {
		sch.Stop()
		wg.Wait()
	})
	in := inspector(t, c)
	ci, err := dqx.NewCronInspector(c, cc, dqx.WithDqInspector(in))
	require.NoError(t, err)
	t.Cleanup(func() { _ = ci.Close() })
	s := serve(t, authConf(), in, WithCron(ci))

	var v cronView
	dqtest.Eventually(t, 15*time.Second, func() bool {
		a := s.get(t, "/api/cron")
		if a.code != http.StatusOK || json.Unmarshal([]byte(a.body), &v) != nil || len(v.Entries) != 2 {
			return false
		}
		for _, p := range v.Entries[0].Past {
			if p.Verdict == dqx.FireRanOnce {
				return true
			}
		}
		return false
	}, "a tick ran and the cron API says so")
	require.True(t, v.Owner.Owns)
	require.Equal(t, "nightly", v.Entries[1].Name)
	require.Equal(t, "Asia/Shanghai", v.Entries[1].Zone)
	require.NotEmpty(t, v.Entries[1].Next)
	sh, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	next := v.Entries[1].Next[0].At.In(sh)
	require.Equal(t, 2, next.Hour())
	require.Equal(t, 30, next.Minute())

	a := s.get(t, "/cron")
	require.Equal(t, http.StatusOK, a.code, a.body)
	require.Contains(t, a.body, `data-page="cron"`)
	require.Contains(t, a.body, `<section class="cron-entry" data-entry="tick">`)
	require.Contains(t, a.body, `<section class="cron-entry" data-entry="nightly">`)
	require.Contains(t, a.body, "02:30:00 CST", "the nightly fire shown in its zone")
	require.Contains(t, a.body, `<tr data-verdict="`+dqx.FireRanOnce+`">`)
	require.Contains(t, a.body, `<span data-field="missed">once</span>`)
	require.Contains(t, s.get(t, "/").body, `href="/zerodq/cron"`, "the cron page is linked")
}

// TestBannerRaisesAnAlertForMalformedBodies puts a body that is no
// envelope in the queue's tube: once a consumer has counted it, the
// overview's banner names the "malformed" alert, in the page and over the
// event stream.
func TestBannerRaisesAnAlertForMalformedBodies(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	s := serve(t, authConf(), in)
	require.Contains(t, s.get(t, "/").body, `<div id="alerts"></div>`, "no alert on a quiet queue")
	consumer(t, c, func(ctx context.Context, body []byte) error { return nil })

	conn, err := beanstalk.DialTimeout("tcp", c.Beanstalks[0].Endpoint, time.Second)
	require.NoError(t, err)
	defer conn.Close()
	tube := beanstalk.NewTube(conn, c.Beanstalks[0].Tube)
	_, err = tube.Put([]byte("not an envelope"), 1, 0, time.Minute)
	require.NoError(t, err)

	ev := openEvents(t, s.url("/api/events"), true)
	ev.await(t, 15*time.Second, func(e event) bool {
		return e.name == "overview" && strings.Contains(e.data, `"name":"malformed"`)
	})
	a := s.get(t, "/")
	require.Contains(t, a.body, `<p class="alert" data-alert="malformed">`)
}

// TestEvaluateAlerts checks each alert against its threshold.
func TestEvaluateAlerts(t *testing.T) {
	t.Parallel()
	a := Config{}.withDefaults().Alerts
	lat := dq.Lateness{Count: 100, Min: time.Millisecond, Max: 40 * time.Second, Buckets: make([]int64, len(dq.LatenessBounds)+1)}
	lat.Buckets[len(lat.Buckets)-1] = 100
	names := func(as []alert) []string {
		var out []string
		for _, x := range as {
			out = append(out, x.Name)
		}
		return out
	}
	quiet := health{ratesKnown: true, rates: map[string]float64{"retry": 0.5, "dead": 0.05}, prodKnown: true}
	require.Empty(t, evaluate(a, quiet))
	loud := health{
		ratesKnown: true, rates: map[string]float64{"retry": 2, "dead": 1}, reserve: 3,
		consumers: []dq.ConsumerInfo{{Outcomes: map[string]int64{"malformed": 1}}},
		producers: []dq.ProducerInfo{{Nodes: map[string]dq.PutCounts{"n1:11300": {Uncertain: 1}}}},
		prodKnown: true, lateness: lat,
		stats: dq.Stats{Tubes: []dq.TubeStats{{Node: "n2:11300", Err: "dial: refused"}}},
	}
	require.Equal(t, []string{"retry-rate", "dead-rate", "malformed", "reserve-errors", "lateness", "copies-failed", "node-down"},
		names(evaluate(a, loud)))
	// Rates unknown (one sample so far): no rate alert, whatever the
	// counters say.
	loud.ratesKnown = false
	require.NotContains(t, names(evaluate(a, loud)), "retry-rate")
	// A negative threshold turns its alert off.
	a.RetryRate, a.Malformed = -1, -1
	loud.ratesKnown = true
	require.NotContains(t, names(evaluate(a, loud)), "retry-rate")
	require.NotContains(t, names(evaluate(a, loud)), "malformed")
}

// TestActionsOnShowButtonsAndRevokeAJob: with actions on, the pages offer
// the actions their rows allow, and revoking a waiting job from its page's
// route revokes it, audited with the user.
func TestActionsOnShowButtonsAndRevokeAJob(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	conf := authConf()
	conf.Actions = true
	s := serve(t, conf, in)
	id, err := in.EnqueueIn(t.Context(), []byte("later"), time.Hour)
	require.NoError(t, err)
	a := s.get(t, "/jobs?id="+id)
	require.Contains(t, a.body, `data-actions="on"`)
	require.Contains(t, a.body, `<button type="button" data-action="revoke" data-id="`+id+`">`)
	require.NotContains(t, a.body, `data-action="retry"`, "a waiting job is not retried")
	require.Contains(t, s.get(t, "/").body, `data-action="pause"`)

	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	a = s.do(t, http.MethodPost, "/api/jobs/"+id+"/revoke", "", true, same)
	require.Equal(t, http.StatusOK, a.code, a.body)
	j, err := in.Job(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, dq.StateRevoked, j.State)
	log, err := in.AuditLog(t.Context(), 10)
	require.NoError(t, err)
	require.Equal(t, testUser, log[0].Who)
	require.Equal(t, "revoke "+id, log[0].What)

	require.Equal(t, http.StatusBadRequest, s.do(t, http.MethodPost, "/api/jobs/no%20such%20id/revoke", "", true, same).code,
		"an ID no job can have")
	require.Equal(t, http.StatusBadRequest, s.do(t, http.MethodPost, "/api/dead/retry", `{}`, true, same).code,
		"no ids and no all=1 selects nothing, not everything")
	require.Equal(t, http.StatusBadRequest, s.do(t, http.MethodPost, "/api/dead/delete", `{"ids":["x"],"all":true}`, true, same).code)
}

// TestWithQueueAddsAQueueSelector serves two queues: the q parameter picks
// one, an unknown one is 404.
func TestWithQueueAddsAQueueSelector(t *testing.T) {
	t.Parallel()
	c1 := testConf(t)
	in1 := inspector(t, c1)
	c2 := c1
	c2.Beanstalks = append([]dq.Beanstalk(nil), c1.Beanstalks...)
	for i := range c2.Beanstalks {
		c2.Beanstalks[i].Tube += "-b"
	}
	in2 := inspector(t, c2)
	s := serve(t, authConf(), in1, WithQueue(in2))
	a := s.get(t, "/")
	require.Contains(t, a.body, `data-queue="`+in1.Queue()+`"`)
	require.Contains(t, a.body, `<option>`+in2.Queue()+`</option>`)
	var o overview
	require.NoError(t, json.Unmarshal([]byte(s.get(t, "/api/overview?q="+in2.Queue()).body), &o))
	require.Equal(t, in2.Queue(), o.Queue)
	require.Equal(t, http.StatusNotFound, s.get(t, "/api/overview?q=nope").code)
}
