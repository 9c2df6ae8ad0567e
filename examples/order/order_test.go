package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/stores/redis"
	"golang.org/x/crypto/bcrypt"

	"github.com/zerodq/zerodq/dqx/dqtest"
	"github.com/zerodq/zerodq/examples/order/internal/config"
	"github.com/zerodq/zerodq/examples/order/internal/demo"
	"github.com/zerodq/zerodq/examples/order/internal/types"
)

func TestMain(m *testing.M) { dqtest.Main(m) }

// dueSlack covers the due time being compared in whole milliseconds by Redis.
const dueSlack = time.Millisecond

// TestOrderService runs the order service binary against real beanstalkd
// nodes and Redis and drives it over HTTP.
func TestOrderService(t *testing.T) {
	env := dqtest.Shared(t)
	ctx := context.Background()
	bin, err := demo.Build(ctx, t.TempDir())
	require.NoError(t, err)
	client, _ := startService(t, bin, env, 0)

	t.Run("UnpaidOrderIsCancelledAtItsDueTime", func(t *testing.T) {
		t.Parallel()
		o, err := client.Create(ctx, types.CreateOrderReq{Id: "unpaid", Item: "book", Amount: 1999, CancelAfterMs: 1000})
		require.NoError(t, err)
		require.Equal(t, "pending", o.State)
		require.Equal(t, "cancel-unpaid", o.CancelJobId)
		require.Equal(t, "scheduled", o.JobState)

		o = awaitState(t, client, "unpaid", "cancelled", 6*time.Second)
		due, fired := parseTime(t, o.CancelDueAt), parseTime(t, o.CancelledAt)
		require.False(t, fired.Before(due.Add(-dueSlack)), "fired %s before due %s", o.CancelledAt, o.CancelDueAt)
		require.Less(t, fired.Sub(due), time.Second, "fired %s, due %s", o.CancelledAt, o.CancelDueAt)
		require.Equal(t, "fired", o.JobState)
		require.Equal(t, 1, o.CancelAttempt)

		_, err = client.Pay(ctx, "unpaid")
		requireStatus(t, err, http.StatusConflict)
		o, err = client.Get(ctx, "unpaid")
		require.NoError(t, err)
		require.Equal(t, "cancelled", o.State)
	})

	t.Run("PaidOrderIsNeverCancelled", func(t *testing.T) {
		t.Parallel()
		o, err := client.Create(ctx, types.CreateOrderReq{Id: "paid", Item: "pen", Amount: 150, CancelAfterMs: 1000})
		require.NoError(t, err)
		due := parseTime(t, o.CancelDueAt)

		o, err = client.Pay(ctx, "paid")
		require.NoError(t, err)
		require.Equal(t, "paid", o.State)
		require.Equal(t, "revoked", o.JobState)

		// Nothing is supposed to happen: watch the order until well past
		// its due time.
		for time.Now().Before(due.Add(1500 * time.Millisecond)) {
			o, err = client.Get(ctx, "paid")
			require.NoError(t, err)
			require.Equal(t, "paid", o.State)
			require.Equal(t, "revoked", o.JobState, "the revoked job ran")
			time.Sleep(50 * time.Millisecond) // polling pace while nothing may change
		}

		o, err = client.Pay(ctx, "paid")
		require.NoError(t, err, "paying twice is not an error")
		require.Equal(t, "paid", o.State)
	})

	t.Run("RetriedCreateKeepsTheFirstOrderAndItsDueTime", func(t *testing.T) {
		t.Parallel()
		first, err := client.Create(ctx, types.CreateOrderReq{Id: "retried", Item: "cup", Amount: 500, CancelAfterMs: 1000})
		require.NoError(t, err)
		again, err := client.Create(ctx, types.CreateOrderReq{Id: "retried", Item: "cup", Amount: 500, CancelAfterMs: 60000})
		require.NoError(t, err)
		require.Equal(t, first, again)

		o := awaitState(t, client, "retried", "cancelled", 6*time.Second)
		require.Equal(t, 1, o.CancelAttempt)
		require.Less(t, parseTime(t, o.CancelledAt).Sub(parseTime(t, first.CancelDueAt)), time.Second,
			"the job kept the first request's due time")
	})

	t.Run("CreateWithTheIDOfAnotherOrderConflicts", func(t *testing.T) {
		t.Parallel()
		_, err := client.Create(ctx, types.CreateOrderReq{Id: "taken", Item: "cup", Amount: 500})
		require.NoError(t, err)
		_, err = client.Create(ctx, types.CreateOrderReq{Id: "taken", Item: "plate", Amount: 700})
		requireStatus(t, err, http.StatusConflict)
	})

	t.Run("BadRequestsAreRejected", func(t *testing.T) {
		t.Parallel()
		_, err := client.Get(ctx, "nobody")
		requireStatus(t, err, http.StatusNotFound)
		_, err = client.Pay(ctx, "nobody")
		requireStatus(t, err, http.StatusNotFound)
		for _, req := range []types.CreateOrderReq{
			{Item: "book", Amount: 0},
			{Item: "", Amount: 10},
			{Id: "no spaces", Item: "book", Amount: 10},
			{Item: "book", Amount: 10, CancelAfterMs: -1},
		} {
			_, err := client.Create(ctx, req)
			requireStatus(t, err, http.StatusBadRequest)
		}
	})

	t.Run("ReadmeCurlCommandsRunAsShown", func(t *testing.T) {
		t.Parallel()
		readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
		require.NoError(t, err)
		cmds := curlCommands(string(readme))
		require.NotEmpty(t, cmds, "README shows how to drive the example with curl")
		for _, cmd := range cmds {
			runCurl(t, client.URL, cmd)
		}
	})

	t.Run("DevServerShowsTheMetricsOfACancelledOrder", func(t *testing.T) {
		t.Parallel()
		devPort, err := demo.FreePort()
		require.NoError(t, err)
		// A service of its own: its tube is the metrics' label, untouched by
		// the other subtests.
		client, tube := startService(t, bin, env, devPort)
		_, err = client.Create(ctx, types.CreateOrderReq{Id: "watched", Item: "lamp", Amount: 900, CancelAfterMs: 500})
		require.NoError(t, err)
		awaitState(t, client, "watched", "cancelled", 6*time.Second)

		// The consumer counts a job once Redis has recorded it done, just
		// after the handler cancelled the order: poll until it has.
		want := []struct {
			name   string
			labels map[string]string
		}{
			{"zerodq_producer_jobs_total", map[string]string{"tube": tube, "result": "ok"}},
			{"zerodq_consumer_jobs_total", map[string]string{"tube": tube, "outcome": "ok"}},
			{"zerodq_consumer_lateness_ms_count", map[string]string{"tube": tube}},
			{"zerodq_consumer_handler_duration_ms_count", map[string]string{"tube": tube}},
		}
		url := "http://127.0.0.1:" + strconv.Itoa(devPort) + "/metrics"
		var page string
		counted := dqtest.Await(5*time.Second, func() bool {
			page = fetchMetrics(t, url)
			for _, w := range want {
				if v, ok := metricValue(page, w.name, w.labels); !ok || v < 1 {
					return false
				}
			}
			return true
		})
		require.True(t, counted, "want %+v of tube %s on %s; its zerodq samples:\n%s", want, tube, url, zerodqLines(page))
	})

	t.Run("DashboardAnswersTheDemoUserOnlyAndRefusesActions", func(t *testing.T) {
		t.Parallel()
		page := client.URL + demo.DashboardPath
		dashboardStatus(t, http.MethodGet, page, "", "", http.StatusUnauthorized)
		dashboardStatus(t, http.MethodGet, page, demo.DashboardUser, "not-the-password", http.StatusUnauthorized)
		body := dashboardStatus(t, http.MethodGet, page, demo.DashboardUser, demo.DashboardPassword, http.StatusOK)
		require.Contains(t, body, `data-actions="off"`, "the example's dashboard is read-only")
		dashboardStatus(t, http.MethodGet, client.URL+demo.DashboardPath+"api/overview",
			demo.DashboardUser, demo.DashboardPassword, http.StatusOK)
		// Read-only: an action, same origin and authenticated, is refused.
		dashboardStatus(t, http.MethodPost, client.URL+demo.DashboardPath+"api/pause",
			demo.DashboardUser, demo.DashboardPassword, http.StatusForbidden)
	})

	t.Run("DemoPassesAgainstServersAlreadyListening", func(t *testing.T) {
		t.Parallel()
		cfg := filepath.Join(t.TempDir(), "order-api.yaml")
		require.NoError(t, demo.WriteConfig(cfg, demo.ServiceConfig{
			Port: 8888, Beanstalks: env.Endpoints(), Tube: "orders",
			Redis: redis.RedisConf{Host: env.Redis.Addr(), Type: redis.NodeType}, KeyPrefix: "zerodq",
		}))
		var out bytes.Buffer
		err := demo.Run(ctx, demo.Options{
			Out:        &out,
			ConfigFile: cfg,
			ServiceBin: bin,
			Timeout:    30 * time.Second,
			Scenario: []demo.Step{
				{ID: "1", CancelAfter: time.Second, PayLate: true},
				{ID: "2", CancelAfter: 1200 * time.Millisecond, PayAfter: 300 * time.Millisecond},
				{ID: "3", CancelAfter: 1500 * time.Millisecond, RetryCreate: true},
			},
		})
		require.NoError(t, err, out.String())
		report := out.String()
		require.Contains(t, report, "(already running)")
		require.NotContains(t, report, "(started;")
		for _, id := range []string{"1", "3"} {
			require.Regexp(t, `order `+id+`  due \d\d:\d\d:\d\d\.\d{3}  fired \d\d:\d\d:\d\d\.\d{3}  late [0-9.]+ms  -> cancelled`, report)
		}
		require.Contains(t, report, "order 2  due")
		require.Contains(t, report, "still paid; job revoked, never ran")
		require.Contains(t, report, "cancelled 2 of 2 unpaid orders at their due time; paid 1, of which cancelled 0")
		require.Contains(t, report, "PASS")
		require.Contains(t, report, "/zerodq/ (read-only), user "+demo.DashboardUser+", password "+demo.DashboardPassword)
	})
}

// TestExampleConfigMountsTheDashboardReadOnlyForTheDemoUser loads the
// example's own config: the dashboard is read-only and its one user is the
// demo user, whose password the demo prints.
func TestExampleConfigMountsTheDashboardReadOnlyForTheDemoUser(t *testing.T) {
	t.Parallel()
	var c config.Config
	require.NoError(t, conf.Load(filepath.Join("etc", "order-api.yaml"), &c))
	require.Equal(t, 8888, c.Port, "the service's own sections load beside the dashboard's")
	require.False(t, c.Dashboard.Actions)
	require.Equal(t, strings.TrimSuffix(demo.DashboardPath, "/"), c.Dashboard.Prefix)
	require.Len(t, c.Dashboard.Users, 1)
	hash := c.Dashboard.Users[demo.DashboardUser]
	require.Equal(t, demo.DashboardHash, hash)
	require.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte(demo.DashboardPassword)))
}

// dashboardStatus sends a request to the dashboard as user (none if empty),
// from the dashboard's own origin, requires status and returns the body.
func dashboardStatus(t *testing.T, method, url, user, password string, status int) string {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", "http://"+req.URL.Host)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("X-Requested-With", "zerodq")
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "%s %s as %q: %s", method, url, user, body)
	if status == http.StatusUnauthorized {
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic", "a browser asks for the password")
	}
	return string(body)
}

// startService runs bin on env with a tube and key prefix of the test's own,
// and a DevServer on devPort unless it is 0, and stops it (SIGTERM, which must
// end it cleanly) when the test ends. It returns a client and the tube.
func startService(t *testing.T, bin string, env *dqtest.Servers, devPort int) (*demo.Client, string) {
	t.Helper()
	dir := t.TempDir()
	port, err := demo.FreePort()
	require.NoError(t, err)
	name := dqtest.TestName(t)
	cfg := filepath.Join(dir, "order-api.yaml")
	require.NoError(t, demo.WriteConfig(cfg, demo.ServiceConfig{
		Port: port, Beanstalks: env.Endpoints(), Tube: name,
		Redis: redis.RedisConf{Host: env.Redis.Addr(), Type: redis.NodeType}, KeyPrefix: name,
		DevServerPort: devPort,
	}))
	svc, err := demo.StartService(context.Background(), bin, cfg, filepath.Join(dir, "order-api.log"), port)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, svc.Stop())
		if t.Failed() {
			t.Logf("service log:\n%s", svc.LogTail(40))
		}
	})
	return demo.NewClient(svc.URL), name
}

// fetchMetrics returns the Prometheus text page at url, or "" while the
// DevServer, started in the background, does not answer yet.
func fetchMetrics(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	return string(body)
}

var (
	sampleRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// metricValue returns the value of the sample of the Prometheus text page
// named name whose labels include labels.
func metricValue(page, name string, labels map[string]string) (float64, bool) {
	for _, line := range strings.Split(page, "\n") {
		m := sampleRe.FindStringSubmatch(line)
		if m == nil || m[1] != name {
			continue
		}
		have := map[string]string{}
		for _, l := range labelRe.FindAllStringSubmatch(m[2], -1) {
			have[l[1]] = l[2]
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		return v, err == nil
	}
	return 0, false
}

// zerodqLines keeps zerodq's samples of a metrics page, for a failure message.
func zerodqLines(page string) string {
	var out []string
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "zerodq_") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func awaitState(t *testing.T, c *demo.Client, id, state string, timeout time.Duration) types.OrderResp {
	t.Helper()
	var o types.OrderResp
	dqtest.Eventually(t, timeout, func() bool {
		var err error
		o, err = c.Get(context.Background(), id)
		require.NoError(t, err)
		return o.State == state
	}, "order %s to become %s (last seen %+v)", id, state, &o)
	return o
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := demo.ParseTime(s)
	require.NoError(t, err)
	require.False(t, tm.IsZero())
	return tm
}

func requireStatus(t *testing.T, err error, status int) {
	t.Helper()
	var apiErr *demo.APIError
	require.True(t, errors.As(err, &apiErr), "want HTTP %d, got %v", status, err)
	require.Equal(t, status, apiErr.Status, apiErr.Body)
}

var fence = regexp.MustCompile("(?ms)^```(\\w*)\\n(.*?)^```")

// curlCommands returns the curl lines of the README's shell blocks.
func curlCommands(readme string) []string {
	var cmds []string
	for _, m := range fence.FindAllStringSubmatch(readme, -1) {
		if m[1] != "sh" && m[1] != "bash" {
			continue
		}
		for _, line := range strings.Split(m[2], "\n") {
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "curl ") {
				cmds = append(cmds, line)
			}
		}
	}
	return cmds
}

// runCurl performs a README curl command against the service at baseURL
// (in place of the localhost:8888 of the example's config) and requires a
// 200. It understands the options the README uses: -s, -X and -d.
func runCurl(t *testing.T, baseURL, cmd string) {
	t.Helper()
	args := shellWords(t, cmd)
	method, url := http.MethodGet, ""
	var body io.Reader
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "-s":
		case "-X":
			i++
			method = args[i]
		case "-d":
			i++
			body = strings.NewReader(args[i])
			if method == http.MethodGet {
				method = http.MethodPost
			}
		default:
			require.Empty(t, url, "%s: unknown curl option %q", cmd, args[i])
			url = args[i]
		}
	}
	require.True(t, strings.HasPrefix(url, "localhost:8888/"), "%s: the URL should be the example's localhost:8888", cmd)
	req, err := http.NewRequest(method, baseURL+strings.TrimPrefix(url, "localhost:8888"), body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s answered %s", cmd, out)
}

// shellWords splits a command line on blanks, honouring single quotes.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	require.False(t, quoted, "unbalanced quote in %q", line)
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
