package node

import "syscall"

// quietLowat is the receive low-water mark of a quiet connection (see
// pipe.quiet): more than the replies a lone enqueue leaves unread, so that
// they arrive without waking the runtime's poller.
const quietLowat = 1024

// quietSupported tells whether the kernel leaves a socket's poller asleep
// until its low-water mark is reached (Linux TCP since 4.18; on older ones
// the mark is merely not honoured for wake-ups, which costs nothing).
const quietSupported = true

// setLowat sets the socket's receive low-water mark.
func setLowat(fd uintptr, n int) {
	_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
}
