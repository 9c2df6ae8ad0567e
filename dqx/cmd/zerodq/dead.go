package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// deadFilterFlags are the flags that select dead letters.
type deadFilterFlags struct {
	since, match string
	limit        int
}

func (f *deadFilterFlags) register(fs *flag.FlagSet, withLimit bool) {
	fs.StringVar(&f.since, "since", "", "buried at or after: a duration back from now (30m) or an RFC 3339 time")
	fs.StringVar(&f.match, "grep", "", "whose ID or error message contains this text")
	if withLimit {
		fs.IntVar(&f.limit, "limit", 0, "at most this many (0: all)")
	}
}

func (f *deadFilterFlags) filter() (dq.DeadFilter, error) {
	since, err := parseSince(f.since, time.Now())
	if err != nil {
		return dq.DeadFilter{}, err
	}
	if f.limit < 0 {
		return dq.DeadFilter{}, usagef("--limit %d: negative", f.limit)
	}
	return dq.DeadFilter{Since: since, Match: f.match, Limit: f.limit}, nil
}

func deadLsCommand() *command {
	var ff deadFilterFlags
	return &command{
		name:    "dead ls",
		summary: "The dead letters (the dead-letter index), in burial order: ID, when, attempts, last error, the node holding the buried copy.",
		example: "  zerodq -f etc/order-api.yaml dead ls --since 1h\n" +
			"  zerodq -f etc/order-api.yaml dead ls --grep timeout --limit 20 --json",
		flags: func(fs *flag.FlagSet) { ff.register(fs, true) },
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("dead ls takes no arguments, got %q (select with --grep, --since)", args[0])
			}
			f, err := ff.filter()
			if err != nil {
				return err
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				dead, err := in.DeadLetters(ctx, f)
				if err != nil {
					return fmt.Errorf("dead ls: %w", err)
				}
				if dead == nil {
					dead = []dq.DeadLetter{}
				}
				if cl.json {
					return cl.printJSON(dead)
				}
				t := cl.table("ID", "BURIED", "ATTEMPTS", "CLASS", "COPY", "ERROR")
				for _, d := range dead {
					t.row(d.ID, when(d.At), d.Attempts, orDash(d.Error.Class),
						fmt.Sprintf("%s/%d", d.Node, d.JobNum), orDash(d.Error.Message))
				}
				t.flush()
				fmt.Fprintf(cl.stdout, "%d dead letter(s)\n", len(dead))
				return nil
			})
		},
	}
}

// bulkCommand builds dead retry and dead delete.
func bulkCommand(name, verb, summary, example string,
	act func(in *dq.Inspector, ctx context.Context, sel dq.DeadSelect, p dq.Progress) (dq.BulkResult, error)) *command {
	var ff deadFilterFlags
	var all bool
	return &command{
		name: "dead " + name,
		args: "ID...|--all|--grep S",
		summary: summary + " Bulk: it counts first, works in bounded batches with progress, and needs --yes " +
			"(--dry-run counts and changes nothing).",
		example:     example,
		destructive: true,
		bulk:        true,
		flags: func(fs *flag.FlagSet) {
			ff.register(fs, false)
			fs.BoolVar(&all, "all", false, "every dead letter (with --since, every one buried since)")
			fs.StringVar(&ff.match, "match", "", "same as --grep")
		},
		run: func(ctx context.Context, cl *cli, args []string) error {
			f, err := ff.filter()
			if err != nil {
				return err
			}
			byFilter := all || f.Match != "" || !f.Since.IsZero()
			switch {
			case len(args) > 0 && byFilter:
				return usagef("dead %s: give IDs or a selection (--all, --grep, --since), not both", name)
			case len(args) == 0 && !byFilter:
				return usagef("dead %s: give IDs, --all or --grep", name)
			}
			sel := dq.DeadSelect{IDs: args, Filter: f, DryRun: cl.dryRun}
			return cl.withInspector(func(in *dq.Inspector) error {
				n := len(args)
				if n == 0 {
					if n, err = in.CountDead(ctx, f); err != nil {
						return fmt.Errorf("dead %s: counting: %w", name, err)
					}
				}
				if !cl.yes && !cl.dryRun {
					fmt.Fprintf(cl.stdout, "would %s %d dead letter(s) of %s\n", verb, n, in.Queue())
					return errRefused
				}
				p, done := cl.progressFunc(name)
				res, err := act(in, ctx, sel, p)
				done()
				if err != nil {
					return fmt.Errorf("dead %s: %w", name, err)
				}
				return cl.printBulk(res, verb, cl.dryRun)
			})
		},
	}
}

// printBulk prints a bulk result; skipped entries are listed but are not a
// failure.
func (cl *cli) printBulk(res dq.BulkResult, verb string, dryRun bool) error {
	if cl.json {
		return cl.printJSON(res)
	}
	if dryRun {
		fmt.Fprintf(cl.stdout, "dry run: %d selected to %s, %d of them would be left alone; nothing changed\n",
			res.Matched, verb, len(res.Skipped))
	} else {
		fmt.Fprintf(cl.stdout, "%s: %d of %d selected\n", verb, res.Done, res.Matched)
	}
	if len(res.Skipped) > 0 {
		t := cl.table("SKIPPED", "WHY")
		for _, s := range res.Skipped {
			t.row(s.ID, s.Reason)
		}
		t.flush()
	}
	return nil
}

func deadRetryCommand() *command {
	return bulkCommand("retry", "retry",
		"Kicks dead letters: each runs once more, with a fresh set of retries and a higher attempt number.",
		"  zerodq -f etc/order-api.yaml dead retry 01J9ZC4Q5R8D2XW3Y7T6NMKB5H --yes\n"+
			"  zerodq -f etc/order-api.yaml dead retry --all --dry-run\n"+
			"  zerodq -f etc/order-api.yaml dead retry --grep 'connection refused' --since 2h --yes",
		(*dq.Inspector).RetryDead)
}

func deadDeleteCommand() *command {
	return bulkCommand("delete", "delete",
		"Deletes dead letters: their buried copies go, and they leave the index. The jobs never run.",
		"  zerodq -f etc/order-api.yaml dead delete 01J9ZC4Q5R8D2XW3Y7T6NMKB5H --yes\n"+
			"  zerodq -f etc/order-api.yaml dead delete --all --since 720h --yes",
		(*dq.Inspector).DeleteDead)
}

func deadExportCommand() *command {
	var ff deadFilterFlags
	return &command{
		name:    "dead export",
		summary: "Writes the dead letters as JSON lines (one dq.DeadLetter each) on stdout, for a file or jq.",
		example: "  zerodq -f etc/order-api.yaml dead export > dead.jsonl\n" +
			"  zerodq -f etc/order-api.yaml dead export --since 24h --grep panic",
		flags: func(fs *flag.FlagSet) { ff.register(fs, true) },
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("dead export takes no arguments, got %q", args[0])
			}
			f, err := ff.filter()
			if err != nil {
				return err
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				n, err := in.ExportDead(ctx, cl.stdout, f)
				if err != nil {
					return fmt.Errorf("dead export: %w", err)
				}
				fmt.Fprintf(cl.stderr, "exported %d dead letter(s)\n", n)
				return nil
			})
		},
	}
}

func deadReconcileCommand() *command {
	return &command{
		name: "dead reconcile",
		summary: "Drops dead-letter index entries whose job is not dead any more (kicked or deleted by hand, " +
			"or a bury that never happened). Needs --yes; --dry-run counts.",
		example:     "  zerodq -f etc/order-api.yaml dead reconcile --dry-run\n  zerodq -f etc/order-api.yaml dead reconcile --yes",
		destructive: true,
		bulk:        true,
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("dead reconcile takes no arguments, got %q", args[0])
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				if !cl.yes && !cl.dryRun {
					res, err := in.ReconcileDead(ctx, true, nil)
					if err != nil {
						return fmt.Errorf("dead reconcile: %w", err)
					}
					fmt.Fprintf(cl.stdout, "would drop %d of %d index entries of %s\n", res.Done, res.Matched, in.Queue())
					return errRefused
				}
				p, done := cl.progressFunc("reconcile")
				res, err := in.ReconcileDead(ctx, cl.dryRun, p)
				done()
				if err != nil {
					return fmt.Errorf("dead reconcile: %w", err)
				}
				return cl.printBulk(res, "drop", cl.dryRun)
			})
		},
	}
}
