package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// manageIDs runs beside production: it tries WithID enqueues again that
// failed (Redis away), and enqueues each WithID job again, as job n+seq,
// once it completed and its record has surely expired (reenqueueAfter), on
// the soak's own clock (Redis runs on this host). The second enqueue must run
// once more.
func (s *soak) manageIDs(ctx context.Context) error {
	l := newLedger(s.dir)
	wait := s.o.reenqueueAfter()
	rdb := goredis.NewClient(&goredis.Options{Addr: s.settings.redis, MaxRetries: -1})
	defer rdb.Close()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := l.refresh(); err != nil {
			return err
		}
		s.jobsMu.Lock()
		retry := s.pending
		s.pending = nil
		var due []uint64
		for seq := uint64(3); seq < s.n; seq += 20 {
			if s.jobClass(seq) != classID || s.outcome[seq] != enqueueOK || s.reenqueued[seq] {
				continue
			}
			if at, ok := l.doneAt(jobKey{s.ids[seq], seq}); ok && time.Since(at) > wait {
				due = append(due, seq)
			}
		}
		s.jobsMu.Unlock()
		if slices.Contains(s.o.faults, faultReenqueue) {
			s.reenqueue(ctx, rdb, due)
		}
		// One at a time, for a second at most, and no further after a
		// failure: Redis is likely still away.
		budget := time.Now().Add(time.Second)
		for i, seq := range retry {
			if ctx.Err() != nil || time.Now().After(budget) {
				s.retryLater(retry[i:]...)
				break
			}
			s.retries++
			if !s.enqueue(ctx, seq) {
				s.retryLater(retry[i:]...)
				break
			}
		}
	}
}

// reenqueue enqueues the WithID jobs of due again, in order, until one fails
// (Redis is likely away: the rest wait for the next round).
func (s *soak) reenqueue(ctx context.Context, rdb *goredis.Client, due []uint64) {
	for _, seq := range due {
		if ctx.Err() != nil {
			return
		}
		s.reenqueued[seq] = true
		if s.recordLives(ctx, rdb, s.ids[seq]) {
			s.recordsLived = append(s.recordsLived, jobKey{s.ids[seq], s.n + seq}.String())
		}
		now := time.Now()
		s.record(fault{Kind: faultReenqueue, Target: fmt.Sprintf("job-%d", seq), Start: now, End: now})
		if !s.enqueue(ctx, s.n+seq) {
			s.retryLater(s.n + seq)
			return
		}
	}
}

// recordLives asks Redis whether the record of WithID job id still exists
// (DESIGN.md names its key): the rule of manageIDs says it has surely expired,
// so a record found is a finding, of the rule or of a record outliving its
// bound. An error (Redis away) counts as no record.
func (s *soak) recordLives(ctx context.Context, rdb *goredis.Client, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	key := fmt.Sprintf("%s:%s:%s", s.settings.prefix, s.settings.tube+tubeIDs, id)
	n, err := rdb.Exists(ctx, key).Result()
	return err == nil && n > 0
}

// retryLater hands WithID enqueues that failed to manageIDs, to try again.
func (s *soak) retryLater(seqs ...uint64) {
	s.jobsMu.Lock()
	s.pending = append(s.pending, seqs...)
	s.jobsMu.Unlock()
}
