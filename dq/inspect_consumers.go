package dq

import (
	"context"
	"time"
)

// ConsumerInfo is one consumer process's registry entry, rewritten every few
// seconds while it runs and gone a few seconds after it stops.
type ConsumerInfo struct {
	ID       string    `json:"id"` // host/pid/random: also the owner a job shows
	Host     string    `json:"host"`
	Pid      int       `json:"pid"`
	Version  string    `json:"version"`
	Queue    string    `json:"queue"`
	Workers  int       `json:"workers"`
	InFlight int       `json:"in_flight"` // handlers running
	Held     int       `json:"held"`      // copies reserved and held in memory
	Started  time.Time `json:"started"`
	Seen     time.Time `json:"seen"` // when the entry was written
	// ClockOffset is Redis time minus this host's clock (the midpoint of
	// its bounds), ClockUncertainty half their width.
	ClockOffset      time.Duration `json:"clock_offset"`
	ClockUncertainty time.Duration `json:"clock_uncertainty"`
	// Paused is true while the consumer does not reserve (Redis away, or
	// the queue paused).
	Paused bool `json:"paused"`
	// Config is a digest per DqConf field, secrets (SigningKeys, the Redis
	// password) left out, so that drift shows which field differs.
	Config map[string]string `json:"config"`
	// Outcomes counts this consumer's outcomes since it started: ok, retry,
	// dead, duplicate, revoked, malformed.
	Outcomes map[string]int64 `json:"outcomes"`
}

// PauseInfo is the queue-wide pause.
type PauseInfo struct {
	Paused bool      `json:"paused"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// AuditEntry is one action written to the audit stream.
type AuditEntry struct {
	ID   string    `json:"id"` // the stream entry's ID
	At   time.Time `json:"at"`
	Who  string    `json:"who"`
	What string    `json:"what"`
}

// Consumers lists the live registry entries, oldest first.
func (in *Inspector) Consumers(ctx context.Context) ([]ConsumerInfo, error) {
	return nil, errUnbuilt
}

// ConfigDrift names the config fields whose digest differs between the
// consumers given (sorted; empty when they all agree).
func ConfigDrift(cs []ConsumerInfo) []string {
	return nil
}

// Pause stops every consumer of the queue from reserving, until Resume: a
// flag in Redis, so it survives node and consumer restarts. Handlers
// already running finish.
func (in *Inspector) Pause(ctx context.Context) error {
	return errUnbuilt
}

// Resume lifts Pause.
func (in *Inspector) Resume(ctx context.Context) error {
	return errUnbuilt
}

// Paused tells whether the queue is paused, by whom and since when.
func (in *Inspector) Paused(ctx context.Context) (PauseInfo, error) {
	return PauseInfo{}, errUnbuilt
}

// Audit writes an action to the audit stream (the Inspector's own actions
// are written by it; this is for tools acting around it).
func (in *Inspector) Audit(ctx context.Context, what string) error {
	return errUnbuilt
}

// AuditLog reads the latest n entries of the audit stream, newest first.
func (in *Inspector) AuditLog(ctx context.Context, n int) ([]AuditEntry, error) {
	return nil, errUnbuilt
}
