// Package model keeps the orders. The store is in memory (a map behind a
// mutex): enough for the example, lost on restart and not shared between
// processes. A real service puts the same methods on its database, where each
// state change is one conditional update (UPDATE ... WHERE state = 'pending').
package model

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Errors of the order model.
var (
	// ErrNotFound is returned for an order ID that is not stored.
	ErrNotFound = errors.New("order not found")
	// ErrCancelled is returned when paying an order that was cancelled.
	ErrCancelled = errors.New("order already cancelled")
)

// State is where an order is in its life.
type State string

// The states of an order. Pending moves to Paid or Cancelled, never back.
const (
	StatePending   State = "pending"
	StatePaid      State = "paid"
	StateCancelled State = "cancelled"
)

// JobState says what became of an order's cancellation job.
type JobState string

// The states of an order's cancellation job.
const (
	// JobScheduled: enqueued, not yet due or not yet run.
	JobScheduled JobState = "scheduled"
	// JobRevoked: the payment revoked it; it never runs.
	JobRevoked JobState = "revoked"
	// JobNotRevoked: the payment came too late to revoke it (it was running
	// or had run); the handler finds the order paid and leaves it.
	JobNotRevoked JobState = "not-revoked"
	// JobFired: it ran and cancelled the order.
	JobFired JobState = "fired"
	// JobSkipped: it ran and found the order no longer pending.
	JobSkipped JobState = "skipped"
)

// Order is one order and its cancellation job.
type Order struct {
	ID        string
	Item      string
	Amount    int64
	State     State
	CreatedAt time.Time
	// CancelJobID is the ID of the job that cancels the order if unpaid.
	CancelJobID string
	// CancelDueAt is when that job is due: the service's estimate until the
	// job runs, then the exact due time the job carried.
	CancelDueAt time.Time
	JobState    JobState
	PaidAt      time.Time
	// CancelledAt is when the job's handler cancelled the order.
	CancelledAt time.Time
	// CancelAttempt is the job attempt that cancelled the order.
	CancelAttempt int
}

// OrderModel stores orders. Every state change is checked and made in one
// step, so a payment and a cancellation racing on one order cannot both win.
type OrderModel interface {
	// Insert stores o unless an order with its ID exists, and returns the
	// stored order and whether this call created it.
	Insert(ctx context.Context, o Order) (Order, bool, error)
	// FindOne returns the order with the given ID or ErrNotFound.
	FindOne(ctx context.Context, id string) (Order, error)
	// Pay moves a pending order to paid. Paying a paid order again changes
	// nothing; paying a cancelled one fails with ErrCancelled.
	Pay(ctx context.Context, id string, at time.Time) (Order, error)
	// Cancel moves a pending order to cancelled and records the job that did
	// it. An order that is paid or already cancelled is left as it is and
	// changed is false.
	Cancel(ctx context.Context, id string, c Cancellation) (o Order, changed bool, err error)
	// RecordRevoke records the outcome of revoking the order's cancellation
	// job (JobRevoked or JobNotRevoked). It changes nothing once the job has
	// run, whose own record is the truer one.
	RecordRevoke(ctx context.Context, id string, s JobState) (Order, error)
}

// Cancellation describes the job run that cancels an order.
type Cancellation struct {
	At      time.Time // when the handler ran
	DueAt   time.Time // when the job was due
	Attempt int
}

type memoryOrderModel struct {
	mu     sync.Mutex
	orders map[string]*Order
}

// NewMemoryOrderModel returns an empty OrderModel kept in memory.
func NewMemoryOrderModel() OrderModel {
	return &memoryOrderModel{orders: make(map[string]*Order)}
}

func (m *memoryOrderModel) Insert(_ context.Context, o Order) (Order, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	if old, ok := m.orders[o.ID]; ok {
		return *old, false, nil
	}
	stored := o
	m.orders[o.ID] = &stored
	return stored, true, nil
}

func (m *memoryOrderModel) FindOne(_ context.Context, id string) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	o, ok := m.orders[id]
	if !ok {
		return Order{}, ErrNotFound
	}
	return *o, nil
}

func (m *memoryOrderModel) Pay(_ context.Context, id string, at time.Time) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	o, ok := m.orders[id]
	if !ok {
		return Order{}, ErrNotFound
	}
	switch o.State {
	case StateCancelled:
		return *o, ErrCancelled
	case StatePending:
		o.State, o.PaidAt = StatePaid, at
	}
	return *o, nil
}

func (m *memoryOrderModel) Cancel(_ context.Context, id string, c Cancellation) (Order, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	o, ok := m.orders[id]
	if !ok {
		return Order{}, false, ErrNotFound
	}
	// The state is read and written under one lock: a payment that got
	// here first wins, and the order stays paid.
	switch o.State {
	case StatePaid:
		// Recorded even over "revoked", so that a revoked job that ran
		// anyway would show.
		o.JobState = JobSkipped
		return *o, false, nil
	case StateCancelled:
		return *o, false, nil
	}
	o.State = StateCancelled
	o.CancelledAt, o.CancelDueAt, o.CancelAttempt = c.At, c.DueAt, c.Attempt
	o.JobState = JobFired
	return *o, true, nil
}

func (m *memoryOrderModel) RecordRevoke(_ context.Context, id string, s JobState) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	o, ok := m.orders[id]
	if !ok {
		return Order{}, ErrNotFound
	}
	if o.JobState == JobScheduled || o.JobState == JobNotRevoked {
		o.JobState = s
	}
	return *o, nil
}
