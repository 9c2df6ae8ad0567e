//go:build unix

package dqx

import (
	"math/rand/v2"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// TestEveryTickFiresOnceAcrossRandomOwnershipChanges drives scheduler
// processes of two configs through a random sequence of starts (the config
// started last takes over), kills (the other config takes over once the
// owner's replicas have stopped topping up) and pauses (a paused owner
// resumes in the middle of a round, after the other config took over), then
// checks that every tick of both entries ran exactly once: entry a differs
// between the configs, entry b is the same in both.
func TestEveryTickFiresOnceAcrossRandomOwnershipChanges(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	var log fireLog
	startConsumer(t, c, log.handler())
	conf := func(body string) CronConf {
		return CronConf{Lookahead: 2 * time.Second, Refresh: 250 * time.Millisecond, Entries: []CronEntry{
			{Name: "a", Spec: "@every 1s", Body: body},
			{Name: "b", Spec: "@every 1s", Body: "b"},
		}}
	}
	configs := []CronConf{conf("x"), conf("y")}

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t.Logf("seed %d", seed)

	type proc struct {
		cmd      *exec.Cmd
		name     string
		pausedTo time.Time // zero when running
	}
	var live []*proc
	running := func() int {
		n := 0
		for _, p := range live {
			if p.pausedTo.IsZero() {
				n++
			}
		}
		return n
	}
	last := 0
	start := func() {
		// Mostly the other config than last time, so that ownership flips.
		if rng.IntN(4) > 0 {
			last = 1 - last
		}
		p := &proc{cmd: startChild(t, c, configs[last]), name: string(rune('X' + last))}
		live = append(live, p)
		t.Logf("%s start %s (pid %d)", time.Now().Format("05.000"), p.name, p.cmd.Process.Pid)
	}
	resumeDue := func(now time.Time) {
		for _, p := range live {
			if !p.pausedTo.IsZero() && !now.Before(p.pausedTo) {
				require.NoError(t, p.cmd.Process.Signal(syscall.SIGCONT))
				p.pausedTo = time.Time{}
				t.Logf("%s resume %s (pid %d)", now.Format("05.000"), p.name, p.cmd.Process.Pid)
			}
		}
	}

	started := time.Now()
	start()
	from := awaitFirstFire(t, &log, "a", started)
	deadline := time.Now().Add(12 * time.Second)
	for step := 0; step < 12 && time.Now().Before(deadline); step++ {
		resumeDue(time.Now())
		switch k := rng.IntN(3); {
		case k == 0 || len(live) == 0 || running() < 2 && len(live) < 4:
			start()
		case k == 1:
			// Kill any but the last one running.
			i := rng.IntN(len(live))
			if p := live[i]; !p.pausedTo.IsZero() || running() > 1 {
				require.NoError(t, p.cmd.Process.Kill())
				live = slices.Delete(live, i, i+1)
				t.Logf("%s kill %s (pid %d)", time.Now().Format("05.000"), p.name, p.cmd.Process.Pid)
			}
		default:
			i := rng.IntN(len(live))
			if p := live[i]; p.pausedTo.IsZero() && running() > 1 {
				require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
				p.pausedTo = time.Now().Add(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
				t.Logf("%s pause %s (pid %d)", time.Now().Format("05.000"), p.name, p.cmd.Process.Pid)
			}
		}
		<-time.After(time.Duration(300+rng.IntN(900)) * time.Millisecond)
	}
	resumeDue(time.Now().Add(time.Hour))

	to := time.Now().Add(3 * time.Second)
	for _, e := range []string{"a", "b"} {
		dqtest.Eventually(t, 10*time.Second, func() bool { return log.ran(e, to) }, "fire of %s at %v", e, to)
	}
	runs := log.snapshot()
	requireNoFireTwice(t, runs)
	requireEverySecondOnce(t, runs, "a", from, to)
	requireEverySecondOnce(t, runs, "b", from, to)
}
