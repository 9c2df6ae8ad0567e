package dqx

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/internal/dqtest"
)

type order struct {
	ID      int64             `json:"id"`
	Items   []string          `json:"items"`
	Placed  time.Time         `json:"placed"`
	Labels  map[string]string `json:"labels"`
	Express bool              `json:"express"`
}

type refund struct {
	OrderID int64 `json:"order_id"`
	Cents   int   `json:"cents"`
}

// received collects what typed handlers were given.
type received[T any] struct {
	mu   sync.Mutex
	vals []T
	jobs []dq.Job
}

func (r *received[T]) handle(ctx context.Context, v T) error {
	job, _ := dq.JobFromContext(ctx)
	r.mu.Lock()
	r.vals = append(r.vals, v)
	r.jobs = append(r.jobs, job)
	r.mu.Unlock()
	return nil
}

func (r *received[T]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.vals)
}

func newProducer(t *testing.T, c dq.DqConf) dq.Producer {
	t.Helper()
	p, err := dq.NewProducer(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestTypedJobRoundTripsThroughTheQueue(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := newProducer(t, c)
	orders := NewTypedProducer[order](p, "order.created")
	var got received[order]
	mux := NewMux()
	mux.Handle(orders.Type(), Handle(got.handle))
	startConsumer(t, c, mux)

	want := order{ID: 42, Items: []string{"tea", "cake"}, Placed: time.Date(2026, 3, 14, 2, 0, 0, 0, time.UTC),
		Labels: map[string]string{"gift": "yes"}, Express: true}
	ctx := context.Background()
	id1, err := orders.Enqueue(ctx, want, 0, dq.WithHeader("tenant", "t1"))
	require.NoError(t, err)
	at := time.Now().Add(300 * time.Millisecond)
	id2, err := orders.EnqueueAt(ctx, order{ID: 43}, at)
	require.NoError(t, err)

	dqtest.Eventually(t, 5*time.Second, func() bool { return got.len() == 2 }, "both orders")
	got.mu.Lock()
	defer got.mu.Unlock()
	byID := map[string]int{got.jobs[0].ID: 0, got.jobs[1].ID: 1}
	require.Equal(t, want, got.vals[byID[id1]])
	require.Equal(t, "t1", got.jobs[byID[id1]].Headers["tenant"], "caller headers travel too")
	require.Equal(t, "order.created", got.jobs[byID[id1]].Headers[TypeHeader])
	require.Equal(t, order{ID: 43}, got.vals[byID[id2]])
	require.False(t, got.jobs[byID[id2]].DueAt.Before(at.Truncate(time.Millisecond)))
}

func TestMuxRoutesEachJobOfOneTubeToTheHandlerOfItsType(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := newProducer(t, c)
	var orders received[order]
	var refunds received[refund]
	var mu sync.Mutex
	var plain, crons []string
	mux := NewMux()
	mux.Handle("order", Handle(orders.handle))
	mux.Handle("refund", Handle(refunds.handle))
	mux.HandleFunc("", func(ctx context.Context, body []byte) error {
		mu.Lock()
		plain = append(plain, string(body))
		mu.Unlock()
		return nil
	})
	mux.HandleCron("tick", dq.WithHandle(func(ctx context.Context, body []byte) error {
		f, ok := FireFromContext(ctx)
		if !ok {
			return errors.New("a cron job without its fire")
		}
		mu.Lock()
		crons = append(crons, f.Entry+":"+string(body))
		mu.Unlock()
		return nil
	}))
	startConsumer(t, c, mux)
	startScheduler(t, c, everySecond(CronEntry{Name: "tick", Spec: "@every 1s", Body: "b"}))

	ctx := context.Background()
	for i := range 3 {
		_, err := NewTypedProducer[order](p, "order").Enqueue(ctx, order{ID: int64(i)}, 0)
		require.NoError(t, err)
	}
	_, err := NewTypedProducer[refund](p, "refund").Enqueue(ctx, refund{OrderID: 1, Cents: 250}, 0)
	require.NoError(t, err)
	_, err = p.DelayCtx(ctx, []byte("untyped"), 0)
	require.NoError(t, err)

	dqtest.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return orders.len() == 3 && refunds.len() == 1 && len(plain) == 1 && len(crons) > 0
	}, "every kind of job handled")
	require.Equal(t, refund{OrderID: 1, Cents: 250}, refunds.vals[0])
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"untyped"}, plain)
	require.Equal(t, "tick:b", crons[0])
}

func TestMuxDeadLettersJobsOfAnUnknownType(t *testing.T) {
	t.Parallel()
	c := sharedConf(t)
	p := newProducer(t, c)
	mux := NewMux()
	mux.HandleFunc("known", func(ctx context.Context, body []byte) error { return nil })
	var mu sync.Mutex
	var errs []error
	startConsumer(t, c, dq.WithHandle(func(ctx context.Context, body []byte) error {
		err := mux.Consume(ctx, body)
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		return err
	}))

	ctx := context.Background()
	id, err := p.DelayCtx(ctx, []byte("?"), 0, dq.WithHeader(TypeHeader, "unknown"))
	require.NoError(t, err)
	dqtest.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(errs) > 0
	}, "job %s handled", id)
	mu.Lock()
	require.ErrorIs(t, errs[0], ErrUnknownType)
	mu.Unlock()
	// Once its handler has run, a revoke only reads the job's state.
	dqtest.Eventually(t, 5*time.Second, func() bool {
		return errors.Is(p.RevokeCtx(ctx, id), dq.ErrDead)
	}, "job %s dead", id)
}

func TestMuxErrorForAnUnknownTypeSkipsRetries(t *testing.T) {
	t.Parallel()
	err := NewMux().Consume(context.Background(), []byte("x"))
	require.ErrorIs(t, err, ErrUnknownType)
	require.ErrorIs(t, err, dq.ErrSkipRetry)
}

func TestMuxRefusesNilAndDuplicateHandlers(t *testing.T) {
	t.Parallel()
	mux := NewMux()
	mux.HandleFunc("a", func(context.Context, []byte) error { return nil })
	require.Panics(t, func() { mux.HandleFunc("a", func(context.Context, []byte) error { return nil }) })
	require.Panics(t, func() { mux.Handle("b", nil) })
}

func TestTypedHandlerDeadLettersABodyThatDoesNotDecode(t *testing.T) {
	t.Parallel()
	called := false
	h := Handle(func(context.Context, order) error { called = true; return nil })
	err := h.Consume(context.Background(), []byte(`{"id": "not a number"}`))
	require.ErrorIs(t, err, ErrDecode)
	require.ErrorIs(t, err, dq.ErrSkipRetry)
	require.False(t, called)

	boom := errors.New("boom")
	h = Handle(func(context.Context, order) error { return boom })
	err = h.Consume(context.Background(), []byte(`{"id": 1}`))
	require.ErrorIs(t, err, boom, "the handler's own error means retry")
	require.NotErrorIs(t, err, dq.ErrSkipRetry)
}

// upperCodec is a codec of its own: JSON with the body upper-cased, so the
// test can tell it was used on both sides.
type upperCodec struct{}

func (upperCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return []byte(strings.ToUpper(string(b))), err
}

func (upperCodec) Unmarshal(data []byte, v any) error {
	return json.Unmarshal([]byte(strings.ToLower(string(data))), v)
}

func TestTypedProducerAndHandlerUseTheGivenCodec(t *testing.T) {
	t.Parallel()
	p := &fakeProducer{}
	tp := NewTypedProducer[refund](p, "", WithCodec(upperCodec{}))
	require.Equal(t, "dqx.refund", tp.Type(), "the Go type name by default")
	_, err := tp.Enqueue(context.Background(), refund{OrderID: 7, Cents: 1}, time.Second)
	require.NoError(t, err)
	calls := p.take()
	require.Equal(t, `{"ORDER_ID":7,"CENTS":1}`, calls[0].body)
	require.Equal(t, time.Second, calls[0].delay)

	var got refund
	h := Handle(func(_ context.Context, r refund) error { got = r; return nil }, WithCodec(upperCodec{}))
	require.NoError(t, h.Consume(context.Background(), []byte(calls[0].body)))
	require.Equal(t, refund{OrderID: 7, Cents: 1}, got)
}

func TestTypedProducerReportsValuesItCannotEncode(t *testing.T) {
	t.Parallel()
	tp := NewTypedProducer[chan int](&fakeProducer{}, "chan")
	_, err := tp.Enqueue(context.Background(), make(chan int), 0)
	require.Error(t, err)
	_, err = tp.EnqueueAt(context.Background(), make(chan int), time.Now())
	require.Error(t, err)
}
