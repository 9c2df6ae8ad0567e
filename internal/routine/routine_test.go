package routine

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestLoopRunsOnceAndStopWaitsForItsFunctionToReturn(t *testing.T) {
	l := NewLoop()
	var runs, returned atomic.Int32
	entered := make(chan struct{})
	fn := func(stop <-chan struct{}) {
		runs.Add(1)
		close(entered)
		<-stop
		time.Sleep(10 * time.Millisecond) // still working after the signal
		returned.Add(1)
	}
	l.Start(fn)
	l.Start(fn)
	<-entered
	l.Stop()
	if returned.Load() != 1 {
		t.Fatal("Stop returned before the function did")
	}
	l.Stop() // idempotent
	if runs.Load() != 1 {
		t.Fatalf("function ran %d times, want 1", runs.Load())
	}
	select {
	case <-l.Stopping():
	default:
		t.Fatal("Stopping is not closed after Stop")
	}
}

func TestLoopStoppedBeforeStartNeverRuns(t *testing.T) {
	l := NewLoop()
	l.Stop()
	ran := make(chan struct{}, 1)
	l.Start(func(<-chan struct{}) { ran <- struct{}{} })
	l.Stop()
	select {
	case <-ran:
		t.Fatal("a Loop stopped before Start ran its function")
	default:
	}
}

func TestSleepReturnsEarlyOnStop(t *testing.T) {
	stop := make(chan struct{})
	if !Sleep(stop, time.Millisecond) {
		t.Fatal("Sleep reported a stop that did not happen")
	}
	if !Sleep(stop, 0) {
		t.Fatal("Sleep(0) reported a stop that did not happen")
	}
	close(stop)
	start := time.Now()
	if Sleep(stop, time.Hour) {
		t.Fatal("Sleep reported the whole hour after a stop")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep did not return on stop")
	}
	if Sleep(stop, 0) {
		t.Fatal("Sleep(0) after a stop reported true")
	}
}

func TestGroupStopWaitsForEveryGoroutineAndGoAfterStopStartsNothing(t *testing.T) {
	g := NewGroup()
	var returned atomic.Int32
	for range 3 {
		if !g.Go(func(stop <-chan struct{}) {
			<-stop
			returned.Add(1)
		}) {
			t.Fatal("Go refused before Stop")
		}
	}
	g.Stop()
	if returned.Load() != 3 {
		t.Fatalf("Stop returned with %d of 3 goroutines done", returned.Load())
	}
	if g.Go(func(<-chan struct{}) { t.Error("ran after Stop") }) {
		t.Fatal("Go after Stop reported a start")
	}
	g.Stop()
}
