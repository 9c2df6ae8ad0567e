package dq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanstalkd/go-beanstalk"
	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/zerodq/zerodq/internal/dqtest"
)

// metricValue sums the samples of a metric whose labels include want: a
// counter's or gauge's value, a histogram's sample count.
func metricValue(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	families, err := prom.DefaultGatherer.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			sum += sampleOf(m)
		}
	}
	return sum
}

func sampleOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func TestMetricsCountWhatHappened(t *testing.T) {
	t.Parallel()
	prometheus.Enable()
	env := dqtest.NewEnv(t, dqtest.EnvOptions{}) // endpoints of its own: per-node counts are this test's
	c := testConf(t, env)
	c.RetryBackoff = 20 * time.Millisecond
	c.MaxRetryBackoff = 50 * time.Millisecond
	tube := c.claimTube()

	var runs atomic.Int32
	var failedOnce atomic.Bool
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		runs.Add(1)
		switch j.Headers["kind"] {
		case "retry":
			if failedOnce.CompareAndSwap(false, true) {
				return errors.New("first run fails")
			}
		case "dead":
			return fmt.Errorf("no use retrying: %w", ErrSkipRetry)
		}
		return nil
	}))
	p := newTestProducer(t, c)
	ctx := context.Background()
	var ids []string
	for _, kind := range []string{"ok", "ok", "ok", "retry", "dead"} {
		id, err := p.DelayCtx(ctx, []byte(kind), 0, WithHeader("kind", kind))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// A job revoked from another producer: its copies reach the consumer.
	revoked, err := p.Delay([]byte("revoked"), 1100*time.Millisecond)
	require.NoError(t, err)
	other := newTestProducer(t, c)
	require.NoError(t, other.Revoke(revoked))
	// A body that is not an envelope.
	conn, err := beanstalk.DialTimeout("tcp", c.Beanstalks[0].Endpoint, time.Second)
	require.NoError(t, err)
	_, err = (&beanstalk.Tube{Conn: conn, Name: c.Beanstalks[0].Tube}).Put([]byte("garbage"), 1, 0, time.Minute)
	require.NoError(t, err)
	_ = conn.Close()

	dqtest.Eventually(t, 20*time.Second, func() bool { return l.allDone(ids[:4]) }, "ok and retried jobs done")
	dqtest.Eventually(t, 20*time.Second, func() bool {
		r, d, rs, b := countJobs(t, c)
		return r+d+rs == 0 && b == 2 // the dead letter and the garbage
	}, "queue settled")

	byTube := func(outcome string) float64 {
		return metricValue(t, "zerodq_consumer_jobs_total", map[string]string{"tube": tube, "outcome": outcome})
	}
	require.Equal(t, 4.0, byTube(outcomeOK))
	require.Equal(t, 1.0, byTube(outcomeRetry))
	require.Equal(t, 1.0, byTube(outcomeDead))
	require.Equal(t, 1.0, byTube(outcomeMalformed))
	require.Equal(t, 3.0, byTube(outcomeRevoked), "the revoked job's three copies")
	// Every copy of the five jobs that did not run it was deleted as a
	// duplicate: two per job.
	require.Equal(t, 10.0, byTube(outcomeDuplicate))

	require.Equal(t, 6.0, metricValue(t, "zerodq_producer_jobs_total", map[string]string{"tube": tube, "result": "ok"}))
	var copies float64
	for _, ep := range env.Endpoints() {
		copies += metricValue(t, "zerodq_producer_copies_total", map[string]string{"node": ep, "result": "ok"})
	}
	require.Equal(t, 18.0, copies, "six jobs, three copies each")

	require.Equal(t, float64(runs.Load()), metricValue(t, "zerodq_consumer_handler_duration_ms", map[string]string{"tube": tube}))
	require.Equal(t, float64(runs.Load()), metricValue(t, "zerodq_consumer_lateness_ms", map[string]string{"tube": tube}))
	require.Equal(t, 6.0, float64(runs.Load()), "3 ok + 2 runs of the retried job + 1 dead")
	require.Zero(t, metricValue(t, "zerodq_consumer_jobs_in_flight", map[string]string{"tube": tube}))
	require.Zero(t, metricValue(t, "zerodq_consumer_copies_held", map[string]string{"tube": tube}))
}

// Not parallel: it installs a global tracer and propagator, under which
// every enqueue carries a trace header (the job-size test counts bytes).
// They are taken away again once its consumer has stopped.
func TestHandlerSpanIsAChildOfTheEnqueueSpan(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
		_ = tp.Shutdown(context.Background())
	})
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	c := sharedConf(t)
	l := newLedger()
	startConsumer(t, c, l.handler(nil))
	p := newTestProducer(t, c)

	ctx, request := tp.Tracer("test").Start(context.Background(), "request")
	id, err := p.DelayCtx(ctx, []byte("traced"), 0)
	require.NoError(t, err)
	request.End()
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.doneCount(id) == 1 }, "job done")

	var enqueue, consume *tracetest.SpanStub
	dqtest.Eventually(t, 5*time.Second, func() bool {
		for _, s := range exporter.GetSpans() {
			for _, a := range s.Attributes {
				if a.Key == attrJobID && a.Value.AsString() == id {
					switch s.Name {
					case "zerodq.enqueue":
						enqueue = &s
					case "zerodq.consume":
						consume = &s
					}
				}
			}
		}
		return enqueue != nil && consume != nil
	}, "both spans exported")
	require.Equal(t, request.SpanContext().SpanID(), enqueue.Parent.SpanID(), "enqueue span is the request's child")
	require.Equal(t, enqueue.SpanContext.TraceID(), consume.SpanContext.TraceID())
	require.Equal(t, enqueue.SpanContext.SpanID(), consume.Parent.SpanID(), "handler span is the enqueue span's child")
	attrs := map[string]bool{}
	for _, a := range consume.Attributes {
		attrs[string(a.Key)] = true
	}
	for _, k := range []string{"zerodq.job.id", "zerodq.job.attempt", "zerodq.tube", "zerodq.lateness_ms"} {
		require.True(t, attrs[k], "consume span lacks %s", k)
	}
}

// Not parallel: it installs a global tracer provider, after the producer was
// made and used untraced, then takes it away.
func TestAnEnqueueIsTracedByTheProviderSetAfterTheProducerWasMade(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	c := sharedConf(t)
	p := newTestProducer(t, c)
	_, err := p.Delay([]byte("untraced"), time.Hour)
	require.NoError(t, err)

	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		_ = tp.Shutdown(context.Background())
	})
	otel.SetTracerProvider(tp)
	id, err := p.Delay([]byte("traced"), time.Hour)
	require.NoError(t, err)

	var found bool
	for _, s := range exporter.GetSpans() {
		attrs := map[attribute.Key]string{}
		for _, a := range s.Attributes {
			attrs[a.Key] = a.Value.Emit()
		}
		require.Equal(t, "zerodq.enqueue", s.Name, "the producer exports its enqueue spans only")
		if attrs[attrJobID] == id {
			found = true
			require.Equal(t, c.Beanstalks[0].Tube, attrs[attrTube])
		}
	}
	require.True(t, found, "the enqueue span of %s was exported", id)
}

// Not parallel: it installs a global propagator. With no tracer provider
// set, an enqueue made within a trace (one a request carried in, say) still
// hands that trace to the handler.
func TestAnEnqueueWithNoProviderCarriesTheTraceOfItsContext(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	t.Cleanup(func() { otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator()) })
	otel.SetTextMapPropagator(propagation.TraceContext{})

	c := sharedConf(t)
	var mu sync.Mutex
	seen := map[string]oteltrace.TraceID{}
	l := newLedger()
	startConsumer(t, c, l.handler(func(ctx context.Context, j Job) error {
		mu.Lock()
		defer mu.Unlock()
		seen[j.ID] = oteltrace.SpanContextFromContext(ctx).TraceID()
		return nil
	}))
	p := newTestProducer(t, c)

	remote := oteltrace.NewSpanContext(oteltrace.SpanContextConfig{
		TraceID: oteltrace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  oteltrace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: oteltrace.FlagsSampled, Remote: true,
	})
	traced, err := p.DelayCtx(oteltrace.ContextWithRemoteSpanContext(context.Background(), remote), []byte("traced"), 0)
	require.NoError(t, err)
	plain, err := p.Delay([]byte("plain"), 0)
	require.NoError(t, err)
	dqtest.Eventually(t, 20*time.Second, func() bool { return l.allDone([]string{traced, plain}) }, "jobs done")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, remote.TraceID(), seen[traced], "the handler runs in the enqueue's trace")
	require.False(t, seen[plain].IsValid(), "a job enqueued outside a trace carries none")
}

func TestVoidProviderIsTheNoOpOnesOnly(t *testing.T) {
	t.Parallel()
	require.True(t, voidProvider(noop.NewTracerProvider()))
	sdk := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	require.False(t, voidProvider(sdk), "a real provider: its spans record")
	require.False(t, voidProvider(nil))
}
