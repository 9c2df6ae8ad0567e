package admin_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromeEnv names the Chromium or Chrome binary the browser tests drive,
// instead of Debian's chromium-headless-shell.
const chromeEnv = "ZERODQ_CHROME"

// screenshotsEnv names a directory the browser tests write the README's
// screenshots into (overview.png, job.png), relative to the module's root
// unless absolute; unset, they write nothing.
const screenshotsEnv = "ZERODQ_SCREENSHOTS"

// chromePath finds the browser: $ZERODQ_CHROME, else the binary of Debian's
// chromium-headless-shell package (its /usr/bin entry is a shell wrapper that
// would outlive a killed browser), else chromium-headless-shell on PATH.
func chromePath() (string, error) {
	if p := os.Getenv(chromeEnv); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", chromeEnv, p, err)
		}
		return p, nil
	}
	const debian = "/usr/lib/chromium/chromium-headless-shell"
	if _, err := exec.LookPath(debian); err == nil {
		return debian, nil
	}
	return exec.LookPath("chromium-headless-shell")
}

// browser is one headless Chromium shared by the subtests of a test, each
// driving a tab of its own.
type browser struct {
	ctx context.Context // the browser's first tab, parent of the others
}

// startBrowser launches the headless browser for t and its subtests, and
// stops it when t ends. A missing browser fails the test with the way to
// install it: the suite skips nothing.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := chromePath()
	if err != nil {
		t.Fatalf("no headless Chromium for the browser tests (%v): run scripts/install-browser.sh "+
			"(make browser), or set %s to a Chromium or Chrome binary", err, chromeEnv)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 860),
		// No user-data-dir: chromedp makes a temporary one and removes it.
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return &browser{ctx: ctx}
}

// tab is a browser tab of one test, with a record of what its pages did.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base *url.URL // the dashboard server: every request must go there
	rec  *pageRecord
	// refuse has the tab answer no to the pages' confirm() dialogs.
	refuse atomic.Bool
}

// shots numbers the failure screenshots, so that a test's tabs keep apart.
var shots atomic.Int64

// pageRecord collects, from the tab's events, every URL it requested and
// every console error, uncaught exception, browser log error and Content
// Security Policy violation.
type pageRecord struct {
	mu       sync.Mutex
	requests []string
	problems []string
	dialogs  []string
}

func (r *pageRecord) listen(ev any) {
	// This runs in the tab's message loop: record and return.
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		r.requests = append(r.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			r.problem("console.%s(%s)", ev.Type, consoleArgs(ev.Args))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		r.problem("exception at %s:%d: %s", d.URL, d.LineNumber+1, text)
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level == log.EntryLevelError || e.Source == log.EntrySourceSecurity || e.Source == log.EntrySourceViolation {
			r.problem("%s (browser log, %s): %s", e.URL, e.Source, e.Text)
		}
	}
}

// problem records a problem, cut to a line's length (Chromium's CSP
// messages run to several hundred characters).
func (r *pageRecord) problem(format string, args ...any) {
	p := fmt.Sprintf(format, args...)
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	r.problems = append(r.problems, p)
}

func consoleArgs(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, ", ")
}

// reportViolations turns every Content Security Policy violation of a page
// into a console error the record sees, whatever the browser logs itself.
// Scripts added through the protocol run outside the page's policy.
const reportViolations = `document.addEventListener('securitypolicyviolation', function (e) {
	console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') +
		' at ' + e.sourceFile + ':' + e.lineNumber);
});`

// tabOptions adjust a tab before its first page.
type tabOptions struct {
	user, password string // basic auth sent with every request, unless empty
	dark           bool   // emulate prefers-color-scheme: dark
}

// newTab opens a tab for t whose requests carry o's credentials; when t
// fails, the page it shows is saved as a screenshot (and its HTML) in a
// directory named in the log.
func (b *browser) newTab(t *testing.T, base string, o tabOptions) *tab {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	rec := &pageRecord{}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithListener(rec.listen))
	tb := &tab{t: t, ctx: ctx, base: u, rec: rec}
	t.Cleanup(func() {
		if t.Failed() {
			tb.saveFailure()
		}
		cancel()
	})
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
				page.AddScriptToEvaluateOnNewDocumentParams{Source: reportViolations})
			return err
		}),
	}
	if o.user != "" {
		auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(o.user+":"+o.password))
		steps = append(steps, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
				network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}})
			return err
		}))
	}
	if o.dark {
		steps = append(steps, tb.colorScheme("dark"))
	}
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	tb.acceptDialogs()
	return tb
}

// acceptDialogs answers every confirm() the pages ask, yes as an operator
// clicking an action would (no while refuse is set), and records its
// message.
func (tb *tab) acceptDialogs() {
	dialogs := chromedp.Events(tb.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.rec.mu.Lock()
			tb.rec.dialogs = append(tb.rec.dialogs, ev.Message)
			tb.rec.mu.Unlock()
			accept := !tb.refuse.Load()
			_, _ = chromedp.Call(tb.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
		}
	}()
}

// dialogs are the messages of the dialogs the tab's pages opened so far.
func (tb *tab) dialogs() []string {
	tb.rec.mu.Lock()
	defer tb.rec.mu.Unlock()
	return slices.Clone(tb.rec.dialogs)
}

// colorScheme emulates the system's prefers-color-scheme.
func (tb *tab) colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// open loads path (relative to the dashboard's base URL) and waits for it,
// failing t unless the server answered 200.
func (tb *tab) open(path string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(tb.url(path)))
	if err != nil {
		tb.t.Fatalf("loading %s: %v", path, err)
	}
	if resp.Status != 200 {
		tb.t.Fatalf("loading %s: status %d %s", path, resp.Status, resp.StatusText)
	}
}

// url resolves path against the dashboard's base URL.
func (tb *tab) url(path string) string {
	ref, err := url.Parse(path)
	if err != nil {
		tb.t.Fatal(err)
	}
	return tb.base.ResolveReference(ref).String()
}

// do runs actions in the tab, failing t on an error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value,
// failing t on an error.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := tryEval[T](tb, expr)
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func tryEval[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, func(p *runtime.EvaluateParams) {
		p.AwaitPromise = ptr(true)
	}))
}

// await evaluates a JavaScript condition until it is true, failing t with
// the message unless it is within timeout. It polls from the test, since the
// page's Content Security Policy forbids the string evaluation chromedp's own
// Poll uses.
func (tb *tab) await(timeout time.Duration, cond string, format string, args ...any) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		var ok bool
		ok, err = tryEval[bool](tb, cond)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-tick.C:
		case <-tb.ctx.Done():
			tb.t.Fatalf("tab closed while waiting for %s", cond)
		}
	}
	if err != nil {
		tb.t.Fatalf("%s: not within %v (%s: %v)", fmt.Sprintf(format, args...), timeout, cond, err)
	}
	tb.t.Fatalf("%s: not within %v (%s)", fmt.Sprintf(format, args...), timeout, cond)
}

// screenshot captures the whole page as PNG.
func (tb *tab) screenshot() ([]byte, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.FullScreenshot(100))
}

// saveReadmeShot writes the page's screenshot as name into the directory
// $ZERODQ_SCREENSHOTS names, when it is set.
func (tb *tab) saveReadmeShot(name string) {
	tb.t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return
	}
	png, err := tb.screenshot()
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(moduleRoot(tb.t), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot written: %s", p)
}

// moduleRoot is the directory of go.mod above the test's working
// directory (go test runs a package's tests in its own directory).
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

var unsafePath = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// failureDir is where a failed test's screenshots go: outside the tree and
// outside t.TempDir, which is removed when the test ends.
func failureDir(t *testing.T) string {
	return filepath.Join(os.TempDir(), "zerodq-browser-"+unsafePath.ReplaceAllString(t.Name(), "_"))
}

// saveFailure saves the page the failed test left as a screenshot and its
// HTML, and logs where.
func (tb *tab) saveFailure() {
	if tb.ctx.Err() != nil {
		return
	}
	dir := failureDir(tb.t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Logf("no screenshot: %v", err)
		return
	}
	name := filepath.Join(dir, "failure-"+strconv.FormatInt(shots.Add(1), 10))
	if png, err := tb.screenshot(); err != nil {
		tb.t.Logf("no screenshot: %v", err)
	} else if err := os.WriteFile(name+".png", png, 0o644); err == nil {
		tb.t.Logf("screenshot of the failed page: %s.png", name)
	}
	if html, err := tryEval[string](tb, `document.documentElement.outerHTML`); err == nil {
		_ = os.WriteFile(name+".html", []byte(html), 0o644)
	}
	loc, _ := tryEval[string](tb, `location.href`)
	tb.t.Logf("the failed page was %s; the tab requested %q", loc, tb.requests())
}

func (tb *tab) requests() []string {
	tb.rec.mu.Lock()
	defer tb.rec.mu.Unlock()
	return append([]string(nil), tb.rec.requests...)
}

func (tb *tab) problems() []string {
	tb.rec.mu.Lock()
	defer tb.rec.mu.Unlock()
	return append([]string(nil), tb.rec.problems...)
}

// foreignRequests lists the requests the tab made to any host but the
// dashboard's (data: URLs are no requests to a host).
func (tb *tab) foreignRequests() []string {
	var out []string
	for _, r := range tb.requests() {
		u, err := url.Parse(r)
		if err != nil {
			out = append(out, r)
			continue
		}
		if u.Scheme == "data" || u.Scheme == "blob" {
			continue
		}
		if u.Scheme != tb.base.Scheme || u.Host != tb.base.Host {
			out = append(out, r)
		}
	}
	return out
}

// rgb parses a computed CSS color, "rgb(r, g, b)" or "rgba(r, g, b, a)".
func rgb(css string) (r, g, b, a float64, err error) {
	m := regexp.MustCompile(`^rgba?\(\s*([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:\s*[,/]\s*([\d.]+))?\s*\)$`).FindStringSubmatch(css)
	if m == nil {
		return 0, 0, 0, 0, errors.New("not an rgb() color: " + css)
	}
	v := make([]float64, 4)
	v[3] = 1
	for i, s := range m[1:] {
		if s == "" {
			continue
		}
		if v[i], err = strconv.ParseFloat(s, 64); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	return v[0], v[1], v[2], v[3], nil
}

// luminance is the WCAG relative luminance of an sRGB color (0 black, 1
// white).
func luminance(r, g, b float64) float64 {
	lin := func(c float64) float64 {
		c /= 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}

func ptr[T any](v T) *T { return &v }
