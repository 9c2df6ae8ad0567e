package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestEachDashboardActionIsAuditedOnceNamingTheUser: a revoke, a pause, a
// resume and a bulk retry from the dashboard each add exactly one entry to
// the audit stream, under the signed-in user, and the bulk operation is
// recorded as started by that user.
func TestEachDashboardActionIsAuditedOnceNamingTheUser(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c, dq.WithActor("service@host"))
	dead := deadLetter(t, c, in, "die")[0]
	ctx := t.Context()
	later, err := in.EnqueueIn(ctx, []byte("later"), time.Hour)
	require.NoError(t, err)

	conf := authConf()
	conf.Actions = true
	s := serve(t, conf, in)
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}

	// act runs one action and returns the audit entries it added.
	act := func(path, body string, code int) []dq.AuditEntry {
		t.Helper()
		before, err := in.AuditLog(ctx, 100)
		require.NoError(t, err)
		a := s.do(t, http.MethodPost, path, body, true, same)
		require.Equal(t, code, a.code, a.body)
		var op opAnswer
		if code == http.StatusAccepted {
			require.NoError(t, json.Unmarshal([]byte(a.body), &op))
			var got dq.BulkOp
			dqtest.Eventually(t, 10*time.Second, func() bool {
				r := s.get(t, "/api/ops/"+op.OpID)
				return r.code == http.StatusOK && json.Unmarshal([]byte(r.body), &got) == nil && got.Finished
			}, "the bulk operation finishes")
			require.Equal(t, testUser, got.By, "the operation is the user's")
			require.Equal(t, 1, got.Done)
			require.Empty(t, got.Err)
		}
		after, err := in.AuditLog(ctx, 100)
		require.NoError(t, err)
		return after[:len(after)-len(before)]
	}
	entry := func(log []dq.AuditEntry) [][2]string {
		var out [][2]string
		for _, e := range log {
			out = append(out, [2]string{e.Who, e.What})
		}
		return out
	}

	require.Equal(t, [][2]string{{testUser, "revoke " + later}}, entry(act("/api/jobs/"+later+"/revoke", "", http.StatusOK)))
	require.Equal(t, [][2]string{{testUser, "pause"}}, entry(act("/api/pause", "", http.StatusOK)))
	require.Equal(t, [][2]string{{testUser, "resume"}}, entry(act("/api/resume", "", http.StatusOK)))
	require.Equal(t, [][2]string{{testUser, "revoke " + dead}}, entry(act("/api/jobs/"+dead+"/revoke", "", http.StatusConflict)),
		"too late to revoke a dead job: a conflict, the attempt audited")
	require.Equal(t, [][2]string{{testUser, "dead retry 1 entries, ids " + dead}},
		entry(act("/api/dead/retry", `{"ids":["`+dead+`"]}`, http.StatusAccepted)))
	require.Equal(t, "service@host", in.Actor(), "the dashboard's Inspector keeps its own actor")
}

// deadLetter runs a consumer on c's queue that sends jobs whose body starts
// with "die" to the dead letters, enqueues one per body, and returns their
// IDs once their buries are recorded.
func deadLetter(t *testing.T, c dq.DqConf, in *dq.Inspector, bodies ...string) []string {
	t.Helper()
	consumer(t, c, func(ctx context.Context, body []byte) error {
		if strings.HasPrefix(string(body), "die") {
			return fmt.Errorf("dying: %w", dq.ErrSkipRetry)
		}
		return nil
	})
	var ids []string
	for _, b := range bodies {
		id, err := in.EnqueueIn(t.Context(), []byte(b), 0)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	dqtest.Eventually(t, 10*time.Second, func() bool {
		for _, id := range ids {
			j, err := in.Job(t.Context(), id)
			if err != nil || j.State != dq.StateDead || !slices.ContainsFunc(j.Copies, func(c dq.CopyInfo) bool {
				return c.Fate == "dead letter"
			}) {
				return false
			}
		}
		return true
	}, "the jobs are dead letters, their buries recorded")
	return ids
}

// TestBulkProgressShowsWhatWasDoneApartFromWhatWasSkipped: a bulk delete
// of a dead letter and an ID that is none reports one done and one skipped
// out of two, and the page's progress counts both as worked through.
func TestBulkProgressShowsWhatWasDoneApartFromWhatWasSkipped(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	dead := deadLetter(t, c, in, "die")[0]
	conf := authConf()
	conf.Actions = true
	s := serve(t, conf, in)

	a := s.do(t, http.MethodPost, "/api/dead/delete", `{"ids":["`+dead+`","no-such-job"]}`, true,
		map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusAccepted, a.code, a.body)
	var op opAnswer
	require.NoError(t, json.Unmarshal([]byte(a.body), &op))
	require.Equal(t, 2, op.Matched)
	var got dq.BulkOp
	dqtest.Eventually(t, 10*time.Second, func() bool {
		r := s.get(t, "/api/ops/"+op.OpID)
		require.Equal(t, http.StatusOK, r.code, r.body)
		require.NoError(t, json.Unmarshal([]byte(r.body), &got))
		require.LessOrEqual(t, got.Done+got.Skipped, got.Matched, "progress never passes the count")
		return got.Finished
	}, "the bulk operation finishes")
	require.Equal(t, 2, got.Matched)
	require.Equal(t, 1, got.Done, "one dead letter deleted")
	require.Equal(t, 1, got.Skipped, "one ID left alone")
	require.Equal(t, []dq.BulkSkip{{ID: "no-such-job", Reason: "not a dead letter"}}, got.Skips)

	page := s.get(t, "/dead?op="+op.OpID)
	require.Contains(t, page.body, `<div id="op" class="op" data-op="`+op.OpID+`" data-done="2" data-matched="2" data-finished="true">`+
		`delete by `+testUser+`: 1 done, 1 skipped, of 2; finished</div>`)
}
