package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/dqtest"
)

func TestUnknownCommandIsAOneLineUsageError(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.zerodq(t, "frobnicate").failed(t, exitUsage, `unknown command "frobnicate"`)
	b.zerodq(t, "job", "frob", "x").failed(t, exitUsage, `unknown command "job frob"`)
	b.zerodq(t, "dead").failed(t, exitUsage, "dead: a subcommand is needed")
	b.zerodq(t).failed(t, exitUsage, "no command given")
	b.zerodq(t, "stats", "--no-such-flag").failed(t, exitUsage, "no-such-flag")
	runCLI(t, "stats").failed(t, exitUsage, "-f")
}

func TestYamlWithoutTheSectionIsNamedAndExits2(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	for _, args := range [][]string{
		{"--section", "Orders", "stats"},
		{"stats", "--section", "Orders"},
		{"--section", "Orders", "job", "get", "x"},
	} {
		b.zerodq(t, args...).failed(t, exitUsage, "no Orders section", b.file)
	}
	b.zerodq(t, "cron", "ls").failed(t, exitUsage, "no Cron section", b.file)
	b.zerodq(t, "cron", "ls", "--cron-section", "Reports").failed(t, exitUsage, "no Reports section")

	missing := filepath.Join(t.TempDir(), "absent.yaml")
	runCLI(t, "-f", missing, "stats").failed(t, exitUsage, missing)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("Dq:\n  Beanstalks: []\n  Redis: {Host: 127.0.0.1:1}\n  TTR: 1s\n"),
		0o600))
	runCLI(t, "-f", bad, "stats").failed(t, exitUsage, "Beanstalks")
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	t.Parallel()
	cl := &cli{}
	for _, c := range cl.commands() {
		args := append(strings.Fields(c.name), "-h")
		r := runCLI(t, args...)
		require.Equal(t, 0, r.code, "%s -h", c.name)
		require.Contains(t, r.stderr, "usage: zerodq "+c.name, c.name)
		require.Contains(t, r.stderr, "examples:\n  zerodq -f", c.name)
		require.Contains(t, r.stderr, "-json", c.name)
		require.Equal(t, c.destructive, strings.Contains(r.stderr, "-yes"), "%s: --yes", c.name)
		require.Equal(t, c.bulk, strings.Contains(r.stderr, "-dry-run"), "%s: --dry-run", c.name)
		// A bulk action over a large index must not be cut off by a default
		// bound; every other command has one.
		require.Equal(t, !c.bulk, strings.Contains(r.stderr, "(default 30s)"), "%s: --timeout default", c.name)
	}
	r := runCLI(t, "-h")
	require.Equal(t, 0, r.code)
	for _, c := range cl.commands() {
		require.Contains(t, r.stderr, "  "+c.name+" ")
	}
}

func TestDestructiveCommandsWithoutYesSayWhatAndChangeNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	p := b.producer(t)
	id, err := p.DelayCtx(context.Background(), []byte("keep me"), time.Second)
	require.NoError(t, err)

	r := b.zerodq(t, "job", "revoke", id)
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "would revoke 1 job(s): "+id)
	require.Contains(t, r.stderr, "pass --yes")
	r = b.zerodq(t, "tube", "pause")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "would pause "+b.conf.Beanstalks[0].Tube)
	r = b.zerodq(t, "dead", "retry", "some-id")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "would retry 1 dead letter(s)")
	r = b.zerodq(t, "dead", "delete", "a", "b")
	require.Equal(t, exitFail, r.code)
	require.Contains(t, r.stdout, "would delete 2 dead letter(s)")

	// Nothing was revoked or paused: the job runs when it comes due.
	ran := b.startConsumer(t, func(context.Context, string) error { return nil })
	dqtest.Eventually(t, 10*time.Second, func() bool { return ran.of(id) == 1 }, "the job not revoked runs")
}

func TestRedisDownIsAOneLineErrorNamingIt(t *testing.T) {
	t.Parallel()
	dead := dqtest.NewRedis(t)
	addr := dead.Addr()
	dead.Kill()
	b := setup(t, setupOpts{redis: addr, cron: "    - { Name: tick, Spec: '@every 1s' }\n"})
	b.zerodq(t, "cron", "ls").failed(t, exitFail, addr)
	b.zerodq(t, "cron", "next", "tick", "--past", "0").failed(t, exitFail, addr)
	b.zerodq(t, "job", "get", "some-job").failed(t, exitFail, "some-job", addr)
	r := b.zerodq(t, "doctor")
	r.failed(t, exitFail, "redis reachable")
	require.Regexp(t, `redis reachable\s+FAIL\s+`+addr, r.stdout)
}

func TestJobEnqueueRejectsBadInputBeforeWriting(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.zerodq(t, "job", "enqueue", "--delay", "1m", "--at", "2030-01-01T00:00:00Z", "--body", "x").
		failed(t, exitUsage, "not both")
	b.zerodq(t, "job", "enqueue", "--at", "tomorrow", "--body", "x").failed(t, exitUsage, `--at "tomorrow"`)
	b.zerodq(t, "job", "enqueue", "--delay", "-1m", "--body", "x").failed(t, exitUsage, "negative")
	missing := filepath.Join(t.TempDir(), "body.json")
	b.zerodq(t, "job", "enqueue", "--delay", "1m", "--body", "@"+missing).failed(t, exitUsage, missing)
	b.zerodq(t, "dead", "ls", "--since", "yesterday").failed(t, exitUsage, `--since "yesterday"`)
	b.zerodq(t, "dead", "retry").failed(t, exitUsage, "give IDs, --all or --grep")
	b.zerodq(t, "dead", "retry", "x", "--all").failed(t, exitUsage, "not both")
	b.zerodq(t, "job", "get").failed(t, exitUsage, "at least one job ID")
}
