package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// The lateness floor is what no consumer can beat on this machine under this
// load: a goroutine that sleeps on a Go timer until each due time, then sends
// one EVALSHA of a trivial script on a connection of its own, and the time
// its reply comes back. A zerodq job cannot start earlier than that: its
// claim is such a round trip made after such a wake-up. The requests are not
// held back for earlier replies (one connection pipelines them, as the
// consumer's claims are), so a slow reply delays only the replies behind it
// on the wire. Measured in the same run, beside the consumer, the floor tells
// the part of the lateness that is ours from the part the machine and Redis
// impose.

// floorScript is the trivial script of the floor's round trips.
const floorScript = "return 1"

// floorProbe measures the floor on one Redis connection of its own.
type floorProbe struct {
	nc  net.Conn
	rd  *bufio.Reader
	sha string
}

// newFloorProbe connects to Redis and loads the script.
func newFloorProbe(addr string) (*floorProbe, error) {
	nc, err := net.DialTimeout("tcp", addr, rawDial)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	f := &floorProbe{nc: nc, rd: bufio.NewReader(nc)}
	if _, err := fmt.Fprintf(nc, "*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$%d\r\n%s\r\n", len(floorScript), floorScript); err != nil {
		f.close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	if _, err := f.rd.ReadString('\n'); err != nil { // $40
		f.close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	sha, err := f.rd.ReadString('\n')
	if err != nil {
		f.close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	f.sha = strings.TrimSpace(sha)
	return f, nil
}

func (f *floorProbe) close() { _ = f.nc.Close() }

// run wakes at each of dues, in time order, sends the script and records how
// long after the due time its reply came. It returns once the last reply
// came, the connection failed or ctx ended (which closes the connection).
func (f *floorProbe) run(ctx context.Context, dues []time.Time) summary {
	dues = slices.Clone(dues)
	slices.SortFunc(dues, func(a, b time.Time) int { return a.Compare(b) })
	lat := newLatencies(len(dues))
	sent := make(chan time.Time, len(dues))
	read := make(chan struct{})
	go func() {
		defer close(read)
		for due := range sent {
			line, err := f.rd.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, ":") {
				return
			}
			lat.add(time.Since(due))
		}
	}()
	stop := context.AfterFunc(ctx, f.close)
	defer stop()
	req := []byte(fmt.Sprintf("*3\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$1\r\n0\r\n", len(f.sha), f.sha))
	for _, due := range dues {
		if !sleepUntil(ctx, due) {
			break
		}
		if _, err := f.nc.Write(req); err != nil {
			break
		}
		sent <- due
	}
	close(sent)
	<-read
	return lat.summary()
}
