package admin

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/dq"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/app.js static/app.css
var staticFS embed.FS

// pages are the dashboard's pages, each the layout with its own content.
var pages = parsePages()

var pageNames = []string{"overview", "nodes", "lateness", "jobs", "dead", "cron", "consumers"}

func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t := template.Must(base.Clone())
		out[name] = template.Must(t.ParseFS(templateFS, "templates/"+name+".html"))
	}
	return out
}

var funcs = template.FuncMap{
	"rfc3339":  func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"utc":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"inzone":   func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
	"ms":       fmtMs,
	"dur":      fmtDur,
	"rate":     func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "/s" },
	"outcomes": func() []string { return outcomeNames },
	"bars":     chartBars,
	"join":     strings.Join,
	"add":      func(a, b int) int { return a + b },
}

// navLink is one link of the header.
type navLink struct {
	Page, Href, Label string
}

// nav lays out the header's links for a page of prefix, qs the queue
// parameter.
func nav(prefix, qs string, cron bool) []navLink {
	out := []navLink{
		{"overview", "", "Overview"}, {"nodes", "/nodes", "Nodes"}, {"lateness", "/lateness", "Lateness"},
		{"jobs", "/jobs", "Jobs"}, {"dead", "/dead", "Dead letters"},
	}
	if cron {
		out = append(out, navLink{"cron", "/cron", "Cron"})
	}
	out = append(out, navLink{"consumers", "/consumers", "Consumers"})
	for i := range out {
		h := prefix + out[i].Href
		if h == "" {
			h = "/"
		}
		out[i].Href = h + qs
	}
	return out
}

func fmtMs(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	default:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond && d > -time.Millisecond:
		return d.String()
	case d < time.Minute && d > -time.Minute:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// chart geometry: the histogram's viewBox, bars along the bottom.
const (
	chartW, chartH = 640, 220
	chartTop       = 10
	chartLabel     = 28 // room for the labels under the bars
)

// bar is one bucket of the histogram as drawn.
type bar struct {
	Bucket     int
	X, Y, W, H float64
	LabelX     float64
	LabelY     float64
	Label      string
	Count      int64
}

// chartBars lays the buckets out in the chart; app.js redraws the same
// rectangles (data-bucket) from each lateness event.
func chartBars(v latenessView) []bar {
	n := len(v.Buckets)
	if n == 0 {
		return nil
	}
	var max int64
	for _, c := range v.Buckets {
		max = maxInt64(max, c)
	}
	slot := float64(chartW) / float64(n)
	plot := float64(chartH - chartTop - chartLabel)
	out := make([]bar, n)
	for i, c := range v.Buckets {
		h := 0.0
		if max > 0 {
			h = plot * float64(c) / float64(max)
		}
		label := "more"
		if i < len(dq.LatenessBounds) {
			label = "≤" + boundLabel(dq.LatenessBounds[i])
		}
		out[i] = bar{
			Bucket: i, X: float64(i)*slot + 2, W: slot - 4, Y: chartTop + plot - h, H: h,
			LabelX: float64(i)*slot + slot/2, LabelY: chartH - 10, Label: label, Count: c,
		}
	}
	return out
}

// boundLabel is a bucket bound as short as it goes: 5ms, 1s, 1m.
func boundLabel(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// pageData is what every page template gets.
type pageData struct {
	Title   string
	Heading string
	Page    string
	Prefix  string
	Actions bool
	User    string
	Queue   string
	Queues  []string
	QS      string // "?q=queue" when there is more than one queue
	Nav     []navLink
	Cron    bool
	Version string
	Data    any
}

// render writes a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, rq *request, page, heading string, data any) {
	t := pages[page]
	pd := pageData{
		Title: d.c.Title, Heading: heading, Page: page, Prefix: d.c.Prefix, Actions: d.c.Actions,
		User: rq.user, Queue: rq.queue.Queue(), Cron: d.cron != nil, Version: dq.Version(), Data: data,
	}
	if len(d.queues) > 1 {
		for _, in := range d.queues {
			pd.Queues = append(pd.Queues, in.Queue())
		}
		pd.QS = "?q=" + url.QueryEscape(pd.Queue)
	}
	pd.Nav = nav(d.c.Prefix, pd.QS, d.cron != nil)
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", pd); err != nil {
		logx.WithContext(r.Context()).Errorf("zerodq dashboard: page %s: %v", page, err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// writeJSON writes v as the answer.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// apiError is every error answer's body.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// serveStatic serves one embedded asset.
func serveStatic(name, ctype string) func(w http.ResponseWriter, r *http.Request, _ *request) {
	b, err := fs.ReadFile(staticFS, "static/"+name)
	if err != nil {
		panic(fmt.Sprintf("admin: embedded %s: %v", name, err))
	}
	return func(w http.ResponseWriter, r *http.Request, _ *request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "private, max-age=300")
		_, _ = w.Write(b)
	}
}
