package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/zerodq/zerodq/dq"
)

func jobGetCommand() *command {
	return &command{
		name: "job get",
		args: "ID...",
		summary: "What is known of each job: state, attempts, due, lease, owner, last error, every copy met with " +
			"its node and fate, and a plain verdict. An unknown ID is an error (exit 1); the others are still shown.",
		example: "  zerodq -f etc/order-api.yaml job get 01J9ZC4Q5R8D2XW3Y7T6NMKB5H\n" +
			"  zerodq -f etc/order-api.yaml job get ID1 ID2 --json",
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) == 0 {
				return usagef("job get: give at least one job ID")
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				jobs := []dq.JobInfo{}
				var errs []error
				for _, id := range args {
					j, err := in.Job(ctx, id)
					if err != nil {
						errs = append(errs, fmt.Errorf("job %s: %w", id, err))
						continue
					}
					jobs = append(jobs, j)
				}
				if cl.json {
					if err := cl.printJSON(jobs); err != nil {
						return err
					}
				} else {
					for i, j := range jobs {
						if i > 0 {
							fmt.Fprintln(cl.stdout)
						}
						cl.printJob(j)
					}
				}
				return cl.errorsJoinLines(errs)
			})
		},
	}
}

func (cl *cli) printJob(j dq.JobInfo) {
	t := cl.table()
	t.row("id", j.ID)
	t.row("queue", j.Queue)
	state := string(j.State)
	if !j.Seen {
		state += " (not seen by any consumer yet)"
	}
	t.row("state", state)
	t.row("due", when(j.DueAt))
	t.row("attempts", fmt.Sprintf("%d (%d failed)", j.Attempts, j.Failures))
	if !j.LeaseUntil.IsZero() {
		t.row("lease until", when(j.LeaseUntil))
	}
	if !j.NextAttempt.IsZero() {
		t.row("next attempt", when(j.NextAttempt))
	}
	t.row("owner", orDash(j.Owner))
	if j.LastError != nil {
		t.row("last error", fmt.Sprintf("%s at %s: %s", j.LastError.Class, when(j.LastError.At), j.LastError.Message))
	}
	t.row("with id", yesNo(j.WithID))
	if !j.Expires.IsZero() {
		t.row("record expires", when(j.Expires))
	}
	t.row("verdict", j.Verdict)
	t.flush()
	if len(j.Copies) > 0 {
		fmt.Fprintln(cl.stdout, "copies:")
		ct := cl.table("  NODE", "JOB", "FATE")
		for _, c := range j.Copies {
			ct.row("  "+c.Node, c.JobNum, c.Fate)
		}
		ct.flush()
	}
}

// timelineEvent is one line of `job timeline`.
type timelineEvent struct {
	At   time.Time
	What string
}

func jobTimelineCommand() *command {
	return &command{
		name: "job timeline",
		args: "ID",
		summary: "A job's history in time order: due, each attempt's start and end with its consumer, node and " +
			"outcome, the last error, its copies' fates, and the verdict.",
		example: "  zerodq -f etc/order-api.yaml job timeline 01J9ZC4Q5R8D2XW3Y7T6NMKB5H",
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) != 1 {
				return usagef("job timeline: give one job ID")
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				j, err := in.Job(ctx, args[0])
				if err != nil {
					return fmt.Errorf("job %s: %w", args[0], err)
				}
				if cl.json {
					return cl.printJSON(j)
				}
				var ev []timelineEvent
				if !j.DueAt.IsZero() {
					ev = append(ev, timelineEvent{j.DueAt, "due"})
				}
				for _, r := range j.Runs {
					ev = append(ev, timelineEvent{r.Start, fmt.Sprintf("attempt %d started on %s from %s/%d",
						r.Attempt, r.Consumer, r.Node, r.JobNum)})
					if !r.End.IsZero() {
						ev = append(ev, timelineEvent{r.End, fmt.Sprintf("attempt %d ended: %s (%v)",
							r.Attempt, orDash(r.Outcome), r.End.Sub(r.Start).Round(time.Millisecond))})
					}
				}
				if j.LastError != nil {
					ev = append(ev, timelineEvent{j.LastError.At, fmt.Sprintf("last error (%s): %s",
						j.LastError.Class, j.LastError.Message)})
				}
				if !j.NextAttempt.IsZero() {
					ev = append(ev, timelineEvent{j.NextAttempt, "next attempt"})
				}
				if !j.LeaseUntil.IsZero() {
					ev = append(ev, timelineEvent{j.LeaseUntil, "lease ends"})
				}
				slices.SortStableFunc(ev, func(a, b timelineEvent) int { return a.At.Compare(b.At) })
				fmt.Fprintf(cl.stdout, "job %s (%s)\n", j.ID, j.State)
				t := cl.table()
				for _, e := range ev {
					t.row(when(e.At), e.What)
				}
				t.flush()
				for _, c := range j.Copies {
					fmt.Fprintf(cl.stdout, "copy %s/%d: %s\n", c.Node, c.JobNum, c.Fate)
				}
				if !j.Expires.IsZero() {
					fmt.Fprintf(cl.stdout, "record kept until %s\n", when(j.Expires))
				}
				fmt.Fprintf(cl.stdout, "verdict: %s\n", j.Verdict)
				return nil
			})
		},
	}
}

// revokeResult is one line of `job revoke --json`.
type revokeResult struct {
	ID      string `json:"id"`
	Revoked bool   `json:"revoked"`
	Error   string `json:"error,omitempty"`
}

func jobRevokeCommand() *command {
	return &command{
		name:        "job revoke",
		args:        "ID...",
		summary:     "Revokes jobs that have not run: their copies are deleted when they come due. Needs --yes.",
		example:     "  zerodq -f etc/order-api.yaml job revoke ID1 ID2        # says what it would do\n  zerodq -f etc/order-api.yaml job revoke ID1 ID2 --yes",
		destructive: true,
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) == 0 {
				return usagef("job revoke: give at least one job ID")
			}
			if !cl.yes {
				fmt.Fprintf(cl.stdout, "would revoke %d job(s): %s\n", len(args), strings.Join(args, " "))
				return errRefused
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				res := []revokeResult{}
				var errs []error
				for _, id := range args {
					r := revokeResult{ID: id, Revoked: true}
					if err := in.Revoke(ctx, id); err != nil {
						r.Revoked, r.Error = false, err.Error()
						errs = append(errs, fmt.Errorf("revoke %s: %w", id, err))
					}
					res = append(res, r)
				}
				if cl.json {
					if err := cl.printJSON(res); err != nil {
						return err
					}
				} else {
					for _, r := range res {
						if r.Revoked {
							fmt.Fprintf(cl.stdout, "revoked %s\n", r.ID)
						}
					}
				}
				return cl.errorsJoinLines(errs)
			})
		},
	}
}

// enqueueResult is what `job enqueue --json` prints.
type enqueueResult struct {
	ID  string    `json:"id"`
	Due time.Time `json:"due"`
}

func jobEnqueueCommand() *command {
	var delay time.Duration
	var at, id, body string
	return &command{
		name: "job enqueue",
		summary: "Enqueues a job due after --delay or at --at (RFC 3339), with --body @file or the " +
			"text itself; --id makes it idempotent (an ID already enqueued writes nothing).",
		example: "  zerodq -f etc/order-api.yaml job enqueue --delay 30m --body @order.json\n" +
			"  zerodq -f etc/order-api.yaml job enqueue --at 2030-01-01T02:00:00+08:00 --id report-2030 --body '{}'",
		flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&delay, "delay", 0, "due this long from now")
			fs.StringVar(&at, "at", "", "due at this RFC 3339 time")
			fs.StringVar(&id, "id", "", "the job's ID (idempotent enqueue)")
			fs.StringVar(&body, "body", "", "the body: @file, or the text itself")
		},
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("job enqueue takes no arguments, got %q (the body goes in --body)", args[0])
			}
			var due time.Time
			switch {
			case at != "" && delay != 0:
				return usagef("job enqueue: give --delay or --at, not both")
			case at != "":
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return usagef("--at %q: not an RFC 3339 time", at)
				}
				due = t
			case delay < 0:
				return usagef("--delay %v: negative", delay)
			default:
				// Dated on Redis time by the producer; this is the local
				// estimate printed.
				due = time.Now().Add(delay)
			}
			data := []byte(body)
			if file, ok := strings.CutPrefix(body, "@"); ok {
				var err error
				if data, err = os.ReadFile(file); err != nil {
					return usagef("--body: %v", err)
				}
			}
			var opts []dq.JobOption
			if id != "" {
				opts = append(opts, dq.WithID(id))
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				var got string
				var err error
				if at != "" {
					got, err = in.Enqueue(ctx, data, due, opts...)
				} else {
					got, err = in.EnqueueIn(ctx, data, delay, opts...)
				}
				if err != nil {
					return fmt.Errorf("enqueue: %w", err)
				}
				if cl.json {
					return cl.printJSON(enqueueResult{ID: got, Due: due})
				}
				fmt.Fprintf(cl.stdout, "enqueued %s due %s\n", got, when(due))
				return nil
			})
		},
	}
}
