package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// hub fans the poller's events out to the open event streams. The poller is
// one goroutine per Dashboard, however many browsers watch: it starts with
// the first subscriber and stops when the last leaves or the Dashboard
// closes. A subscriber too slow to take an event within its buffer misses
// it (the next one carries the whole state again).
type hub struct {
	d *Dashboard

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	stopCh  chan struct{}     // closes to stop the running poller; nil when none runs
	done    chan struct{}     // closed when that poller has returned
	last    map[string][]byte // the latest event of each name and queue, for newcomers while the poller runs
	stopped bool
}

type subscriber struct {
	ch chan []byte
}

// subBuffer is the events a subscriber may fall behind by before it misses
// some.
const subBuffer = 16

func newHub(d *Dashboard) *hub {
	return &hub{d: d, subs: map[*subscriber]struct{}{}, last: map[string][]byte{}}
}

// errTooManyStreams refuses an event stream over Dashboard.maxStreams.
var errTooManyStreams = errors.New("admin: too many event streams open")

// subscribe adds a subscriber, starting the poller if it is the first. It
// returns ErrClosed once the Dashboard is closed, and errTooManyStreams
// when maxStreams are open.
func (h *hub) subscribe() (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, ErrClosed
	}
	if len(h.subs) >= h.d.maxStreams {
		return nil, errTooManyStreams
	}
	if h.stopCh == nil {
		// What an earlier poller saw is stale: the new one's first poll
		// tells the state as it is now.
		clear(h.last)
	}
	s := &subscriber{ch: make(chan []byte, subBuffer)}
	for _, ev := range h.last {
		select {
		case s.ch <- ev:
		default:
		}
	}
	h.subs[s] = struct{}{}
	if h.stopCh == nil {
		h.stopCh, h.done = make(chan struct{}), make(chan struct{})
		go h.poll(h.stopCh, h.done)
	}
	return s, nil
}

// unsubscribe removes s and stops the poller when none remain; it waits
// for the poller to return.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	var done chan struct{}
	if len(h.subs) == 0 && h.stopCh != nil {
		close(h.stopCh)
		done = h.done
		h.stopCh, h.done = nil, nil
	}
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

// stop ends the poller for good and closes every subscriber's stream.
func (h *hub) stop() {
	h.mu.Lock()
	h.stopped = true
	var done chan struct{}
	if h.stopCh != nil {
		close(h.stopCh)
		done = h.done
		h.stopCh, h.done = nil, nil
	}
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

// running tells whether a poller runs (for tests).
func (h *hub) running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stopCh != nil
}

// publish sends an event of queue to every subscriber, dropping it for
// those whose buffer is full.
func (h *hub) publish(name, queue string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, data)
	ev := b.Bytes()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last[name+"\x00"+queue] = ev
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
		}
	}
}

// poll reads the queues every Poll until stop closes: an "overview" event
// per queue each time, and a "lateness" event per queue whenever a
// consumer has written an interval the poller had not seen.
func (h *hub) poll(stop, done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-h.d.closed:
		}
		cancel()
	}()
	seen := map[string]time.Time{} // consumer ID → To of its latest interval merged
	t := time.NewTicker(h.d.c.Poll)
	defer t.Stop()
	for {
		for _, in := range h.d.queues {
			h.pollQueue(ctx, in, seen)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *hub) pollQueue(ctx context.Context, in *dq.Inspector, seen map[string]time.Time) {
	rctx, cancel := context.WithTimeout(ctx, h.d.c.Timeout)
	defer cancel()
	o, cs := h.d.readOverview(rctx, in)
	if ctx.Err() != nil {
		return
	}
	h.publish("overview", in.Queue(), o)
	var l dq.Lateness
	fresh := false
	for _, c := range cs {
		key := in.Queue() + "\x00" + c.ID
		if c.Lateness.To.IsZero() || !c.Lateness.To.After(seen[key]) {
			continue
		}
		seen[key] = c.Lateness.To
		fresh = true
		l.Merge(c.Lateness)
	}
	if !fresh {
		return
	}
	v := newLatenessView(l)
	v.Queue = in.Queue()
	h.publish("lateness", in.Queue(), v)
}

// apiEvents streams the poller's events to one subscriber (at most
// maxStreams at once, 503 beyond), with a comment
// every heartbeat so proxies keep the connection open.
func (d *Dashboard) apiEvents(w http.ResponseWriter, r *http.Request, rq *request) {
	if _, ok := w.(http.Flusher); !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported by this server")
		return
	}
	if r.Method == http.MethodHead {
		// A HEAD gets no body: its headers, and no stream to hold.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	s, err := d.hub.subscribe()
	if err != nil {
		if errors.Is(err, errTooManyStreams) {
			w.Header().Set("Retry-After", strconv.Itoa(int(max(d.heartbeat/time.Second, 1))))
		}
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer d.hub.unsubscribe(s)
	// The server's own write deadline (go-zero sets one from its timeout)
	// would cut the stream; instead each write has a heartbeat to go out,
	// so that a client that stops reading (its buffers full) ends its
	// stream rather than holding this goroutine in Write for good.
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(d.heartbeat))
		if _, err := w.Write(b); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			return false
		}
		return r.Context().Err() == nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !write([]byte(": zerodq events\n\n")) {
		return
	}
	beat := time.NewTicker(d.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.closed:
			return
		case ev := <-s.ch:
			if !write(ev) {
				return
			}
		case <-beat.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		}
	}
}
