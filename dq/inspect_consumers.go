package dq

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	// Lateness is the histogram of the jobs this consumer started since
	// its previous entry.
	Lateness Lateness `json:"lateness"`
	// ReserveErrors counts, by node endpoint, the reserve round trips that
	// failed since the consumer started.
	ReserveErrors map[string]int64 `json:"reserve_errors,omitempty"`
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
	now, err := in.store.Now(ctx)
	if err != nil {
		return nil, fmt.Errorf("dq: inspector: consumers: %w", err)
	}
	raw, err := in.store.Index().Consumers(ctx, in.tube, now)
	if err != nil {
		return nil, fmt.Errorf("dq: inspector: consumers: %w", err)
	}
	out := make([]ConsumerInfo, 0, len(raw))
	for _, b := range raw {
		var ci ConsumerInfo
		if json.Unmarshal(b, &ci) == nil {
			out = append(out, ci)
		}
	}
	slices.SortStableFunc(out, func(a, b ConsumerInfo) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ConfigDrift names the config fields whose digest differs between the
// consumers given (sorted; empty when they all agree).
func ConfigDrift(cs []ConsumerInfo) []string {
	fields := map[string]bool{}
	for _, c := range cs {
		for f := range c.Config {
			fields[f] = true
		}
	}
	var out []string
	for f := range fields {
		for _, c := range cs[1:] {
			if c.Config[f] != cs[0].Config[f] {
				out = append(out, f)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// pauseFlag is the JSON of the queue's pause flag.
type pauseFlag struct {
	By    string `json:"by"`
	Since int64  `json:"since"` // Unix ms, Redis time
}

// Pause stops every consumer of the queue from reserving, until Resume: a
// flag in Redis, so it survives node and consumer restarts. Handlers
// already running finish. Consumers see it within about a second.
func (in *Inspector) Pause(ctx context.Context) error {
	now, err := in.store.Now(ctx)
	if err != nil {
		return fmt.Errorf("dq: inspector: pause: %w", err)
	}
	if err := in.Audit(ctx, "pause"); err != nil {
		return err
	}
	b, _ := json.Marshal(pauseFlag{By: in.actor, Since: now}) // a flat struct of a string and a number
	if err := in.store.Index().SetPaused(ctx, in.tube, b); err != nil {
		return fmt.Errorf("dq: inspector: pause: %w", err)
	}
	return nil
}

// Resume lifts Pause.
func (in *Inspector) Resume(ctx context.Context) error {
	if err := in.Audit(ctx, "resume"); err != nil {
		return err
	}
	if err := in.store.Index().ClearPaused(ctx, in.tube); err != nil {
		return fmt.Errorf("dq: inspector: resume: %w", err)
	}
	return nil
}

// Paused tells whether the queue is paused, by whom and since when.
func (in *Inspector) Paused(ctx context.Context) (PauseInfo, error) {
	b, err := in.store.Index().Paused(ctx, in.tube)
	if err != nil {
		return PauseInfo{}, fmt.Errorf("dq: inspector: paused: %w", err)
	}
	if b == nil {
		return PauseInfo{}, nil
	}
	var f pauseFlag
	_ = json.Unmarshal(b, &f) // a flag someone wrote by hand still pauses
	pi := PauseInfo{Paused: true, By: f.By}
	if f.Since > 0 {
		pi.Since = time.UnixMilli(f.Since)
	}
	return pi, nil
}

// Audit writes an action to the audit stream (the Inspector's own actions
// are written by it; this is for tools acting around it).
func (in *Inspector) Audit(ctx context.Context, what string) error {
	if err := in.store.Index().AuditAdd(ctx, in.actor, what, in.tube); err != nil {
		return fmt.Errorf("dq: inspector: audit: %w", err)
	}
	return nil
}

// AuditLog reads the latest n entries of the audit stream, newest first.
// The stream is shared by the queues under one KeyPrefix; an entry's What
// names the queue when it is not this one.
func (in *Inspector) AuditLog(ctx context.Context, n int) ([]AuditEntry, error) {
	recs, err := in.store.Index().AuditList(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("dq: inspector: audit: %w", err)
	}
	out := make([]AuditEntry, len(recs))
	for i, r := range recs {
		e := AuditEntry{ID: r.ID, Who: r.Who, What: r.What}
		if ms, _, ok := strings.Cut(r.ID, "-"); ok {
			if v, err := strconv.ParseInt(ms, 10, 64); err == nil {
				e.At = time.UnixMilli(v)
			}
		}
		if r.Queue != "" && r.Queue != in.tube {
			e.What = r.Queue + ": " + e.What
		}
		out[i] = e
	}
	return out, nil
}
