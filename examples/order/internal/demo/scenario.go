package demo

import "time"

// Step is one order of a scenario.
type Step struct {
	ID string
	// CancelAfter is how long the order may stay unpaid.
	CancelAfter time.Duration
	// PayAfter, when positive, pays the order this long after creating it;
	// it must come before CancelAfter for the order to count as paid in time.
	PayAfter time.Duration
	// RetryCreate sends the create request a second time, as a client that
	// lost the first answer does.
	RetryCreate bool
	// PayLate tries to pay the order after it was cancelled.
	PayLate bool
}

// DefaultScenario is what make demo runs: eight orders with delays from 1 s
// to 5 s, four of them paid in time, one create retried and one payment that
// comes too late.
var DefaultScenario = []Step{
	{ID: "1", CancelAfter: 1 * time.Second, PayLate: true},
	{ID: "2", CancelAfter: 1500 * time.Millisecond, PayAfter: 700 * time.Millisecond},
	{ID: "3", CancelAfter: 2 * time.Second, RetryCreate: true},
	{ID: "4", CancelAfter: 2500 * time.Millisecond, PayAfter: 2200 * time.Millisecond},
	{ID: "5", CancelAfter: 3 * time.Second},
	{ID: "6", CancelAfter: 3500 * time.Millisecond, PayAfter: time.Second},
	{ID: "7", CancelAfter: 4250 * time.Millisecond},
	{ID: "8", CancelAfter: 5 * time.Second, PayAfter: 4600 * time.Millisecond},
}
