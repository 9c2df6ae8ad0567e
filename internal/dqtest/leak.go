package dqtest

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// VerifyNoLeaks fails t if goroutines started during the test still run a
// few seconds after it ends (after the test's own cleanups: call it first).
// Only tests that do not call t.Parallel may use it: goroutines of tests
// running beside it would count. Goroutines that outlive a test by design
// are ignored: go-redis's pool in go-zero's Redis client, which is shared per
// address and never closed (its reaper, and its redialling of a Redis that
// went away), and the harness's wait for each server process it started.
func VerifyNoLeaks(t testing.TB) {
	t.Helper()
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
		goleak.IgnoreAnyFunction("github.com/zerodq/zerodq/internal/dqtest.(*Server).launch.func1"),
	}
	t.Cleanup(func() {
		var err error
		if !Await(5*time.Second, func() bool {
			err = goleak.Find(opts...)
			return err == nil
		}) {
			t.Errorf("goroutines left running: %v", err)
		}
	})
}
