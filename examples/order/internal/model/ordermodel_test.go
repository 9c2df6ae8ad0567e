package model

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func pending(id string) Order {
	return Order{ID: id, Item: "book", Amount: 10, State: StatePending, JobState: JobScheduled, CancelJobID: "cancel-" + id}
}

func TestInsertKeepsTheFirstOrderOfAnID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewMemoryOrderModel()

	first, created, err := m.Insert(ctx, pending("1"))
	require.NoError(t, err)
	require.True(t, created)

	other := pending("1")
	other.Item = "pen"
	got, created, err := m.Insert(ctx, other)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, first, got)
}

func TestCancelLeavesPaidAndCancelledOrdersAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewMemoryOrderModel()
	for _, id := range []string{"paid", "unpaid"} {
		_, _, err := m.Insert(ctx, pending(id))
		require.NoError(t, err)
	}
	_, err := m.Pay(ctx, "paid", time.Now())
	require.NoError(t, err)
	_, err = m.RecordRevoke(ctx, "paid", JobRevoked)
	require.NoError(t, err)

	o, changed, err := m.Cancel(ctx, "paid", Cancellation{At: time.Now(), Attempt: 1})
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, StatePaid, o.State)
	require.Equal(t, JobSkipped, o.JobState, "a revoked job that runs anyway must show")

	c := Cancellation{At: time.Now(), DueAt: time.Now().Add(-time.Millisecond), Attempt: 1}
	o, changed, err = m.Cancel(ctx, "unpaid", c)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, StateCancelled, o.State)
	require.Equal(t, JobFired, o.JobState)

	o, changed, err = m.Cancel(ctx, "unpaid", Cancellation{At: time.Now(), Attempt: 2})
	require.NoError(t, err)
	require.False(t, changed, "a second run changes nothing")
	require.Equal(t, c.At, o.CancelledAt)
	require.Equal(t, 1, o.CancelAttempt)

	_, err = m.Pay(ctx, "unpaid", time.Now())
	require.ErrorIs(t, err, ErrCancelled)
	_, _, err = m.Cancel(ctx, "missing", c)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestPayIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewMemoryOrderModel()
	_, _, err := m.Insert(ctx, pending("1"))
	require.NoError(t, err)

	at := time.Now()
	first, err := m.Pay(ctx, "1", at)
	require.NoError(t, err)
	again, err := m.Pay(ctx, "1", at.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, first, again, "the first payment's time stands")
}

func TestRecordRevokeDoesNotOverwriteARunJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewMemoryOrderModel()
	_, _, err := m.Insert(ctx, pending("1"))
	require.NoError(t, err)
	_, err = m.Pay(ctx, "1", time.Now())
	require.NoError(t, err)
	_, _, err = m.Cancel(ctx, "1", Cancellation{At: time.Now(), Attempt: 1})
	require.NoError(t, err)

	o, err := m.RecordRevoke(ctx, "1", JobNotRevoked)
	require.NoError(t, err)
	require.Equal(t, JobSkipped, o.JobState)
}

func TestPaymentAndCancellationRacingOnAnOrderHaveOneWinner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewMemoryOrderModel()
	const orders = 200
	for i := range orders {
		_, _, err := m.Insert(ctx, pending(strconv.Itoa(i)))
		require.NoError(t, err)
	}

	var wg sync.WaitGroup
	paid := make([]bool, orders)
	cancelled := make([]bool, orders)
	for i := range orders {
		id := strconv.Itoa(i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := m.Pay(ctx, id, time.Now())
			paid[i] = err == nil
		}()
		go func() {
			defer wg.Done()
			_, changed, err := m.Cancel(ctx, id, Cancellation{At: time.Now(), Attempt: 1})
			cancelled[i] = err == nil && changed
		}()
	}
	wg.Wait()

	for i := range orders {
		o, err := m.FindOne(ctx, strconv.Itoa(i))
		require.NoError(t, err)
		require.NotEqual(t, paid[i], cancelled[i], "order %d: exactly one of payment and cancellation wins", i)
		if paid[i] {
			require.Equal(t, StatePaid, o.State)
		} else {
			require.Equal(t, StateCancelled, o.State)
		}
	}
}
