package ptimer

import (
	"os"
	"sync"
	"time"

	"github.com/zerodq/zerodq/internal/routine"
	"golang.org/x/sys/unix"
)

// timerfd is a kernel timer read by a goroutine parked in the runtime's
// poller until the timer fires. That goroutine starts the next reader, then
// calls back: the callback's work starts without waiting for a goroutine to
// be scheduled.
type timerfd struct {
	fd      int
	f       *os.File
	fire    func()
	readers sync.WaitGroup
}

func newKernelTimer(fire func()) (kernelTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// A non-blocking descriptor makes a pollable File.
	return &timerfd{fd: fd, f: os.NewFile(uintptr(fd), "timerfd"), fire: fire}, nil
}

func (k *timerfd) start() {
	k.readers.Add(1)
	go k.read()
}

// read waits for the timer to fire, hands the reading on to a new goroutine
// and calls back; it ends when the timer is closed.
func (k *timerfd) read() {
	// The callback runs here when the timer fires: grow the stack it will
	// need now, while waiting.
	routine.GrowStack()
	var b [8]byte
	_, err := k.f.Read(b[:])
	if err != nil {
		k.readers.Done()
		return
	}
	k.readers.Add(1)
	go k.read()
	k.readers.Done()
	k.fire()
}

func (k *timerfd) set(d time.Duration) {
	var spec unix.ItimerSpec
	if d > 0 {
		spec.Value = unix.NsecToTimespec(int64(d))
	}
	_ = unix.TimerfdSettime(k.fd, 0, &spec, nil)
}

func (k *timerfd) close() {
	_ = k.f.Close()
	k.readers.Wait()
}
