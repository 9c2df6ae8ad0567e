package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
)

// TestDashboardServesEveryRouteOnASeededQueue reads every page and API route
// of a queue with copies in every state and checks each answers with what
// the queue holds.
func TestDashboardServesEveryRouteOnASeededQueue(t *testing.T) {
	t.Parallel()
	q := seed(t)
	s := serve(t, authConf(), q.in)

	st, err := q.in.Stats(t.Context())
	require.NoError(t, err)

	t.Run("overview", func(t *testing.T) {
		a := s.get(t, "/")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Contains(t, a.body, `data-page="overview"`)
		require.Contains(t, a.body, `data-actions="off"`)
		require.Contains(t, a.body, `<div id="alerts">`)
		for _, ts := range st.Tubes {
			require.Contains(t, a.body, `<tr data-tube="`+ts.Tube+`" data-node="`+ts.Node+`"`)
		}
		require.Contains(t, a.body, `<td class="num" data-count="buried">`+strconv.FormatInt(st.Total.Buried, 10)+`</td>`)
		require.Contains(t, a.body, `<tr data-total>`)
		require.Contains(t, a.body, `data-paused="true"`)
		// The bare prefix serves it too (go-zero's router gives it that path).
		bare := doURL(t, http.MethodGet, s.URL+"/zerodq", "", true, nil)
		require.Equal(t, http.StatusOK, bare.code)
		require.Contains(t, bare.body, `data-page="overview"`)
	})
	t.Run("api overview", func(t *testing.T) {
		a := s.get(t, "/api/overview")
		require.Equal(t, http.StatusOK, a.code, a.body)
		var o overview
		require.NoError(t, json.Unmarshal([]byte(a.body), &o))
		require.Equal(t, q.in.Queue(), o.Queue)
		require.Len(t, o.Tubes, len(q.c.Beanstalks))
		require.Positive(t, o.Total.Ready)
		require.Positive(t, o.Total.Delayed)
		require.Positive(t, o.Total.Reserved)
		require.Positive(t, o.Total.Buried)
		require.EqualValues(t, 3, o.DeadLetters)
		require.Equal(t, 1, o.InFlight)
		require.True(t, o.Paused.Paused)
		require.EqualValues(t, 1, o.Outcomes["ok"])
		require.EqualValues(t, 3, o.Outcomes["dead"])
	})
	t.Run("nodes", func(t *testing.T) {
		a := s.get(t, "/nodes")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Contains(t, a.body, `data-page="nodes"`)
		for _, b := range q.c.Beanstalks {
			require.Contains(t, a.body, `<tr data-node="`+b.Endpoint+`" data-up="true"`)
		}
		var v nodesView
		a = s.get(t, "/api/nodes")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.NoError(t, json.Unmarshal([]byte(a.body), &v))
		require.Len(t, v.Nodes, len(q.c.Beanstalks))
		var buried int64
		for _, n := range v.Nodes {
			require.True(t, n.Up)
			require.NotEmpty(t, n.Version)
			buried += n.Counts.Buried
		}
		require.Equal(t, st.Total.Buried, buried)
	})
	t.Run("lateness", func(t *testing.T) {
		a := s.get(t, "/lateness")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Contains(t, a.body, `<section id="lateness" data-count="`)
		require.Contains(t, a.body, `<svg id="lateness-chart"`)
		require.Contains(t, a.body, `<span id="lat-min">`)
		require.Equal(t, len(dq.LatenessBounds)+1, strings.Count(a.body, `<rect class="bar"`))
	})
	t.Run("jobs", func(t *testing.T) {
		a := s.get(t, "/jobs?id="+q.done+"&ids="+q.dead[0]+","+q.running+"%0A"+q.delayed)
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Contains(t, a.body, `<form id="job-lookup"`)
		for _, id := range []string{q.done, q.dead[0], q.running, q.delayed} {
			require.Contains(t, a.body, `<article class="job" data-id="`+id+`"`)
		}
		require.Contains(t, a.body, `<li data-kind="attempt">`)
		require.Contains(t, a.body, `<li data-kind="end">`)
		require.Contains(t, a.body, `<li data-kind="dead">`)
		require.Contains(t, a.body, `<div class="last-error">`)
		require.Contains(t, a.body, deadErr+" of die-0")
		require.NotContains(t, a.body, `data-action=`, "no action button while actions are off")

		a = s.get(t, "/api/jobs?id="+q.done+"&id=no-such-job")
		require.Equal(t, http.StatusOK, a.code, a.body)
		var v struct{ Jobs []jobView }
		require.NoError(t, json.Unmarshal([]byte(a.body), &v))
		require.Len(t, v.Jobs, 2)
		require.Equal(t, dq.StateDone, v.Jobs[0].Info.State)
		require.NotEmpty(t, v.Jobs[1].Err)
		require.Equal(t, http.StatusBadRequest, s.get(t, "/api/jobs").code)
	})
	t.Run("dead", func(t *testing.T) {
		a := s.get(t, "/dead")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Contains(t, a.body, `<table id="dead">`)
		require.Contains(t, a.body, `<p id="dead-count" data-count="3">`)
		for _, id := range q.dead {
			require.Contains(t, a.body, `<tr data-id="`+id+`">`)
		}
		require.Contains(t, a.body, `<div id="op"`)
		require.NotContains(t, a.body, `data-action=`)

		a = s.get(t, "/api/dead/count?match=die-1")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.JSONEq(t, `{"count":1}`, a.body)

		// Two pages of 2 and 1, the second from the first's cursor.
		a = s.get(t, "/api/dead?limit=2")
		require.Equal(t, http.StatusOK, a.code, a.body)
		var p deadPage
		require.NoError(t, json.Unmarshal([]byte(a.body), &p))
		require.Equal(t, 3, p.Count)
		require.Len(t, p.Letters, 2)
		require.NotEmpty(t, p.Next)
		a = s.get(t, "/api/dead?limit=2&after="+p.Next)
		require.Equal(t, http.StatusOK, a.code, a.body)
		var p2 deadPage
		require.NoError(t, json.Unmarshal([]byte(a.body), &p2))
		require.Len(t, p2.Letters, 1)
		require.Empty(t, p2.Next)
		got := []string{p.Letters[0].ID, p.Letters[1].ID, p2.Letters[0].ID}
		require.ElementsMatch(t, q.dead, got)

		require.Equal(t, http.StatusBadRequest, s.get(t, "/api/dead?limit=x").code)
	})
	t.Run("consumers", func(t *testing.T) {
		a := s.get(t, "/consumers")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Contains(t, a.body, `<table id="consumers">`)
		var v consumersView
		a = s.get(t, "/api/consumers")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.NoError(t, json.Unmarshal([]byte(a.body), &v))
		require.Len(t, v.Consumers, 1)
		require.Contains(t, s.get(t, "/consumers").body, `<tr data-consumer="`+v.Consumers[0].ID+`">`)
		require.Empty(t, v.Drift)
	})
	t.Run("cron without a schedule", func(t *testing.T) {
		a := s.get(t, "/cron")
		require.Equal(t, http.StatusOK, a.code, a.body)
		require.Contains(t, a.body, "unavailable")
		require.Equal(t, http.StatusNotFound, s.get(t, "/api/cron").code)
		require.NotContains(t, s.get(t, "/").body, `/cron"`, "no cron link without WithCron")
	})
	t.Run("static", func(t *testing.T) {
		js := s.get(t, "/static/app.js")
		require.Equal(t, http.StatusOK, js.code)
		require.Contains(t, js.header.Get("Content-Type"), "javascript")
		require.Contains(t, js.body, "EventSource")
		css := s.get(t, "/static/app.css")
		require.Equal(t, http.StatusOK, css.code)
		require.Contains(t, css.body, "prefers-color-scheme: dark")
	})
	t.Run("headers", func(t *testing.T) {
		for _, path := range []string{"/", "/api/overview", "/static/app.js", "/no-such-page"} {
			a := s.get(t, path)
			if path == "/no-such-page" {
				require.Equal(t, http.StatusNotFound, a.code)
				continue
			}
			require.Equal(t, csp, a.header.Get("Content-Security-Policy"), path)
			require.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"), path)
			require.Equal(t, "same-origin", a.header.Get("Referrer-Policy"), path)
		}
		page := s.get(t, "/").body
		require.NotContains(t, page, "style=")
		require.NotRegexp(t, `<script>|<script [^>]*>[^<]`, page, "no inline script")
	})
}
