package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/zerodq/zerodq/dqx"
)

// withCron runs fn with the schedule's CronInspector, closed after.
func (cl *cli) withCron(fn func(ci *dqx.CronInspector) error) error {
	c, err := cl.config()
	if err != nil {
		return err
	}
	cc, err := cl.cronConfig()
	if err != nil {
		return err
	}
	ci, err := dqx.NewCronInspector(c, cc)
	if err != nil {
		return err
	}
	defer ci.Close()
	return fn(ci)
}

// cronLsView is what `cron ls --json` prints.
type cronLsView struct {
	Owner   dqx.CronOwner       `json:"owner"`
	Entries []dqx.CronEntryInfo `json:"entries"`
}

func cronLsCommand() *command {
	return &command{
		name: "cron ls",
		summary: "The cron entries of the config with their spec, zone, missed-fire policy, latest recorded and next " +
			"fire, and which config owns the schedule (the one whose fires are written).",
		example: "  zerodq -f etc/order-api.yaml cron ls\n  zerodq -f etc/order-api.yaml cron ls --cron-section Reports --json",
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("cron ls takes no arguments, got %q", args[0])
			}
			return cl.withCron(func(ci *dqx.CronInspector) error {
				owner, err := ci.Owner(ctx)
				if err != nil {
					return fmt.Errorf("cron ls: %w", err)
				}
				entries, err := ci.Entries(ctx)
				if err != nil {
					return fmt.Errorf("cron ls: %w", err)
				}
				if cl.json {
					return cl.printJSON(cronLsView{Owner: owner, Entries: entries})
				}
				switch {
				case owner.Owner == "":
					fmt.Fprintf(cl.stdout, "schedule %s on %s: no scheduler has run (no state)\n", owner.Schedule, owner.Queue)
				case owner.Owns:
					fmt.Fprintf(cl.stdout, "schedule %s on %s: owned by this config (%s), last top-up %s, alive %s\n",
						owner.Schedule, owner.Queue, owner.Config, when(owner.ToppedUp), yesNo(owner.Alive))
				default:
					fmt.Fprintf(cl.stdout, "schedule %s on %s: owned by another config (%s, this one is %s), "+
						"last top-up %s, alive %s\n", owner.Schedule, owner.Queue, owner.Owner, owner.Config,
						when(owner.ToppedUp), yesNo(owner.Alive))
				}
				t := cl.table("NAME", "SPEC", "ZONE", "MISSED", "LAST", "NEXT", "AHEAD", "PENDING")
				for _, e := range entries {
					t.row(e.Name, e.Spec, e.Zone, e.Missed, whenIn(e.LastFire), whenIn(e.NextFire), e.Ahead, e.Pending)
				}
				t.flush()
				return nil
			})
		},
	}
}

// cronNextView is what `cron next --json` prints.
type cronNextView struct {
	Next []dqx.CronFire     `json:"next"`
	Past []dqx.CronPastFire `json:"past"`
}

func cronNextCommand() *command {
	var n, past int
	return &command{
		name: "cron next",
		args: "NAME",
		summary: "The entry's next fires in its zone, whether each is written and its job ID; and its past fires " +
			"in the recorded window, each with whether it ran exactly once.",
		example: "  zerodq -f etc/order-api.yaml cron next nightly-report\n" +
			"  zerodq -f etc/order-api.yaml cron next nightly-report -n 3 --past 0 --json",
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&n, "n", 10, "how many coming fires")
			fs.IntVar(&past, "past", 10, "how many past fires (0: none)")
		},
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) != 1 {
				return usagef("cron next: give one entry name")
			}
			if n < 1 || past < 0 {
				return usagef("-n must be at least 1 and --past not negative")
			}
			return cl.withCron(func(ci *dqx.CronInspector) error {
				next, err := ci.Next(ctx, args[0], n)
				if err != nil {
					return fmt.Errorf("cron next: %w", err)
				}
				v := cronNextView{Next: next, Past: []dqx.CronPastFire{}}
				if past > 0 {
					if v.Past, err = ci.Past(ctx, args[0], past); err != nil {
						return fmt.Errorf("cron next: past fires: %w", err)
					}
					if v.Past == nil {
						v.Past = []dqx.CronPastFire{}
					}
				}
				if cl.json {
					return cl.printJSON(v)
				}
				t := cl.table("NEXT", "WRITTEN", "JOB")
				for _, f := range next {
					t.row(whenIn(f.At), writtenWord(f), orDash(f.ID))
				}
				t.flush()
				if past > 0 {
					fmt.Fprintln(cl.stdout)
					t := cl.table("PAST", "VERDICT", "JOB")
					for _, f := range v.Past {
						t.row(whenIn(f.At), f.Verdict, orDash(f.ID))
					}
					t.flush()
				}
				return nil
			})
		},
	}
}

func writtenWord(f dqx.CronFire) string {
	switch {
	case f.Doomed:
		return "being revoked"
	case f.OtherVersion && f.Written:
		return "yes (another version)"
	case f.Written:
		return "yes"
	case f.ID != "":
		return "recorded, not written"
	}
	return "no"
}
