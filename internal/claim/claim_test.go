package claim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/stores/redis"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestMain(m *testing.M) {
	logx.Disable() // go-zero's slow-call lines drown the test output on a busy machine
	dqtest.Main(m)
}

const (
	testTTL   = 10 * time.Minute
	testTTLMs = int64(testTTL / time.Millisecond)
	// slack is how far a time value may drift between reading Redis time in
	// the test and the script reading it (2 shared cores, -race).
	slack = 1000
)

type testBundle struct {
	ctx   context.Context
	rds   *redis.Redis
	store *Store
	tube  string
}

func setupOn(t testing.TB, conf redis.RedisConf) *testBundle {
	t.Helper()
	rds := redis.MustNewRedis(conf)
	return &testBundle{ctx: context.Background(), rds: rds, store: New(rds, dqtest.Name(t), testTTL), tube: "t"}
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	return setupOn(t, redis.RedisConf{Host: dqtest.Shared(t).Redis.Addr(), Type: "node"})
}

func (b *testBundle) key(id string) string { return b.store.Key(b.tube, id) }

func (b *testBundle) now(t testing.TB) int64 {
	t.Helper()
	ms, err := b.store.Now(b.ctx)
	require.NoError(t, err)
	return ms
}

// at is a time field's value relative to Redis time when the case started.
type at int64

// fields describes a record: values are strings, ints or at.
type fields map[string]any

// story is a field of space-separated parts (an attempt a<N>): strings, or
// at for its times.
type story []any

func value(now int64, v any) string {
	switch v := v.(type) {
	case at:
		return strconv.FormatInt(now+int64(v), 10)
	case story:
		parts := make([]string, len(v))
		for k, p := range v {
			parts[k] = value(now, p)
		}
		return strings.Join(parts, " ")
	}
	return fmt.Sprint(v)
}

// requireTime checks a time field written at now+off, give or take slack.
func requireTime(t testing.TB, now int64, off at, got, what string) {
	t.Helper()
	n, err := strconv.ParseInt(got, 10, 64)
	require.NoError(t, err, what)
	require.GreaterOrEqual(t, n, now+int64(off), what)
	require.LessOrEqual(t, n, now+int64(off)+slack, what)
}

// seed writes a record directly, without a TTL, so that a script that writes
// shows by the TTL it sets.
func (b *testBundle) seed(t testing.TB, id string, now int64, f fields) {
	t.Helper()
	m := make(map[string]string, len(f))
	for k, v := range f {
		m[k] = value(now, v)
	}
	require.NoError(t, b.rds.HmsetCtx(b.ctx, b.key(id), m))
	t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), b.key(id)) })
}

func (b *testBundle) read(t testing.TB, id string) map[string]string {
	t.Helper()
	m, err := b.rds.HgetallCtx(b.ctx, b.key(id))
	require.NoError(t, err)
	return m
}

func (b *testBundle) pttl(t testing.TB, id string) int64 {
	t.Helper()
	v, err := b.rds.EvalCtx(b.ctx, "return redis.call('PTTL', KEYS[1])", []string{b.key(id)})
	require.NoError(t, err)
	return v.(int64)
}

func requireReply(t testing.TB, want, got Reply) {
	t.Helper()
	require.Equal(t, want.Kind, got.Kind, "reply %+v", got)
	require.Equal(t, want.Attempt, got.Attempt, "reply %+v", got)
	// Waits shrink while the test runs; they never grow.
	require.LessOrEqual(t, got.Ms, want.Ms, "reply %+v", got)
	require.GreaterOrEqual(t, got.Ms, max(want.Ms-slack, 0), "reply %+v", got)
}

func requireFields(t testing.TB, now int64, want fields, got map[string]string) {
	t.Helper()
	wantKeys := make([]string, 0, len(want))
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	gotKeys := make([]string, 0, len(got))
	for k := range got {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(wantKeys)
	slices.Sort(gotKeys)
	require.Equal(t, wantKeys, gotKeys, "record %v", got)
	for k, v := range want {
		what := fmt.Sprintf("field %s of %v", k, got)
		switch v := v.(type) {
		case at:
			requireTime(t, now, v, got[k], what)
		case story:
			parts := strings.Split(got[k], " ")
			require.Len(t, parts, len(v), what)
			for j, p := range v {
				if off, ok := p.(at); ok {
					requireTime(t, now, off, parts[j], what)
				} else {
					require.Equal(t, fmt.Sprint(p), parts[j], what)
				}
			}
		default:
			require.Equal(t, fmt.Sprint(v), got[k], what)
		}
	}
}

// requireTTL checks the rule every write ends with: PEXPIRE max(due, lease,
// nb, pw, now) - now + DedupeTTL.
func requireTTL(t testing.TB, b *testBundle, id string, now int64, rec map[string]string) {
	t.Helper()
	latest := now
	for _, f := range []string{"due", "lease", "nb", "pw"} {
		if v, err := strconv.ParseInt(rec[f], 10, 64); err == nil {
			latest = max(latest, v)
		}
	}
	want := latest - now + testTTLMs
	got := b.pttl(t, id)
	require.Greater(t, got, int64(0), "record %v has no TTL", rec)
	require.InDelta(t, want, got, slack, "TTL of %v", rec)
}

type call func(b *testBundle, id string, now int64) (Reply, error)

// stateCase sets up one state of a record, runs a script on it, and says
// what it must answer and leave.
type stateCase struct {
	name  string
	seed  fields // nil: no record
	call  call   // nil: the table's call
	want  Reply  // Ms: the largest wait expected; up to slack less passes
	write bool   // the script writes (a fresh TTL); otherwise nothing changes
	after fields // with write: the record left; nil: none
}

// runStates runs every case, then runs the same script again with the same
// arguments, as go-redis does after a read timeout: the answer and the record
// must be the same.
func runStates(t *testing.T, def call, cases []stateCase) {
	t.Helper()
	b := setup(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := NewClaimID()
			now := b.now(t)
			if tc.seed != nil {
				b.seed(t, id, now, tc.seed)
			} else {
				t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), b.key(id)) })
			}
			do := def
			if tc.call != nil {
				do = tc.call
			}
			want := tc.seed
			if tc.write {
				want = tc.after
			}

			first, err := do(b, id, now)
			require.NoError(t, err)
			requireReply(t, tc.want, first)
			rec := b.read(t, id)
			requireFields(t, now, want, rec)
			switch {
			case len(rec) == 0:
				require.Equal(t, int64(-2), b.pttl(t, id), "no key")
			case tc.write:
				requireTTL(t, b, id, now, rec)
			default:
				require.Equal(t, int64(-1), b.pttl(t, id), "a script that does not write leaves the TTL alone")
			}

			again, err := do(b, id, now)
			require.NoError(t, err)
			requireReply(t, first, again)
			requireFields(t, now, want, b.read(t, id))
		})
	}
}

// running is the record of a job that claim c1 runs from slot 0 of 3.
func running(extra fields) fields {
	f := fields{"st": "R", "own": "c1", "att": 1, "fail": 0, "lease": at(20000), "sp": 0, "due": at(-1000), "n": 3}
	for k, v := range extra {
		if v == nil {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	return f
}

// with copies f with changes (a nil value removes the field).
func with(f fields, changes fields) fields {
	g := make(fields, len(f)+len(changes))
	for k, v := range f {
		g[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(g, k)
		} else {
			g[k] = v
		}
	}
	return g
}

// testRef is the reference of the copy a test holds, otherRef that of
// another copy of the same job.
const (
	testRef  = "127.0.0.1:11300/7"
	otherRef = "127.0.0.1:11301/7"
)

func claimWith(cid string, dueOff int64, n, i int, unc bool) call {
	return claimRef(cid, testRef, dueOff, n, i, unc)
}

func claimRef(cid, ref string, dueOff int64, n, i int, unc bool) call {
	return func(b *testBundle, id string, now int64) (Reply, error) {
		return b.store.Claim(b.ctx, b.tube, id, cid, now+dueOff, Copy{N: n, Slot: i, Ref: ref, Unc: unc, By: "k1"}, 30000, 2)
	}
}

// claimBy claims, due a second ago, the copy of slot 0 of 3 that WithID
// writer wid put.
func claimBy(wid string) call {
	return func(b *testBundle, id string, now int64) (Reply, error) {
		return b.store.Claim(b.ctx, b.tube, id, "c1", now-1000, Copy{N: 3, Ref: testRef, Writer: wid, By: "k1"}, 30000, 2)
	}
}

func TestClaimAnswersEveryState(t *testing.T) {
	t.Parallel()
	won := fields{"st": "R", "own": "c1", "att": 1, "fail": 0, "lease": at(30000), "sp": 0, "due": at(-1000), "n": 3,
		"a1": story{at(0), testRef}, "b1": "k1"}
	// wonAt is won by attempt att.
	wonAt := func(att int, changes fields) fields {
		f := with(won, fields{"att": att, "a1": nil, "b1": nil, fmt.Sprintf("a%d", att): story{at(0), testRef},
			fmt.Sprintf("b%d", att): "k1"})
		return with(f, changes)
	}
	lapsed := fields{"err": "lease", "em": "lease lapsed", "et": at(0)}
	other := running(fields{"own": "c0"})
	waiting := fields{"st": "W", "own": "c0", "att": 1, "fail": 1, "nb": at(5000), "due": at(-1000), "n": 3}
	dead := fields{"st": "X", "own": "c0", "att": 3, "fail": 3, "due": at(-1000), "n": 3}
	runStates(t, claimWith("c1", -1000, 3, 0, false), []stateCase{
		{name: "NoRecordRuns", want: Reply{Kind: Run, Attempt: 1}, write: true, after: won},
		{name: "NotDueIsEarlyAndWritesNothing", call: claimWith("c1", 5000, 3, 0, false),
			want: Reply{Kind: Early, Ms: 5000}},
		{name: "NotDueIsEarlyEvenWhenDone", call: claimWith("c1", 5000, 3, 0, false),
			seed: fields{"st": "D", "own": "c0"}, want: Reply{Kind: Early, Ms: 5000}},
		{name: "PendingRuns", seed: fields{"st": "P", "due": at(-1000), "w": "w1", "pw": at(-500), "ok": 1},
			want: Reply{Kind: Run, Attempt: 1}, write: true, after: with(won, fields{"w": "w1", "pw": at(-500), "ok": 1})},
		{name: "WaitingNotYetDueIsSpareUntilNotBefore", seed: waiting, want: Reply{Kind: Spare, Ms: 5000}},
		{name: "WaitingDueRunsAgainKeepingFailures", seed: with(waiting, fields{"nb": at(-10)}),
			want: Reply{Kind: Run, Attempt: 2}, write: true,
			after: wonAt(2, fields{"fail": 1, "nb": at(-10)})},
		{name: "OwnRunningIsReplayed", seed: running(nil), want: Reply{Kind: Run, Attempt: 1}},
		{name: "OtherRunningIsSpareOneSecond", seed: other, want: Reply{Kind: Spare, Ms: 1000}, write: true,
			after: with(other, fields{"sp": 1, "spc": "c1"})},
		{name: "OtherRunningSpareDoubles", seed: with(other, fields{"sp": 3}), want: Reply{Kind: Spare, Ms: 8000},
			write: true, after: with(other, fields{"sp": 4, "spc": "c1"})},
		{name: "OtherRunningSpareStopsAtLeaseEnd", seed: with(other, fields{"sp": 5}),
			want: Reply{Kind: Spare, Ms: 20000}, write: true, after: with(other, fields{"sp": 6, "spc": "c1"})},
		{name: "ExpiredLeaseRunsAndCountsAFailure", seed: with(other, fields{"lease": at(-10), "sp": 2, "spc": "c9"}),
			want: Reply{Kind: Run, Attempt: 2}, write: true, after: wonAt(2, with(lapsed, fields{"fail": 1}))},
		{name: "ExpiredLeaseNamesTheConsumerThatHeldIt",
			seed: with(other, fields{"lease": at(-10), "a1": story{at(-9000), otherRef}, "b1": "k0"}),
			want: Reply{Kind: Run, Attempt: 2}, write: true,
			after: wonAt(2, with(lapsed, fields{"fail": 1, "em": "lease lapsed on consumer k0",
				"a1": story{at(-9000), otherRef}, "b1": "k0"}))},
		{name: "OnlyTheLatestTwentyAttemptsAreKept",
			seed: with(waiting, fields{"nb": at(-10), "att": 20, "a1": story{at(-9000), otherRef}, "b1": "k0",
				"e1": story{at(-8000), "fail"}, "a20": story{at(-5000), otherRef}, "b20": "k0",
				"e20": story{at(-4000), "fail"}}),
			want: Reply{Kind: Run, Attempt: 21}, write: true,
			after: wonAt(21, fields{"fail": 1, "nb": at(-10), "a20": story{at(-5000), otherRef}, "b20": "k0",
				"e20": story{at(-4000), "fail"}})},
		{name: "ExpiredLeaseOverMaxFailBuries", seed: with(other, fields{"lease": at(-10), "fail": 2}),
			want: Reply{Kind: Bury}, write: true,
			after: with(other, with(lapsed, fields{"lease": at(-10), "fail": 3, "st": "X"}))},
		{name: "KickedDeadLetterRunsWithFreshRetries", seed: with(dead, fields{"bur": 0, "bid": testRef}),
			want: Reply{Kind: Run, Attempt: 4}, write: true,
			after: wonAt(4, fields{"bur": 0, "bid": testRef})},
		{name: "OtherCopyOfTheDeadLettersSlotDeletes", seed: with(dead, fields{"bur": 0, "bid": otherRef}),
			want: Reply{Kind: Delete}},
		{name: "DeadLetterOfAnotherSlotDeletes", seed: with(dead, fields{"bur": 1, "bid": otherRef}),
			want: Reply{Kind: Delete}},
		{name: "OlderVersionsDeadLetterKickedRunsBySlot", seed: with(dead, fields{"bur": 0}),
			want: Reply{Kind: Run, Attempt: 4}, write: true, after: wonAt(4, fields{"bur": 0})},
		{name: "OlderVersionsDeadLetterOfAnotherSlotDeletes", seed: with(dead, fields{"bur": 1}),
			want: Reply{Kind: Delete}},
		{name: "OverMaxFailForgetsTheOldDeadLetter", call: claimRef("c1", otherRef, -1000, 3, 0, false),
			seed: with(other, fields{"lease": at(-10), "fail": 2, "bur": 0, "bid": testRef}), want: Reply{Kind: Bury},
			write: true, after: with(other, with(lapsed, fields{"lease": at(-10), "fail": 3, "st": "X"}))},
		{name: "DeadWithoutDeadLetterBuries", seed: dead, want: Reply{Kind: Bury}},
		{name: "DoneDeletes", seed: fields{"st": "D", "own": "c0", "att": 1, "due": at(-1000), "n": 3},
			want: Reply{Kind: Delete}},
		{name: "RevokedDeletes", seed: fields{"st": "V", "why": "revoke", "due": at(-1000)}, want: Reply{Kind: Delete, Ms: 1}},
		{name: "AbortedDeletes", seed: fields{"st": "V", "why": "abort", "due": at(-1000), "n": 3},
			want: Reply{Kind: Delete, Ms: 1}},
		{name: "UncertainPutIsRecorded", call: claimWith("c1", -1000, 3, 0, true),
			want: Reply{Kind: Run, Attempt: 1}, write: true, after: with(won, fields{"unc": 1})},
		{name: "CopyOfTheWriterWhoseReservationStandsRuns", call: claimBy("w1"),
			seed: fields{"st": "P", "due": at(-1000), "w": "w1", "pw": at(-500), "ok": 1},
			want: Reply{Kind: Run, Attempt: 1}, write: true, after: with(won, fields{"w": "w1", "pw": at(-500), "ok": 1})},
		{name: "CopyOfAWriterThatLostTheIDIsDeleted", call: claimBy("w0"),
			seed: fields{"st": "P", "due": at(-1000), "w": "w1", "pw": at(-500), "ok": 1}, want: Reply{Kind: Delete}},
		{name: "CopyOfAnotherWriterWaitsWhileTheReservationsWindowLasts", call: claimBy("w0"),
			seed: fields{"st": "P", "due": at(-1000), "w": "w1", "pw": at(700)}, want: Reply{Kind: Spare, Ms: 700}},
		{name: "CopyOfAnotherWriterRunsOnceTheReservationLapsedUnconfirmed", call: claimBy("w0"),
			seed: fields{"st": "P", "due": at(-1000), "w": "w1", "pw": at(-500)},
			want: Reply{Kind: Run, Attempt: 1}, write: true, after: with(won, fields{"w": "w1", "pw": at(-500)})},
		{name: "CopyOfAWriterThatAbortedIsDeleted", call: claimBy("w2"),
			seed: fields{"st": "P", "due": at(-1000), "w": "w2", "pw": at(-500), "tk": 1, "wx": "w3 w2"},
			want: Reply{Kind: Delete}},
		{name: "CopyOfAWriterThatLostTheIDIsDeletedOnceTheJobWaits", call: claimBy("w0"),
			seed: with(waiting, fields{"nb": at(-10), "w": "w1"}), want: Reply{Kind: Delete}},
		{name: "CopyWithoutWriterIsClaimedAsBefore",
			seed: fields{"st": "P", "due": at(-1000), "w": "w1", "pw": at(-500), "ok": 1},
			want: Reply{Kind: Run, Attempt: 1}, write: true, after: with(won, fields{"w": "w1", "pw": at(-500), "ok": 1})},
		{name: "UnknownCountIsNotRecorded", call: claimWith("c1", -1000, 0, 0, false),
			want: Reply{Kind: Run, Attempt: 1}, write: true, after: with(won, fields{"n": nil})},
	})
}

func TestExtendAnswersEveryState(t *testing.T) {
	t.Parallel()
	runStates(t, func(b *testBundle, id string, _ int64) (Reply, error) {
		return b.store.Extend(b.ctx, b.tube, id, "c1", 30000)
	}, []stateCase{
		{name: "OwnLeaseIsRenewed", seed: running(fields{"lease": at(1000)}), want: Reply{Kind: OK}, write: true,
			after: running(fields{"lease": at(30000)})},
		{name: "OwnExpiredLeaseNobodyTookIsRenewed", seed: running(fields{"lease": at(-10)}), want: Reply{Kind: OK},
			write: true, after: running(fields{"lease": at(30000)})},
		{name: "OtherOwnerIsLost", seed: running(fields{"own": "c0"}), want: Reply{Kind: Lost}},
		{name: "FinishedIsLost", seed: running(fields{"st": "D"}), want: Reply{Kind: Lost}},
		{name: "RevokedIsLost", seed: fields{"st": "V", "why": "revoke"}, want: Reply{Kind: Lost}},
		{name: "MissingRecordIsWrittenBackUncertain", want: Reply{Kind: OK}, write: true,
			after: fields{"st": "R", "own": "c1", "lease": at(30000), "unc": 1}},
	})
}

func finishWith(cid string, i int, o Outcome) call {
	return func(b *testBundle, id string, _ int64) (Reply, error) {
		return b.store.Finish(b.ctx, b.tube, id, cid, i, o, 5000, 2, Failure{})
	}
}

func finishWhy(o Outcome, why Failure) call {
	return func(b *testBundle, id string, _ int64) (Reply, error) {
		return b.store.Finish(b.ctx, b.tube, id, "c1", 0, o, 5000, 2, why)
	}
}

func TestFinishAnswersEveryState(t *testing.T) {
	t.Parallel()
	run := running(nil)
	other := running(fields{"own": "c0"})
	// started is a run whose attempt was recorded by its claim.
	started := running(fields{"a1": story{at(-500), testRef}, "b1": "k1"})
	ended := func(outcome string) story { return story{at(0), outcome} }
	boom := Failure{Class: "error", Message: "boom: it broke"}
	runStates(t, finishWith("c1", 0, OutcomeFail), []stateCase{
		{name: "OKEndsTheAttempt", call: finishWith("c1", 0, OutcomeOK), seed: started,
			want: Reply{Kind: Delete, Own: true}, write: true, after: with(started, fields{"st": "D", "e1": ended("ok")})},
		{name: "FailEndsTheAttemptAndRecordsTheLastError", call: finishWhy(OutcomeFail, boom), seed: started,
			want: Reply{Kind: Release, Ms: 5000, Own: true}, write: true,
			after: with(started, fields{"st": "W", "fail": 1, "nb": at(5000), "e1": ended("fail"),
				"err": "error", "em": "boom: it broke", "et": at(0)})},
		{name: "DeadRecordsTheLastError", call: finishWhy(OutcomeDead, Failure{Class: "skip", Message: "no such order"}),
			seed: with(started, fields{"err": "lease", "em": "lease lapsed", "et": at(-3000)}),
			want: Reply{Kind: Bury, Own: true}, write: true,
			after: with(started, fields{"st": "X", "fail": 1, "e1": ended("dead"),
				"err": "skip", "em": "no such order", "et": at(0)})},
		{name: "YieldEndsTheAttemptAndKeepsTheLastError", call: finishWhy(OutcomeYield, boom),
			seed: with(started, fields{"err": "panic", "em": "p", "et": at(-3000)}),
			want: Reply{Kind: Release, Own: true}, write: true,
			after: with(started, fields{"st": "W", "nb": at(0), "e1": ended("yield"),
				"err": "panic", "em": "p", "et": at(-3000)})},
		{name: "ResentFailAppendsNothing", call: finishWhy(OutcomeFail, boom),
			seed: with(started, fields{"st": "W", "fail": 1, "nb": at(5000), "e1": ended("fail")}),
			want: Reply{Kind: Release, Ms: 5000, Own: true}},
		{name: "StaleFinishRecordsNothing", call: finishWhy(OutcomeFail, boom),
			seed: with(started, fields{"own": "c0"}), want: Reply{Kind: Spare, Ms: 1000}, write: true,
			after: with(started, fields{"own": "c0", "sp": 1, "spc": "c1"})},
		{name: "MissingRecordFailRecordsTheError", call: finishWhy(OutcomeFail, boom),
			want: Reply{Kind: Release, Ms: 5000, Own: true}, write: true,
			after: fields{"st": "W", "own": "c1", "fail": 1, "nb": at(5000), "err": "error", "em": "boom: it broke",
				"et": at(0)}},
		{name: "OKIsDone", call: finishWith("c1", 0, OutcomeOK), seed: run, want: Reply{Kind: Delete, Own: true}, write: true,
			after: with(run, fields{"st": "D", "e1": ended("ok")})},
		{name: "FailWaitsForBackoff", seed: run, want: Reply{Kind: Release, Ms: 5000, Own: true}, write: true,
			after: with(run, fields{"st": "W", "fail": 1, "nb": at(5000), "e1": ended("fail")})},
		{name: "FailOverMaxFailBuries", seed: with(run, fields{"fail": 2}), want: Reply{Kind: Bury, Own: true}, write: true,
			after: with(run, fields{"st": "X", "fail": 3, "e1": ended("fail")})},
		{name: "FailOverMaxFailForgetsAnOldDeadLetter", seed: with(run, fields{"fail": 2, "bur": 1, "bid": otherRef}),
			want: Reply{Kind: Bury, Own: true}, write: true, after: with(run, fields{"st": "X", "fail": 3, "e1": ended("fail")})},
		{name: "DeadBuriesAtOnce", call: finishWith("c1", 0, OutcomeDead), seed: run, want: Reply{Kind: Bury, Own: true},
			write: true, after: with(run, fields{"st": "X", "fail": 1, "e1": ended("dead")})},
		{name: "YieldReleasesAtOnceWithoutAFailure", call: finishWith("c1", 0, OutcomeYield), seed: run,
			want: Reply{Kind: Release, Own: true}, write: true, after: with(run, fields{"st": "W", "nb": at(0), "e1": ended("yield")})},
		{name: "UnrunReleasesAtOnceAndTakesTheAttemptBack", call: finishWith("c1", 0, OutcomeUnrun),
			seed: with(run, fields{"att": 2}), want: Reply{Kind: Release, Own: true}, write: true,
			after: with(run, fields{"st": "W", "nb": at(0), "att": 1, "e2": ended("unrun")})},
		{name: "ResentUnrunTakesTheAttemptBackOnce", call: finishWith("c1", 0, OutcomeUnrun),
			seed: with(run, fields{"st": "W", "nb": at(-100)}), want: Reply{Kind: Release, Own: true}},
		{name: "ResentFailCountsOnce", seed: with(run, fields{"st": "W", "fail": 1, "nb": at(5000)}),
			want: Reply{Kind: Release, Ms: 5000, Own: true}},
		{name: "ResentYieldReleasesAtOnce", call: finishWith("c1", 0, OutcomeYield),
			seed: with(run, fields{"st": "W", "nb": at(-100)}), want: Reply{Kind: Release, Own: true}},
		{name: "ResentOKDeletes", call: finishWith("c1", 0, OutcomeOK), seed: with(run, fields{"st": "D"}),
			want: Reply{Kind: Delete, Own: true}},
		{name: "ResentBuryBuries", seed: with(run, fields{"st": "X", "fail": 3}), want: Reply{Kind: Bury, Own: true}},
		{name: "ResentBuryOfTheDeadLetterBuries", seed: with(run, fields{"st": "X", "fail": 3, "bur": 0}),
			want: Reply{Kind: Bury, Own: true}},
		{name: "ResentBuryWithAnotherDeadLetterDeletes", seed: with(run, fields{"st": "X", "fail": 3, "bur": 1}),
			want: Reply{Kind: Delete, Own: true}},
		{name: "OtherOwnerRunningIsSpare", seed: other, want: Reply{Kind: Spare, Ms: 1000}, write: true,
			after: with(other, fields{"sp": 1, "spc": "c1"})},
		{name: "OtherOwnerExpiredIsClaimedAgain", seed: with(other, fields{"lease": at(-10)}),
			want: Reply{Kind: Spare}},
		{name: "OtherOwnerWaitingIsSpareUntilNotBefore",
			seed: with(other, fields{"st": "W", "fail": 1, "nb": at(4000)}), want: Reply{Kind: Spare, Ms: 4000}},
		{name: "OtherOwnerDoneDeletes", seed: with(other, fields{"st": "D"}), want: Reply{Kind: Delete}},
		{name: "OtherOwnerDeadWithThisDeadLetterBuries", seed: with(other, fields{"st": "X", "bur": 0}),
			want: Reply{Kind: Bury}},
		// finish does not know its copy's reference: the dead letter's is
		// another copy's (its own was never buried while it held it).
		{name: "OtherOwnerDeadWithTheDeadLetterElsewhereDeletes",
			seed: with(other, fields{"st": "X", "bur": 0, "bid": otherRef}), want: Reply{Kind: Delete}},
		{name: "RevokedDeletes", seed: with(other, fields{"st": "V", "why": "revoke"}), want: Reply{Kind: Delete, Ms: 1}},
		// A run whose lease lapsed and was taken over: its outcome is not
		// recorded, and a Delete says only that this copy goes (the job may
		// be another run's dead letter, kicked later to run again).
		{name: "OKAfterATakeoverThatBuriedTheJobDeletesNotOwn", call: finishWith("c1", 0, OutcomeOK),
			seed: with(other, fields{"st": "X", "fail": 1, "bur": 1, "bid": otherRef}), want: Reply{Kind: Delete}},
		{name: "OKAfterATakeoverThatRanTheJobDeletesNotOwn", call: finishWith("c1", 0, OutcomeOK),
			seed: with(other, fields{"st": "D"}), want: Reply{Kind: Delete}},
		// claim buried the job over maxFail when this run's lease lapsed, and
		// left own as it was: not a re-sent finish of this run.
		{name: "OKAfterClaimBuriedItsLapsedRunDeletesNotOwn", call: finishWith("c1", 0, OutcomeOK),
			seed: with(run, fields{"st": "X", "fail": 3, "bur": 1, "bid": otherRef}), want: Reply{Kind: Delete}},
		{name: "OKAfterClaimBuriedItsLapsedRunWithoutDeadLetterBuriesNotOwn", call: finishWith("c1", 0, OutcomeOK),
			seed: with(run, fields{"st": "X", "fail": 3}), want: Reply{Kind: Bury}},
		{name: "MissingRecordOKIsDone", call: finishWith("c1", 0, OutcomeOK), want: Reply{Kind: Delete, Own: true},
			write: true, after: fields{"st": "D", "own": "c1"}},
		{name: "MissingRecordFailWaits", want: Reply{Kind: Release, Ms: 5000, Own: true}, write: true,
			after: fields{"st": "W", "own": "c1", "fail": 1, "nb": at(5000)}},
		{name: "MissingRecordDeadBuries", call: finishWith("c1", 0, OutcomeDead), want: Reply{Kind: Bury, Own: true},
			write: true, after: fields{"st": "X", "own": "c1", "fail": 1}},
		{name: "MissingRecordYieldWritesNothing", call: finishWith("c1", 0, OutcomeYield),
			want: Reply{Kind: Release, Own: true}},
		{name: "MissingRecordUnrunWritesNothing", call: finishWith("c1", 0, OutcomeUnrun),
			want: Reply{Kind: Release, Own: true}},
	})
}

func goneAt(i int) call {
	return func(b *testBundle, id string, _ int64) (Reply, error) {
		return Reply{Kind: OK}, b.store.Gone(b.ctx, b.tube, id, i, testRef)
	}
}

// goneMany confirms the deletes of several slots of one job in one GoneMany,
// which sends them as one script call.
func goneMany(slots ...int) call {
	return func(b *testBundle, id string, _ int64) (Reply, error) {
		items := make([]GoneItem, len(slots))
		for k, i := range slots {
			items[k] = GoneItem{Tube: b.tube, ID: id, Slot: i}
		}
		return Reply{Kind: OK}, b.store.GoneMany(b.ctx, items)
	}
}

func TestGoneCollectsFinishedRecords(t *testing.T) {
	t.Parallel()
	done := fields{"st": "D", "own": "c0", "due": at(-1000), "n": 3}
	spare := fields{"c:" + testRef: "s"}
	runStates(t, goneAt(2), []stateCase{
		{name: "PartialSetsTheSlotBit", call: goneAt(1), seed: with(done, fields{"gone": 1}), want: Reply{Kind: OK},
			write: true, after: with(done, with(spare, fields{"gone": 3}))},
		{name: "SameSlotTwiceCountsOnce", call: goneAt(0), seed: with(done, fields{"gone": 1}),
			want: Reply{Kind: OK}, write: true, after: with(done, with(spare, fields{"gone": 1}))},
		{name: "RevokedJobsCopyIsRevoked", call: goneAt(0), seed: fields{"st": "V", "why": "revoke", "n": 3},
			want: Reply{Kind: OK}, write: true, after: fields{"st": "V", "why": "revoke", "n": 3, "gone": 1,
				"c:" + testRef: "v"}},
		{name: "ExtraDeadCopyIsExtra", call: goneAt(0), seed: fields{"st": "X", "bur": 1, "bid": otherRef, "n": 3},
			want: Reply{Kind: OK}, write: true, after: fields{"st": "X", "bur": 1, "bid": otherRef, "n": 3, "gone": 1,
				"c:" + testRef: "e"}},
		{name: "DeletedDeadLetterIsDeleted", call: goneAt(1),
			seed: fields{"st": "X", "bur": 1, "bid": testRef, "n": 3, "c:" + testRef: "x"},
			want: Reply{Kind: OK}, write: true, after: fields{"st": "X", "bur": 1, "bid": testRef, "n": 3, "gone": 2,
				"c:" + testRef: "d"}},
		{name: "LastCopyOfDoneJobDeletesRecord", seed: with(done, fields{"gone": 3}), want: Reply{Kind: OK},
			write: true},
		{name: "LastCopyOfRevokedJobDeletesRecord", call: goneAt(0), seed: fields{"st": "V", "why": "revoke", "n": 1},
			want: Reply{Kind: OK}, write: true},
		{name: "UncertainPutKeepsRecord", seed: with(done, fields{"gone": 3, "unc": 1}), want: Reply{Kind: OK},
			write: true, after: with(done, with(spare, fields{"gone": 7, "unc": 1}))},
		{name: "NotFinishedKeepsRecord", seed: with(running(nil), fields{"gone": 3}), want: Reply{Kind: OK},
			write: true, after: with(running(nil), fields{"gone": 7, "c:" + testRef: "d"})},
		{name: "UnknownCountKeepsRecord", call: goneAt(0), seed: fields{"st": "D", "own": "c0"},
			want: Reply{Kind: OK}, write: true, after: fields{"st": "D", "own": "c0", "gone": 1, "c:" + testRef: "s"}},
		{name: "MissingRecordIsNotCreated", want: Reply{Kind: OK}},
		{name: "SeveralSlotsAtOnceSetEachBit", call: goneMany(0, 2), seed: done, want: Reply{Kind: OK},
			write: true, after: with(done, fields{"gone": 5})},
		{name: "SeveralSlotsRepeatedCountOnce", call: goneMany(1, 1, 2), seed: with(done, fields{"gone": 2}),
			want: Reply{Kind: OK}, write: true, after: with(done, fields{"gone": 6})},
		{name: "SeveralSlotsCompletingDeleteRecord", call: goneMany(2, 0, 1), seed: done, want: Reply{Kind: OK},
			write: true},
		{name: "SeveralSlotsMissingRecordIsNotCreated", call: goneMany(0, 1), want: Reply{Kind: OK}},
	})
}

func buriedAt(i int) call {
	return func(b *testBundle, id string, _ int64) (Reply, error) {
		return b.store.Buried(b.ctx, b.tube, id, i, testRef)
	}
}

func TestBuriedKeepsOneDeadLetter(t *testing.T) {
	t.Parallel()
	dead := fields{"st": "X", "own": "c0", "fail": 3, "due": at(-1000), "n": 3}
	runStates(t, buriedAt(1), []stateCase{
		{name: "FirstBuriedCopyIsTheDeadLetter", seed: dead, want: Reply{Kind: Keep}, write: true,
			after: with(dead, fields{"bur": 1, "bid": testRef, "c:" + testRef: "x"})},
		{name: "DeadLetterBuriedAgainIsKept", seed: with(dead, fields{"bur": 1, "bid": testRef}),
			want: Reply{Kind: Keep}},
		{name: "AnotherCopyOfTheSameSlotIsExtra", seed: with(dead, fields{"bur": 1, "bid": otherRef}),
			want: Reply{Kind: Extra}},
		{name: "AnotherSlotIsExtra", seed: with(dead, fields{"bur": 0, "bid": otherRef}), want: Reply{Kind: Extra}},
		{name: "OlderVersionsDeadLetterIsKeptBySlot", seed: with(dead, fields{"bur": 1}), want: Reply{Kind: Keep}},
		{name: "OlderVersionsDeadLetterOfAnotherSlotIsExtra", seed: with(dead, fields{"bur": 0}),
			want: Reply{Kind: Extra}},
		{name: "NotDeadIsExtra", seed: with(dead, fields{"st": "D"}), want: Reply{Kind: Extra}},
		{name: "MissingRecordIsKeptAndNotCreated", want: Reply{Kind: Keep}},
	})
}

func TestNoteMarksUncertainPuts(t *testing.T) {
	t.Parallel()
	runStates(t, func(b *testBundle, id string, now int64) (Reply, error) {
		return Reply{Kind: OK}, b.store.Note(b.ctx, b.tube, id, now+60000, 3)
	}, []stateCase{
		{name: "MissingRecordIsCreatedPending", want: Reply{Kind: OK}, write: true,
			after: fields{"st": "P", "due": at(60000), "n": 3, "unc": 1}},
		{name: "ExistingRecordGetsUnc", seed: running(nil), want: Reply{Kind: OK}, write: true,
			after: running(fields{"unc": 1})},
	})
}

func abortAs(wid string) call {
	return func(b *testBundle, id string, now int64) (Reply, error) {
		return b.store.Abort(b.ctx, b.tube, id, wid, now+60000, 3)
	}
}

func TestAbortStopsOnlyUnstartedJobs(t *testing.T) {
	t.Parallel()
	mine := fields{"st": "P", "w": "w1", "pw": at(-10), "due": at(60000)}
	runStates(t, abortAs("w1"), []stateCase{
		{name: "MissingIsAborted", want: Reply{Kind: Aborted}, write: true,
			after: fields{"st": "V", "why": "abort", "due": at(60000), "n": 3}},
		{name: "PendingIsAborted", seed: mine, want: Reply{Kind: Aborted}, write: true,
			after: with(mine, fields{"st": "V", "why": "abort"})},
		{name: "PendingDueNowOutlivesItsPutWindow", seed: with(mine, fields{"pw": at(5000), "due": at(-1000)}),
			want: Reply{Kind: Aborted}, write: true,
			after: with(mine, fields{"st": "V", "why": "abort", "pw": at(5000), "due": at(-1000)})},
		{name: "PendingOfAGeneratedIDIsAborted", call: abortAs(""),
			seed: fields{"st": "P", "unc": 1, "due": at(60000), "n": 3}, want: Reply{Kind: Aborted}, write: true,
			after: fields{"st": "V", "why": "abort", "unc": 1, "due": at(60000), "n": 3}},
		{name: "PendingWithoutWriterIsAborted", seed: fields{"st": "P", "unc": 1, "due": at(60000)},
			want: Reply{Kind: Aborted}, write: true, after: fields{"st": "V", "why": "abort", "unc": 1, "due": at(60000)}},
		{name: "ConfirmedByAnotherWriterIsTaken", seed: with(mine, fields{"w": "w2", "pw": at(5000), "ok": 1}),
			want: Reply{Kind: Taken}},
		{name: "ATakeOverStrikesOnlyItsOwnCopies", seed: with(mine, fields{"tk": 1}),
			want: Reply{Kind: Aborted}, write: true, after: with(mine, fields{"tk": 1, "wx": "w1", "pw": at(0)})},
		{name: "AnotherTakeOverAddsItsWriter", seed: with(mine, fields{"tk": 1, "wx": "w0"}),
			want: Reply{Kind: Aborted}, write: true, after: with(mine, fields{"tk": 1, "wx": "w0 w1", "pw": at(0)})},
		{name: "AnotherWritersReservationIsOther", seed: with(mine, fields{"w": "w2", "pw": at(5000)}),
			want: Reply{Kind: Other}},
		{name: "GeneratedIDNeverAbortsAWritersReservation", call: abortAs(""), seed: mine, want: Reply{Kind: Other}},
		{name: "AbortedAgainIsAborted", seed: fields{"st": "V", "why": "abort", "due": at(60000)},
			want: Reply{Kind: Aborted}},
		{name: "RevokedStaysRevoked", seed: fields{"st": "V", "why": "revoke", "due": at(60000)},
			want: Reply{Kind: Aborted}},
		{name: "RunningIsStarted", seed: running(nil), want: Reply{Kind: Started}},
		{name: "WaitingIsStarted", seed: running(fields{"st": "W", "nb": at(5000)}), want: Reply{Kind: Started}},
		{name: "DoneIsStarted", seed: running(fields{"st": "D"}), want: Reply{Kind: Started}},
		{name: "DeadIsStarted", seed: running(fields{"st": "X"}), want: Reply{Kind: Started}},
	})
}

func TestReserveGuardsCallerChosenIDs(t *testing.T) {
	t.Parallel()
	mine := fields{"st": "P", "w": "w1", "pw": at(5000), "due": at(60000)}
	fresh := fields{"st": "P", "w": "w1", "pw": at(10000), "due": at(60000)}
	runStates(t, func(b *testBundle, id string, now int64) (Reply, error) {
		return b.store.Reserve(b.ctx, b.tube, id, "w1", now+60000, 10000)
	}, []stateCase{
		{name: "MissingIsFresh", want: Reply{Kind: Fresh}, write: true, after: fresh},
		{name: "AbortedIsFreshAgain", seed: fields{"st": "V", "why": "abort", "due": at(60000), "n": 3},
			want: Reply{Kind: Fresh}, write: true, after: with(fresh, fields{"n": 3})},
		{name: "RevokedIsRevoked", seed: fields{"st": "V", "why": "revoke", "due": at(60000)},
			want: Reply{Kind: Revoked}},
		{name: "OwnReservationAgainIsFresh", seed: mine, want: Reply{Kind: Fresh}, write: true, after: fresh},
		{name: "OtherWriterInItsWindowIsBusy", seed: with(mine, fields{"w": "w2"}), want: Reply{Kind: Busy, Ms: 5000}},
		{name: "OtherWriterPastItsWindowIsTakenOver", seed: with(mine, fields{"w": "w2", "pw": at(-10)}),
			want: Reply{Kind: Fresh}, write: true, after: with(fresh, fields{"tk": 1})},
		{name: "AbortedAfterATakeOverIsFreshAndNoLongerATakeOver",
			seed: fields{"st": "V", "why": "abort", "due": at(60000), "tk": 1},
			want: Reply{Kind: Fresh}, write: true, after: fresh},
		{name: "ConfirmedIsDup", seed: with(mine, fields{"ok": 1}), want: Reply{Kind: Dup}},
		// A job due now must keep its record until its writer's last put
		// can have answered, or confirm would find nothing.
		{name: "DueNowOutlivesThePutWindow", call: func(b *testBundle, id string, now int64) (Reply, error) {
			return b.store.Reserve(b.ctx, b.tube, id, "w1", now, 10000)
		}, want: Reply{Kind: Fresh}, write: true, after: with(fresh, fields{"due": at(0)})},
		{name: "RunningIsDup", seed: running(nil), want: Reply{Kind: Dup}},
		{name: "WaitingIsDup", seed: running(fields{"st": "W", "nb": at(5000)}), want: Reply{Kind: Dup}},
		{name: "DoneIsDup", seed: running(fields{"st": "D"}), want: Reply{Kind: Dup}},
		{name: "DeadIsDup", seed: running(fields{"st": "X"}), want: Reply{Kind: Dup}},
	})
}

func TestConfirmMarksOnlyTheWritersReservationAndSaysWhetherItStands(t *testing.T) {
	t.Parallel()
	mine := fields{"st": "P", "w": "w1", "pw": at(5000), "due": at(60000)}
	runStates(t, func(b *testBundle, id string, _ int64) (Reply, error) {
		return b.store.Confirm(b.ctx, b.tube, id, "w1")
	}, []stateCase{
		{name: "OwnReservationIsConfirmed", seed: mine, want: Reply{Kind: OK}, write: true,
			after: with(mine, fields{"ok": 1})},
		{name: "OwnConfirmedAgainStands", seed: with(mine, fields{"ok": 1}), want: Reply{Kind: OK}},
		{name: "OwnJobAConsumerTookUpStands", seed: running(fields{"w": "w1"}), want: Reply{Kind: OK}},
		{name: "AnotherWritersConfirmedIsTaken", seed: with(mine, fields{"w": "w2", "ok": 1}),
			want: Reply{Kind: Taken}},
		{name: "AnotherWritersJobAConsumerTookUpIsTaken", seed: running(fields{"w": "w2"}),
			want: Reply{Kind: Taken}},
		{name: "AnotherWritersReservationIsOtherAndUntouched", seed: with(mine, fields{"w": "w2"}),
			want: Reply{Kind: Other}},
		{name: "AbortedIsOther", seed: with(mine, fields{"w": "w2", "st": "V", "why": "abort"}),
			want: Reply{Kind: Other}},
		{name: "RevokedIsRevoked", seed: with(mine, fields{"st": "V", "why": "revoke"}), want: Reply{Kind: Revoked}},
		// The job ran from this writer's copies and its record expired:
		// the enqueue stands, and writing it again would run it twice.
		{name: "MissingRecordMayBeDoneAndIsNotCreated", want: Reply{Kind: MaybeDone}},
		{name: "OwnReservationDueNowOutlivesItsPutWindow", seed: with(mine, fields{"due": at(-1000)}),
			want: Reply{Kind: OK}, write: true, after: with(mine, fields{"due": at(-1000), "ok": 1})},
	})
}

func revokeDue(off int64) call {
	return func(b *testBundle, id string, now int64) (Reply, error) {
		due := int64(0)
		if off != 0 {
			due = now + off
		}
		return b.store.Revoke(b.ctx, b.tube, id, due)
	}
}

func TestRevokeAnswersEveryState(t *testing.T) {
	t.Parallel()
	pending := fields{"st": "P", "w": "w1", "pw": at(5000), "ok": 1, "due": at(60000)}
	runStates(t, revokeDue(60000), []stateCase{
		{name: "RunningIsRunning", seed: running(nil), want: Reply{Kind: Running}},
		{name: "DoneIsDone", seed: running(fields{"st": "D"}), want: Reply{Kind: Done}},
		{name: "DeadIsDead", seed: running(fields{"st": "X"}), want: Reply{Kind: Dead}},
		{name: "PendingIsRevoked", seed: pending, want: Reply{Kind: Revoked}, write: true,
			after: with(pending, fields{"st": "V", "why": "revoke"})},
		{name: "WaitingForRetryIsRevoked", seed: running(fields{"st": "W", "fail": 1, "nb": at(5000)}),
			want: Reply{Kind: Revoked}, write: true,
			after: running(fields{"st": "V", "why": "revoke", "fail": 1, "nb": at(5000)})},
		{name: "AbortedTurnsRevoked", seed: fields{"st": "V", "why": "abort", "due": at(60000)},
			want: Reply{Kind: Revoked}, write: true, after: fields{"st": "V", "why": "revoke", "due": at(60000)}},
		{name: "RevokedAgainIsRevoked", seed: fields{"st": "V", "why": "revoke", "due": at(60000)},
			want: Reply{Kind: Revoked}},
		{name: "MissingNotDueIsRevoked", want: Reply{Kind: Revoked}, write: true,
			after: fields{"st": "V", "why": "revoke", "due": at(60000)}},
		{name: "MissingPastDueMaybeDone", call: revokeDue(-1000), want: Reply{Kind: MaybeDone}, write: true,
			after: fields{"st": "V", "why": "revoke", "due": at(-1000), "md": 1}},
		{name: "MissingUnknownDueMaybeDone", call: revokeDue(0), want: Reply{Kind: MaybeDone}, write: true,
			after: fields{"st": "V", "why": "revoke", "md": 1}},
	})
}

func TestExpiredLeaseIsTakenOverAndTheOldClaimLosesIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := NewClaimID()
	now := b.now(t)
	rep, err := b.store.Claim(b.ctx, b.tube, id, "a", now, Copy{N: 2, Slot: 0, Ref: testRef}, 30, 2)
	require.NoError(t, err)
	require.Equal(t, Reply{Kind: Run, Attempt: 1}, rep)
	lease, err := strconv.ParseInt(b.read(t, id)["lease"], 10, 64)
	require.NoError(t, err)
	dqtest.Eventually(t, 5*time.Second, func() bool { return b.now(t) > lease }, "Redis time passes the lease")

	rep, err = b.store.Claim(b.ctx, b.tube, id, "b", now, Copy{N: 2, Slot: 1, Ref: testRef}, 30000, 2)
	require.NoError(t, err)
	require.Equal(t, Reply{Kind: Run, Attempt: 2}, rep, "the expired lease is taken over")
	require.Equal(t, "1", b.read(t, id)["fail"], "the lapsed run counts as a failure")

	rep, err = b.store.Extend(b.ctx, b.tube, id, "a", 30)
	require.NoError(t, err)
	require.Equal(t, Lost, rep.Kind)
	rep, err = b.store.Finish(b.ctx, b.tube, id, "a", 0, OutcomeFail, 1000, 2, Failure{})
	require.NoError(t, err)
	require.Equal(t, Spare, rep.Kind, "the stale claim is routed like a spare copy")
	require.Equal(t, "1", b.read(t, id)["fail"], "the stale claim's failure is not counted")

	rep, err = b.store.Finish(b.ctx, b.tube, id, "b", 1, OutcomeOK, 0, 2, Failure{})
	require.NoError(t, err)
	require.Equal(t, Delete, rep.Kind)
}

// happyPath claims a job from slot 0, finishes it, and deletes every copy.
func happyPath(t *testing.T, b *testBundle, id string, unc bool) {
	t.Helper()
	due := b.now(t)
	rep, err := b.store.Claim(b.ctx, b.tube, id, "c", due, Copy{N: 3, Slot: 0, Ref: testRef, Unc: unc}, 30000, 2)
	require.NoError(t, err)
	require.Equal(t, Run, rep.Kind)
	rep, err = b.store.Finish(b.ctx, b.tube, id, "c", 0, OutcomeOK, 0, 2, Failure{})
	require.NoError(t, err)
	require.Equal(t, Delete, rep.Kind)
	require.NoError(t, b.store.Gone(b.ctx, b.tube, id, 0, testRef))
	for i := 1; i < 3; i++ {
		rep, err = b.store.Claim(b.ctx, b.tube, id, NewClaimID(), due, Copy{N: 3, Slot: i, Ref: testRef}, 30000, 2)
		require.NoError(t, err)
		require.Equal(t, Delete, rep.Kind, "copy %d of a done job", i)
		require.NoError(t, b.store.Gone(b.ctx, b.tube, id, i, testRef))
	}
}

func TestFinishedJobLeavesNoRecordOnceEveryCopyIsGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := NewClaimID()
	happyPath(t, b, id, false)
	ok, err := b.rds.ExistsCtx(b.ctx, b.key(id))
	require.NoError(t, err)
	require.False(t, ok, "record left: %v", b.read(t, id))
}

func TestUncertainJobRecordOutlivesItsCopiesUntilItsTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := NewClaimID()
	happyPath(t, b, id, true)
	rec := b.read(t, id)
	require.Equal(t, "D", rec["st"])
	require.Equal(t, "7", rec["gone"])
	require.Greater(t, b.pttl(t, id), int64(0))
}

func TestEveryScriptAnswersATableOnAMissingKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, tube := b.ctx, b.tube
	id := func() string { return NewClaimID() }
	now := b.now(t)
	for name, run := range map[string]func() error{
		"claim": func() error {
			_, err := b.store.Claim(ctx, tube, id(), "c", now, Copy{N: 3, Slot: 0, Ref: testRef}, 1000, 1)
			return err
		},
		"early": func() error {
			_, err := b.store.Claim(ctx, tube, id(), "c", now+9e6, Copy{N: 3, Slot: 0, Ref: testRef}, 1000, 1)
			return err
		},
		"extend": func() error { _, err := b.store.Extend(ctx, tube, id(), "c", 1000); return err },
		"finish": func() error {
			_, err := b.store.Finish(ctx, tube, id(), "c", 0, OutcomeYield, 0, 1, Failure{})
			return err
		},
		"gone":   func() error { return b.store.Gone(ctx, tube, id(), 0, testRef) },
		"buried": func() error { _, err := b.store.Buried(ctx, tube, id(), 0, testRef); return err },
		"note":   func() error { return b.store.Note(ctx, tube, id(), now, 3) },
		"abort":  func() error { _, err := b.store.Abort(ctx, tube, id(), "w", now, 3); return err },
		"reserve": func() error {
			_, err := b.store.Reserve(ctx, tube, id(), "w", now, 1000)
			return err
		},
		"confirm": func() error { _, err := b.store.Confirm(ctx, tube, id(), "w"); return err },
		"revoke":  func() error { _, err := b.store.Revoke(ctx, tube, id(), 0); return err },
		"legacy":  func() error { _, err := b.store.LegacyLock(ctx, b.key(id()), "c"); return err },
		"now":     func() error { _, err := b.store.Now(ctx); return err },
	} {
		require.NoError(t, run(), name)
	}
}

func TestLegacyLockIsOursOnceAndAgainForTheSameClaim(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lock := b.key(NewClaimID())
	t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), lock) })
	mine, err := b.store.LegacyLock(b.ctx, lock, "a")
	require.NoError(t, err)
	require.True(t, mine)
	mine, err = b.store.LegacyLock(b.ctx, lock, "a")
	require.NoError(t, err)
	require.True(t, mine, "a re-sent SET finds its own claim id")
	mine, err = b.store.LegacyLock(b.ctx, lock, "b")
	require.NoError(t, err)
	require.False(t, mine, "held by another consumer")
	v, err := b.rds.EvalCtx(b.ctx, "return redis.call('PTTL', KEYS[1])", []string{lock})
	require.NoError(t, err)
	require.InDelta(t, int64(legacyLockMs), v.(int64), slack, "go-queue's lock lives an hour")
}

func TestScriptsRunAfterRedisForgetsThem(t *testing.T) {
	t.Parallel()
	srv := dqtest.NewRedis(t)
	b := setupOn(t, redis.RedisConf{Host: srv.Addr(), Type: "node"})
	id := NewClaimID()
	rep, err := b.store.Claim(b.ctx, b.tube, id, "c", b.now(t), Copy{N: 1, Slot: 0, Ref: testRef}, 30000, 1)
	require.NoError(t, err)
	require.Equal(t, Run, rep.Kind)

	// As a restarted Redis does: go-zero's client has no SCRIPT FLUSH.
	rc := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rc.Close()
	require.NoError(t, rc.ScriptFlush(b.ctx).Err())
	rep, err = b.store.Finish(b.ctx, b.tube, id, "c", 0, OutcomeOK, 0, 1, Failure{})
	require.NoError(t, err)
	require.Equal(t, Delete, rep.Kind)
}

func TestProtocolRunsOnARedisCluster(t *testing.T) {
	t.Parallel()
	cluster := dqtest.NewRedisCluster(t)
	b := setupOn(t, redis.RedisConf{Host: cluster.Hosts(), Type: "cluster"})
	ids := make([]string, 12)
	for k := range ids {
		ids[k] = NewClaimID()
		happyPath(t, b, ids[k], true) // unc keeps the records, to count them per node
	}

	holding := 0
	for _, s := range cluster.Servers {
		rc := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
		n, err := rc.DBSize(b.ctx).Result()
		_ = rc.Close()
		require.NoError(t, err)
		if n > 0 {
			holding++
		}
	}
	require.GreaterOrEqual(t, holding, 2, "records spread over the cluster's masters")

	for _, id := range ids {
		happyID := NewClaimID()
		happyPath(t, b, happyID, false)
		ok, err := b.rds.ExistsCtx(b.ctx, b.key(happyID))
		require.NoError(t, err)
		require.False(t, ok)

		rep, err := b.store.Revoke(b.ctx, b.tube, id, 0)
		require.NoError(t, err)
		require.Equal(t, Done, rep.Kind)
		fresh := NewClaimID()
		rep, err = b.store.Revoke(b.ctx, b.tube, fresh, b.now(t)+60000)
		require.NoError(t, err)
		require.Equal(t, Revoked, rep.Kind)
		rep, err = b.store.Claim(b.ctx, b.tube, fresh, "c", b.now(t), Copy{N: 3, Slot: 0, Ref: testRef}, 30000, 2)
		require.NoError(t, err)
		require.Equal(t, Delete, rep.Kind, "a copy of a revoked job is deleted")
		rep, err = b.store.Reserve(b.ctx, b.tube, fresh, "w", b.now(t), 1000)
		require.NoError(t, err)
		require.Equal(t, Revoked, rep.Kind)
	}
}

func TestArgumentsOutOfRangeAreRefusedBeforeRedis(t *testing.T) {
	t.Parallel()
	// No Redis at all: a bad argument must fail before any call.
	s := New(nil, "p", time.Hour)
	ctx := context.Background()
	_, err := s.Claim(ctx, "t", "id", "c", 0, Copy{N: 3, Slot: MaxSlots, Ref: testRef}, 1000, 1)
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Claim(ctx, "t", "id", "c", 0, Copy{N: MaxSlots + 1, Slot: 0, Ref: testRef}, 1000, 1)
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Claim(ctx, "t", "id", "c", 0, Copy{N: 3, Slot: 0, Ref: testRef}, 0, 1)
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Extend(ctx, "t", "id", "c", -1)
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Finish(ctx, "t", "id", "c", 0, Outcome(9), 0, 1, Failure{})
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Finish(ctx, "t", "id", "c", 0, OutcomeFail, -5, 1, Failure{})
	require.ErrorIs(t, err, ErrBadArg)
	require.ErrorIs(t, s.Gone(ctx, "t", "id", -1, testRef), ErrBadArg)
	_, err = s.Buried(ctx, "t", "id", -1, testRef)
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Buried(ctx, "t", "id", 0, "")
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Claim(ctx, "t", "id", "c", 0, Copy{N: 3, Slot: 0, Ref: ""}, 1000, 1)
	require.ErrorIs(t, err, ErrBadArg)
	require.ErrorIs(t, s.Note(ctx, "t", "id", 0, -1), ErrBadArg)
	_, err = s.Abort(ctx, "t", "id", "", 0, MaxSlots+1)
	require.ErrorIs(t, err, ErrBadArg)
	_, err = s.Reserve(ctx, "t", "id", "w", 0, 0)
	require.ErrorIs(t, err, ErrBadArg)
}

func TestKeyIsPrefixTubeAndID(t *testing.T) {
	t.Parallel()
	require.Equal(t, "zerodq:orders:42", New(nil, "zerodq", time.Hour).Key("orders", "42"))
}

func TestClaimIDsAre128RandomBitsInHex(t *testing.T) {
	t.Parallel()
	a, b := NewClaimID(), NewClaimID()
	require.Regexp(t, `^[0-9a-f]{32}$`, a)
	require.NotEqual(t, a, b)
}

func TestKindsAndOutcomesHaveNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Run", Run.String())
	require.Equal(t, "MaybeDone", MaybeDone.String())
	require.Equal(t, "Kind(0)", Kind(0).String())
	require.Equal(t, "yield", OutcomeYield.String())
	require.Equal(t, "unrun", OutcomeUnrun.String())
	require.Equal(t, "Outcome(0)", Outcome(0).String())
	for word, k := range wireKinds {
		require.Equal(t, word, strings.ToUpper(k.String()))
	}
	require.Len(t, wireKinds, int(Other))
}

func TestUnexpectedRepliesAreErrors(t *testing.T) {
	t.Parallel()
	for _, v := range []any{nil, "RUN", []any{"RUN", int64(1)}, []any{"NOPE", int64(0), int64(0)},
		[]any{"RUN", "1", int64(0)}} {
		_, err := parseReply(v)
		require.ErrorIs(t, err, ErrBadReply, "%v", v)
	}
	rep, err := parseReply([]any{"SPARE", int64(0), int64(1500)})
	require.NoError(t, err)
	require.Equal(t, Reply{Kind: Spare, Ms: 1500}, rep)
	rep, err = parseReply([]any{"DELETE", int64(0), int64(0), int64(1)})
	require.NoError(t, err)
	require.Equal(t, Reply{Kind: Delete, Own: true}, rep)
	for _, v := range []any{[]any{"DELETE", int64(0), int64(0), int64(2)}, []any{"DELETE", int64(0), int64(0), "1"},
		[]any{"DELETE", int64(0), int64(0), int64(1), int64(1)}} {
		_, err := parseReply(v)
		require.ErrorIs(t, err, ErrBadReply, "%v", v)
	}
}

func BenchmarkClaimFinish(b *testing.B) {
	tb := setup(b)
	ctx := tb.ctx
	due := tb.now(b)
	for b.Loop() {
		id, cid := NewClaimID(), NewClaimID()
		rep, err := tb.store.Claim(ctx, tb.tube, id, cid, due, Copy{N: 1, Slot: 0, Ref: testRef, By: "host/123/ab12cd"}, 30000, 2)
		if err != nil || rep.Kind != Run {
			b.Fatalf("claim: %v %v", rep, err)
		}
		rep, err = tb.store.Finish(ctx, tb.tube, id, cid, 0, OutcomeOK, 0, 2, Failure{})
		if err != nil || rep.Kind != Delete {
			b.Fatalf("finish: %v %v", rep, err)
		}
		if err := tb.store.Gone(ctx, tb.tube, id, 0, testRef); err != nil {
			b.Fatal(err)
		}
	}
}

func TestGoneManyCollectsRecordsInOneRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var items []GoneItem
	ids := []string{NewClaimID(), NewClaimID(), NewClaimID()}
	for _, id := range ids {
		cid := NewClaimID()
		rep, err := b.store.Claim(b.ctx, b.tube, id, cid, b.now(t), Copy{N: 2, Slot: 0, Ref: testRef}, 30000, 3)
		require.NoError(t, err)
		require.Equal(t, Run, rep.Kind)
		rep, err = b.store.Finish(b.ctx, b.tube, id, cid, 0, OutcomeOK, 0, 3, Failure{})
		require.NoError(t, err)
		require.Equal(t, Delete, rep.Kind)
		require.False(t, rep.Revoked())
		items = append(items, GoneItem{Tube: b.tube, ID: id, Slot: 0}, GoneItem{Tube: b.tube, ID: id, Slot: 1})
	}
	require.NoError(t, b.store.GoneMany(b.ctx, items))
	for _, id := range ids {
		ok, err := b.rds.ExistsCtx(b.ctx, b.key(id))
		require.NoError(t, err)
		require.False(t, ok, "record of %s left", id)
	}
	require.ErrorIs(t, b.store.GoneMany(b.ctx, []GoneItem{{Tube: b.tube, ID: ids[0], Slot: -1}}), ErrBadArg)
}

func TestClaimOfARevokedJobSaysRevoked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := NewClaimID()
	rep, err := b.store.Revoke(b.ctx, b.tube, id, b.now(t)+60000)
	require.NoError(t, err)
	require.Equal(t, Revoked, rep.Kind)
	rep, err = b.store.Claim(b.ctx, b.tube, id, NewClaimID(), b.now(t), Copy{N: 3, Slot: 0, Ref: testRef}, 30000, 3)
	require.NoError(t, err)
	require.Equal(t, Delete, rep.Kind)
	require.True(t, rep.Revoked())
}

func TestConcurrentCallsSharePipelinedRoundTripsAndGetTheirOwnReplies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := b.now(t)
	const n = 300
	var wg sync.WaitGroup
	replies := make([]Reply, n)
	errs := make([]error, n)
	ids := make([]string, n)
	start := make(chan struct{})
	var ready sync.WaitGroup
	ready.Add(n)
	for i := range n {
		ids[i] = NewClaimID()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			// Every other job is claimed twice by the same claim id: a replay
			// must answer the same attempt, not a second one.
			replies[i], errs[i] = b.store.Claim(b.ctx, b.tube, ids[i], "c"+ids[i], now, Copy{N: 3, Slot: i % 3, Ref: testRef}, 30000, 3)
			if i%2 == 0 && errs[i] == nil {
				replies[i], errs[i] = b.store.Claim(b.ctx, b.tube, ids[i], "c"+ids[i], now, Copy{N: 3, Slot: i % 3, Ref: testRef}, 30000, 3)
			}
		}()
	}
	trips := b.store.pipe.trips.Load()
	ready.Wait()
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		requireReply(t, Reply{Kind: Run, Attempt: 1}, replies[i])
		require.Equal(t, "c"+ids[i], b.read(t, ids[i])["own"])
	}
	calls := int64(n + n/2)
	require.Less(t, b.store.pipe.trips.Load()-trips, calls/2, "the %d calls shared round trips", calls)
	// Nobody sends once the queue is empty; the next call sends its own.
	require.True(t, dqtest.Await(5*time.Second, func() bool {
		b.store.pipe.mu.Lock()
		defer b.store.pipe.mu.Unlock()
		return b.store.pipe.sending == 0
	}), "still sending with nothing queued")
	trips = b.store.pipe.trips.Load()
	rep, err := b.store.Extend(b.ctx, b.tube, ids[0], "c"+ids[0], 30000)
	require.NoError(t, err)
	require.Equal(t, OK, rep.Kind)
	require.Equal(t, trips+1, b.store.pipe.trips.Load(), "a lone call is one round trip")
}

// Copies of different jobs that come due together are claimed in one round
// trip, each answered as Claim would answer it alone; a claim with bad
// arguments is refused without holding back the others.
func TestClaimAllMakesEachClaimInOneRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := b.now(t)
	busy := NewClaimID()
	rep, err := b.store.Claim(b.ctx, b.tube, busy, "c-first", now, Copy{N: 3, Slot: 0, Ref: testRef}, 30000, 3)
	require.NoError(t, err)
	requireReply(t, Reply{Kind: Run, Attempt: 1}, rep)
	fresh := []string{NewClaimID(), NewClaimID(), NewClaimID()}
	reqs := []ClaimReq{
		{Tube: b.tube, ID: fresh[0], Cid: "c0", DueMs: now, Copy: Copy{N: 3, Slot: 1, Ref: testRef}, LeaseMs: 30000, MaxFail: 3},
		{Tube: b.tube, ID: busy, Cid: "c-second", DueMs: now, Copy: Copy{N: 3, Slot: 1, Ref: testRef}, LeaseMs: 30000, MaxFail: 3},
		{Tube: b.tube, ID: fresh[1], Cid: "c1", DueMs: now, Copy: Copy{N: 3, Slot: 2, Ref: ""}, LeaseMs: 30000, MaxFail: 3},
		{Tube: b.tube, ID: fresh[2], Cid: "c2", DueMs: now + 60000, Copy: Copy{N: 3, Slot: 0, Ref: testRef}, LeaseMs: 30000, MaxFail: 3},
	}
	trips := b.store.pipe.trips.Load()
	res := b.store.ClaimAll(b.ctx, reqs)
	require.Equal(t, trips+1, b.store.pipe.trips.Load(), "one round trip for the claims sent")
	require.Len(t, res, len(reqs))

	require.NoError(t, res[0].Err)
	requireReply(t, Reply{Kind: Run, Attempt: 1}, res[0].Reply)
	require.Equal(t, "c0", b.read(t, fresh[0])["own"])
	require.NoError(t, res[1].Err)
	requireReply(t, Reply{Kind: Spare, Ms: 1000}, res[1].Reply)
	require.Equal(t, "c-first", b.read(t, busy)["own"], "the running claim keeps the job")
	require.ErrorIs(t, res[2].Err, ErrBadArg)
	require.Empty(t, b.read(t, fresh[1]), "a refused claim writes nothing")
	require.NoError(t, res[3].Err)
	require.Equal(t, Early, res[3].Reply.Kind)
	require.Positive(t, res[3].Reply.Ms)
}

// TestLegacyLockTellsZerodqsOwnAttemptsFromAGoQueueRun: go-queue's lock
// held by zerodq (this version's mark, or an older version's claim id) is
// taken again, so a failed or interrupted attempt is retried; held by
// anything go-queue writes ("1" before 2024, go-zero's 16-character
// RedisLock id since) means a go-queue consumer ran the job.
func TestLegacyLockTellsZerodqsOwnAttemptsFromAGoQueueRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const mine = "zerodq:gq-0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name, held string // held "": no lock
		ours       bool
	}{
		{name: "FreeIsTaken", ours: true},
		{name: "OwnMarkIsOurs", held: mine, ours: true},
		{name: "OlderZerodqClaimIDIsOurs", held: NewClaimID(), ours: true},
		{name: "AnotherJobsMarkIsNot", held: "zerodq:gq-ffffffffffffffffffffffffffffffff"},
		{name: "GoQueueGuardValueIsARun", held: "1"},
		{name: "GoZeroRedisLockIDIsARun", held: "aZ3kQ9xLm2Pw7RtB"},
		{name: "UpperCaseHexIsNotAClaimID", held: strings.ToUpper(NewClaimID())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lock := b.key(NewClaimID())
			t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), lock) })
			if tc.held != "" {
				require.NoError(t, b.rds.SetexCtx(b.ctx, lock, tc.held, 60))
			}
			for range 2 { // a re-sent script answers the same
				ours, err := b.store.LegacyLock(b.ctx, lock, mine)
				require.NoError(t, err)
				require.Equal(t, tc.ours, ours)
				v, err := b.rds.GetCtx(b.ctx, lock)
				require.NoError(t, err)
				ttl, err := b.rds.EvalCtx(b.ctx, "return redis.call('PTTL', KEYS[1])", []string{lock})
				require.NoError(t, err)
				if tc.ours {
					require.Equal(t, mine, v, "the lock carries zerodq's mark")
					require.InDelta(t, int64(legacyLockMs), ttl.(int64), slack, "go-queue's lock lives an hour")
				} else {
					require.Equal(t, tc.held, v, "a go-queue run's lock is left alone")
					require.LessOrEqual(t, ttl.(int64), int64(60000))
				}
			}
		})
	}
}

// storyOf runs a job of 3 copies the way consumers do: attempt 1 from copy
// testRef on consumer k1 fails with err, attempt 2 from otherRef on k2
// succeeds, and the three copies are deleted.
func storyOf(t *testing.T, b *testBundle, id string) {
	t.Helper()
	refs := []string{testRef, otherRef, "127.0.0.1:11302/9"}
	due := b.now(t)
	rep, err := b.store.Claim(b.ctx, b.tube, id, "c1", due, Copy{N: 3, Slot: 0, Ref: refs[0], By: "k1"}, 30000, 2)
	require.NoError(t, err)
	require.Equal(t, Run, rep.Kind)
	rep, err = b.store.Finish(b.ctx, b.tube, id, "c1", 0, OutcomeFail, 0, 2, Failure{Class: "error", Message: "boom"})
	require.NoError(t, err)
	require.Equal(t, Release, rep.Kind)
	rep, err = b.store.Claim(b.ctx, b.tube, id, "c2", due, Copy{N: 3, Slot: 1, Ref: refs[1], By: "k2"}, 30000, 2)
	require.NoError(t, err)
	require.Equal(t, Reply{Kind: Run, Attempt: 2}, rep)
	rep, err = b.store.Finish(b.ctx, b.tube, id, "c2", 1, OutcomeOK, 0, 2, Failure{})
	require.NoError(t, err)
	require.Equal(t, Delete, rep.Kind)
	items := make([]GoneItem, len(refs))
	for i, ref := range refs {
		items[i] = GoneItem{Tube: b.tube, ID: id, Slot: i, Ref: ref}
	}
	require.NoError(t, b.store.GoneMany(b.ctx, items))
}

func TestGoneKeepsAFinishedJobsSummaryForHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const history = time.Minute
	b.store = New(b.rds, b.store.prefix, testTTL, WithHistory(history))
	id := NewClaimID()
	t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), b.key(id)) })
	storyOf(t, b, id)

	rec := b.read(t, id)
	for _, f := range []string{"own", "lease", "nb", "sp", "spc", "unc"} {
		require.NotContains(t, rec, f, "the summary drops what only the protocol needs")
	}
	require.Equal(t, "D", rec["st"])
	require.Equal(t, "2", rec["att"])
	require.Equal(t, "k2", rec["b2"])
	require.Equal(t, "error", rec["err"])
	require.Equal(t, map[string]string{"c:" + testRef: "s", "c:" + otherRef: "s", "c:127.0.0.1:11302/9": "s"},
		map[string]string{"c:" + testRef: rec["c:"+testRef], "c:" + otherRef: rec["c:"+otherRef],
			"c:127.0.0.1:11302/9": rec["c:127.0.0.1:11302/9"]}, "deleted as the finished job's copies")
	ttl := b.pttl(t, id)
	require.Greater(t, ttl, int64(0))
	require.LessOrEqual(t, ttl, history.Milliseconds(), "the summary lives History at most")

	// A re-sent gone (or a straggler's) changes nothing and never extends it.
	require.NoError(t, b.store.Gone(b.ctx, b.tube, id, 2, "127.0.0.1:11302/9"))
	require.Equal(t, rec, b.read(t, id))
	require.LessOrEqual(t, b.pttl(t, id), ttl)
	// The summary still routes a late copy: the job is done.
	rep, err := b.store.Claim(b.ctx, b.tube, id, "c3", b.now(t), Copy{N: 3, Slot: 0, Ref: "127.0.0.1:11300/99"}, 30000, 2)
	require.NoError(t, err)
	require.Equal(t, Delete, rep.Kind)

	got, ok, err := b.store.Record(b.ctx, b.tube, id)
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, got.Summary)
	require.LessOrEqual(t, got.TTLMs, history.Milliseconds())
	require.Equal(t, []CopyFate{{testRef, FateRan}, {otherRef, FateRan}, {"127.0.0.1:11302/9", FateSpare}}, got.Copies,
		"the copies attempts ran from have run")
}

func TestGoneNeverLengthensARecordsTTLForHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// DedupeTTL shorter than History: the summary keeps the shorter TTL.
	b.store = New(b.rds, b.store.prefix, 2*time.Second, WithHistory(time.Hour))
	id := NewClaimID()
	t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), b.key(id)) })
	storyOf(t, b, id)
	require.Equal(t, "D", b.read(t, id)["st"])
	ttl := b.pttl(t, id)
	require.Greater(t, ttl, int64(0))
	// The record's own TTL: DedupeTTL past the last run's lease (30 s), not
	// the hour of History.
	require.LessOrEqual(t, ttl, int64(30000+2000+slack))
}

func TestRecordTellsTheJobsStory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := NewClaimID()
	t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), b.key(id)) })
	_, ok, err := b.store.Record(b.ctx, b.tube, id)
	require.NoError(t, err)
	require.False(t, ok, "no record yet")

	start := b.now(t)
	storyOf(t, b, id) // History 0: the record goes with its last copy
	_, ok, err = b.store.Record(b.ctx, b.tube, id)
	require.NoError(t, err)
	require.False(t, ok, "collected")

	b.store = New(b.rds, b.store.prefix, testTTL, WithHistory(time.Minute))
	storyOf(t, b, id)
	rec, ok, err := b.store.Record(b.ctx, b.tube, id)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "D", rec.State)
	require.Equal(t, 2, rec.Attempts)
	require.Equal(t, 1, rec.Failures)
	require.Equal(t, 3, rec.N)
	require.Equal(t, "k2", rec.By)
	require.Equal(t, Failure{Class: "error", Message: "boom"}, rec.LastError)
	require.InDelta(t, start, rec.ErrorAtMs, 5000)
	require.Equal(t, []CopyFate{{testRef, FateRan}, {otherRef, FateRan}, {"127.0.0.1:11302/9", FateSpare}}, rec.Copies)
	require.Len(t, rec.Runs, 2)
	require.Equal(t, Attempt{N: 1, StartMs: rec.Runs[0].StartMs, By: "k1", Ref: testRef, EndMs: rec.Runs[0].EndMs,
		Outcome: "fail"}, rec.Runs[0])
	require.Equal(t, Attempt{N: 2, StartMs: rec.Runs[1].StartMs, By: "k2", Ref: otherRef, EndMs: rec.Runs[1].EndMs,
		Outcome: "ok"}, rec.Runs[1])
	require.GreaterOrEqual(t, rec.Runs[0].EndMs, rec.Runs[0].StartMs)
	require.GreaterOrEqual(t, rec.Runs[1].StartMs, rec.Runs[0].EndMs)
	require.True(t, rec.Summary)
	require.Greater(t, rec.TTLMs, int64(0))
}

func TestErrorMessagesAreCutAtARuneBoundary(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", CutMessage("short"))
	long := strings.Repeat("a", MaxErrorMessage-1) + "é" + "tail" // é straddles the limit
	got := CutMessage(long)
	require.Equal(t, strings.Repeat("a", MaxErrorMessage-1), got)
	require.Len(t, CutMessage(strings.Repeat("b", 2000)), MaxErrorMessage)
}

// TestAFinishedJobsSummaryStaysACompactHash: with a consumer ID and copy
// references as long as a Kubernetes fleet's, every field of a finished
// job's summary stays within hash-max-listpack-value (64 bytes), so Redis
// keeps it in its compact encoding rather than a hash table several times
// its size.
func TestAFinishedJobsSummaryStaysACompactHash(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.store = New(b.rds, b.store.prefix, testTTL, WithHistory(time.Minute))
	id := NewClaimID()
	t.Cleanup(func() { _, _ = b.rds.DelCtx(context.Background(), b.key(id)) })
	by := "order-api-7d9f8b6c5-x2x4k/1234567/ab12cd"
	refs := []string{"10.120.33.201:11300/12345678", "10.120.33.202:11300/12345679", "10.120.33.203:11300/12345680"}
	due := b.now(t)
	rep, err := b.store.Claim(b.ctx, b.tube, id, "c1", due, Copy{N: 3, Slot: 0, Ref: refs[0], By: by}, 30000, 2)
	require.NoError(t, err)
	require.Equal(t, Run, rep.Kind)
	_, err = b.store.Finish(b.ctx, b.tube, id, "c1", 0, OutcomeOK, 0, 2, Failure{})
	require.NoError(t, err)
	items := make([]GoneItem, len(refs))
	for i, ref := range refs {
		items[i] = GoneItem{Tube: b.tube, ID: id, Slot: i, Ref: ref}
	}
	require.NoError(t, b.store.GoneMany(b.ctx, items))
	require.Equal(t, "D", b.read(t, id)["st"])
	enc, err := b.rds.EvalCtx(b.ctx, "return redis.call('OBJECT', 'ENCODING', KEYS[1])", []string{b.key(id)})
	require.NoError(t, err)
	require.Contains(t, []string{"listpack", "ziplist"}, enc, "record %v", b.read(t, id))
}

func TestRecordTellsACopyThatRanFromItsAttemptUnlessItIsTheDeadLetter(t *testing.T) {
	t.Parallel()
	rec := parseRecord(map[string]string{
		"st": "X", "att": "2", "fail": "2", "n": "2", "bid": testRef,
		"a1": "1000 " + testRef, "b1": "k1", "e1": "1500 fail",
		"a2": "2000 " + otherRef, "b2": "k2", "e2": "2600 fail",
		"c:" + testRef: "x", "c:" + otherRef: "e",
		"a3": "garbage", "ax": "3000 " + otherRef,
	})
	require.Equal(t, []CopyFate{{testRef, FateDeadLetter}, {otherRef, FateRan}}, rec.Copies)
	require.Equal(t, []Attempt{
		{N: 1, StartMs: 1000, By: "k1", Ref: testRef, EndMs: 1500, Outcome: "fail"},
		{N: 2, StartMs: 2000, By: "k2", Ref: otherRef, EndMs: 2600, Outcome: "fail"},
	}, rec.Runs)
	require.False(t, rec.Summary)
	require.Equal(t, testRef, rec.DeadRef)
}

// A claim is what a due job waits for: it is sent at once, not queued behind
// the finishes, extends and gones of other jobs on the wire (whose replies
// can take a round trip or more to come back). Redis is frozen so that an
// extend stays on the wire; a claim made then must be sent before its reply.
func TestClaimIsSentWhileOtherJobsCallsAreOnTheWire(t *testing.T) {
	t.Parallel()
	b, rs, now, trips := pausedAfterWarmCalls(t)
	extended := make(chan error, 1)
	go func() {
		_, err := b.store.Extend(b.ctx, b.tube, "warm", "c-warm", 30000)
		extended <- err
	}()
	dqtest.Eventually(t, 5*time.Second, func() bool { return b.store.pipe.trips.Load() == trips+1 },
		"the extend is on the wire")
	claimed := make(chan error, 1)
	go func() {
		_, err := b.store.Claim(b.ctx, b.tube, "due", "c-due", now, Copy{N: 1, Slot: 0, Ref: testRef}, 30000, 3)
		claimed <- err
	}()
	sent := dqtest.Await(2*time.Second, func() bool { return b.store.pipe.trips.Load() == trips+2 })
	require.NoError(t, rs.Resume())
	require.NoError(t, <-extended)
	require.NoError(t, <-claimed)
	require.True(t, sent, "the claim was sent while the extend waited for its reply")
}

// A claim that opens the extra round trip carries only claims: the other
// jobs' calls gathered meanwhile would make Redis run them before it and its
// reply wait for theirs. They go in a round trip of their own.
func TestClaimsRoundTripCarriesNoOtherCalls(t *testing.T) {
	t.Parallel()
	b, rs, now, trips := pausedAfterWarmCalls(t)
	const queued = 3
	extended := make(chan error, 1+queued)
	extend := func() {
		_, err := b.store.Extend(b.ctx, b.tube, "warm", "c-warm", 30000)
		extended <- err
	}
	go extend()
	dqtest.Eventually(t, 5*time.Second, func() bool { return b.store.pipe.trips.Load() == trips+1 },
		"the first extend is on the wire")
	for range queued {
		go extend()
	}
	dqtest.Eventually(t, 5*time.Second, func() bool {
		b.store.pipe.mu.Lock()
		defer b.store.pipe.mu.Unlock()
		return len(b.store.pipe.queue) == queued
	}, "the other extends wait for a batch")
	claimed := make(chan error, 1)
	go func() {
		_, err := b.store.Claim(b.ctx, b.tube, "due", "c-due", now, Copy{N: 1, Slot: 0, Ref: testRef}, 30000, 3)
		claimed <- err
	}()
	dqtest.Eventually(t, 5*time.Second, func() bool { return b.store.pipe.trips.Load() == trips+2 },
		"the claim is on the wire")
	b.store.pipe.mu.Lock()
	left := len(b.store.pipe.queue)
	b.store.pipe.mu.Unlock()
	require.Equal(t, queued, left, "the claim's round trip took the other calls waiting")
	require.NoError(t, rs.Resume())
	for range 1 + queued {
		require.NoError(t, <-extended)
	}
	require.NoError(t, <-claimed)
	require.Equal(t, trips+3, b.store.pipe.trips.Load(), "the waiting extends went in one round trip of their own")
}

// pausedAfterWarmCalls claims and extends job "warm" on a Redis of the
// test's own (so that each later call is one EVALSHA), then pauses that
// Redis until the test ends. It returns the round trips made so far.
func pausedAfterWarmCalls(t *testing.T) (*testBundle, *dqtest.Server, int64, int64) {
	t.Helper()
	rs := dqtest.NewRedis(t)
	b := setupOn(t, redis.RedisConf{Host: rs.Addr(), Type: "node"})
	now := b.now(t)
	_, err := b.store.Claim(b.ctx, b.tube, "warm", "c-warm", now, Copy{N: 1, Slot: 0, Ref: testRef}, 30000, 3)
	require.NoError(t, err)
	_, err = b.store.Extend(b.ctx, b.tube, "warm", "c-warm", 30000)
	require.NoError(t, err)
	trips := b.store.pipe.trips.Load()
	require.NoError(t, rs.Pause())
	t.Cleanup(func() { _ = rs.Resume() })
	return b, rs, now, trips
}
