// Package logic holds the order service's business logic, one type per API
// call (as goctl lays it out) plus the cancellation the worker runs.
package logic

import "errors"

// Errors the handlers turn into HTTP statuses beside the model's.
var (
	// ErrInvalid is wrapped by errors of requests that can never succeed as
	// sent.
	ErrInvalid = errors.New("invalid request")
	// ErrIDTaken is returned when a create reuses the ID of a different order.
	ErrIDTaken = errors.New("order id taken by another order")
	// ErrUnavailable is wrapped by errors of the job queue, which a retry of
	// the same request may get past.
	ErrUnavailable = errors.New("job queue unavailable")
)
