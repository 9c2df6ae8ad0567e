package dq

import (
	"errors"
	"fmt"
	"strconv"
)

// The errors of package dq live in this file: the sentinel values and the
// error types users match with errors.Is and errors.As, whichever part of the
// package returns them. Errors wrap one of these with %w and add context, so a
// match works through every layer.

var (
	// ErrBadConfig is matched by every error that rejects a DqConf; the
	// *ConfigError behind it names the field.
	ErrBadConfig = errors.New("dq: bad config")
)

// ConfigError reports a DqConf field whose value is not acceptable. It
// matches ErrBadConfig with errors.Is.
type ConfigError struct {
	// Field is the path of the field, as in Beanstalks[1].Tube.
	Field string
	// Value is the value that was rejected, after defaults were applied.
	Value any
	// Reason says what is wrong with Value.
	Reason string
}

// Error returns the message, naming the field and the rejected value.
func (e *ConfigError) Error() string {
	value := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		value = strconv.Quote(s)
	}
	return ErrBadConfig.Error() + ": " + e.Field + " = " + value + ": " + e.Reason
}

// Is reports whether target is ErrBadConfig, so that callers need not know the
// error's type to recognise a configuration problem.
func (e *ConfigError) Is(target error) bool {
	return target == ErrBadConfig
}

func badConfig(field string, value any, reason string) error {
	return &ConfigError{Field: field, Value: value, Reason: reason}
}
