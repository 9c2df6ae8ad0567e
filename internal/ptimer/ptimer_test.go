package ptimer

import (
	"sync/atomic"
	"testing"
	"time"
)

// fired returns a timer that sends the time of each call on the channel.
func fired(t *testing.T) (*Timer, chan time.Time) {
	t.Helper()
	ch := make(chan time.Time, 16)
	tm := New(func() { ch <- time.Now() })
	t.Cleanup(tm.Close)
	return tm, ch
}

func testTimerFiresOnceNoEarlierThanItsDeadline(t *testing.T) {
	tm, ch := fired(t)
	for _, d := range []time.Duration{time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond} {
		start := time.Now()
		tm.Reset(d)
		select {
		case at := <-ch:
			if got := at.Sub(start); got < d {
				t.Fatalf("Reset(%v) fired after %v: early", d, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Reset(%v) never fired", d)
		}
		select {
		case <-ch:
			t.Fatalf("Reset(%v) fired twice", d)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func testTimerResetReplacesTheDeadline(t *testing.T) {
	tm, ch := fired(t)
	start := time.Now()
	tm.Reset(time.Hour)
	tm.Reset(time.Millisecond)
	select {
	case at := <-ch:
		if at.Sub(start) < time.Millisecond {
			t.Fatal("fired early")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the earlier deadline set by Reset never fired")
	}
	tm.Reset(time.Millisecond)
	tm.Reset(time.Hour)
	select {
	case <-ch:
		t.Fatal("fired at a deadline Reset replaced")
	case <-time.After(50 * time.Millisecond):
	}
}

func testTimerStopAndCloseKeepItFromFiring(t *testing.T) {
	tm, ch := fired(t)
	tm.Reset(5 * time.Millisecond)
	tm.Stop()
	select {
	case <-ch:
		t.Fatal("fired after Stop")
	case <-time.After(50 * time.Millisecond):
	}
	tm.Reset(5 * time.Millisecond)
	tm.Close()
	select {
	case <-ch:
		t.Fatal("fired after Close")
	case <-time.After(50 * time.Millisecond):
	}
}

// The function may block: the timer fires again meanwhile.
func testTimerFiresAgainWhileItsFunctionBlocks(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	calls := make(chan int32, 4)
	var n atomic.Int32
	again := make(chan struct{}, 1)
	tm := New(func() {
		k := n.Add(1)
		calls <- k
		if k == 1 {
			again <- struct{}{}
			<-block
		}
	})
	defer tm.Close()
	tm.Reset(time.Millisecond)
	go func() {
		<-again
		tm.Reset(time.Millisecond)
	}()
	for want := int32(1); want <= 2; want++ {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("call %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d never came (the first one blocks)", want)
		}
	}
}

func TestTimerFiresOnceNoEarlierThanItsDeadline(t *testing.T) {
	bothTimers(t, testTimerFiresOnceNoEarlierThanItsDeadline)
}

func TestTimerResetReplacesTheDeadline(t *testing.T) {
	bothTimers(t, testTimerResetReplacesTheDeadline)
}

func TestTimerStopAndCloseKeepItFromFiring(t *testing.T) {
	bothTimers(t, testTimerStopAndCloseKeepItFromFiring)
}

func TestTimerFiresAgainWhileItsFunctionBlocks(t *testing.T) {
	bothTimers(t, testTimerFiresAgainWhileItsFunctionBlocks)
}

// bothTimers runs test on the kernel's timer and on the Go timer fallback.
func bothTimers(t *testing.T, test func(t *testing.T)) {
	t.Run("kernel", test)
	t.Run("go", func(t *testing.T) {
		goTimerOnly = true
		defer func() { goTimerOnly = false }()
		test(t)
	})
}
