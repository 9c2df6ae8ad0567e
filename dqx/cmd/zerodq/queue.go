package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zerodq/zerodq/dq"
)

func statsCommand() *command {
	var watch bool
	var every time.Duration
	var count int
	return &command{
		name: "stats",
		summary: "Copies ready, delayed, reserved and buried per node (beanstalkd's stats-tube: copies, not jobs), " +
			"the consumers, the pause and the dead letters. With --watch, again every --every, with outcome rates.",
		example: "  zerodq -f etc/order-api.yaml stats\n  zerodq -f etc/order-api.yaml stats --watch --every 5s\n" +
			"  zerodq -f etc/order-api.yaml stats --json | jq .total",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&watch, "watch", false, "print again every --every until interrupted")
			fs.DurationVar(&every, "every", 2*time.Second, "the --watch period")
			fs.IntVar(&count, "count", 0, "with --watch, stop after this many prints (0: until interrupted)")
		},
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("stats takes no arguments, got %q", args[0])
			}
			if every <= 0 {
				return usagef("--every %v: must be positive", every)
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				var prev *dq.Stats
				var prevAt time.Time
				ticker := time.NewTicker(every)
				defer ticker.Stop()
				for n := 1; ; n++ {
					rctx, cancel := context.WithTimeout(ctx, cl.timeout)
					st, err := in.Stats(rctx)
					cancel()
					if err != nil {
						return fmt.Errorf("stats: %w", err)
					}
					at := time.Now()
					if cl.json {
						if err := cl.printJSON(st); err != nil {
							return err
						}
					} else {
						if watch && n > 1 {
							fmt.Fprintln(cl.stdout)
						}
						cl.printStats(st, prev, at.Sub(prevAt))
					}
					if !watch || (count > 0 && n >= count) {
						return statsProblems(st)
					}
					if err := statsProblems(st); err != nil {
						fmt.Fprintln(cl.stderr, "zerodq: "+oneLine(err.Error()))
					}
					prev, prevAt = &st, at
					select {
					case <-ctx.Done():
						return nil
					case <-ticker.C:
					}
				}
			})
		},
	}
}

// statsProblems names the nodes and the parts of Redis that could not be
// read.
func statsProblems(st dq.Stats) error {
	var bad []string
	for _, ts := range st.Tubes {
		if ts.Err != "" {
			bad = append(bad, "node "+ts.Node+": "+ts.Err)
		}
	}
	bad = append(bad, st.Errors...)
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("stats incomplete: %s", strings.Join(bad, "; "))
}

func (cl *cli) printStats(st dq.Stats, prev *dq.Stats, since time.Duration) {
	t := cl.table("NODE", "TUBE", "READY", "DELAYED", "RESERVED", "BURIED", "ERROR")
	for _, ts := range st.Tubes {
		t.row(ts.Node, ts.Tube, ts.Ready, ts.Delayed, ts.Reserved, ts.Buried, orDash(ts.Err))
	}
	tot := st.Total
	t.row("total (copies)", st.Queue, tot.Ready, tot.Delayed, tot.Reserved, tot.Buried, "")
	t.flush()
	paused := "no"
	if st.Paused {
		paused = "yes"
	}
	fmt.Fprintf(cl.stdout, "consumers %d  in flight %d  held %d  dead letters %d  paused %s\n",
		st.Consumers, st.InFlight, st.Held, st.DeadLetters, paused)
	keys := make([]string, 0, len(st.Outcomes))
	for k := range st.Outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, st.Outcomes[k])
		if prev != nil && since > 0 {
			rate := float64(st.Outcomes[k]-prev.Outcomes[k]) / since.Seconds()
			parts[i] += fmt.Sprintf(" (%.1f/s)", rate)
		}
	}
	fmt.Fprintf(cl.stdout, "outcomes  %s\n", strings.Join(parts, "  "))
}

func nodesCommand() *command {
	return &command{
		name:    "nodes",
		summary: "Every beanstalkd node's stats: up, version, binlog, max job size, uptime. Exits 1 if a node is down.",
		example: "  zerodq -f etc/order-api.yaml nodes\n  zerodq -f etc/order-api.yaml nodes --json",
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("nodes takes no arguments, got %q", args[0])
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				nodes, err := in.Nodes(ctx)
				if err != nil {
					return fmt.Errorf("nodes: %w", err)
				}
				if cl.json {
					if err := cl.printJSON(nodes); err != nil {
						return err
					}
				} else {
					t := cl.table("ENDPOINT", "TUBE", "UP", "VERSION", "BINLOG", "MAX-JOB", "UPTIME", "CONNS",
						"TUBE-PAUSED", "ERROR")
					for _, n := range nodes {
						t.row(n.Endpoint, n.Tube, yesNo(n.Up), orDash(n.Version), yesNo(n.Binlog), n.MaxJobSize,
							n.Uptime, n.Connections, yesNo(n.TubePaused), orDash(n.Err))
					}
					t.flush()
				}
				var down []string
				for _, n := range nodes {
					if !n.Up {
						down = append(down, n.Endpoint+" ("+oneLine(n.Err)+")")
					}
				}
				if len(down) > 0 {
					return fmt.Errorf("node unreachable: %s", strings.Join(down, ", "))
				}
				return nil
			})
		},
	}
}

// consumersView is what `consumers --json` prints.
type consumersView struct {
	Consumers []dq.ConsumerInfo `json:"consumers"`
	// Drift names the config fields whose digest differs between them.
	Drift []string `json:"drift"`
}

func consumersCommand() *command {
	return &command{
		name: "consumers",
		summary: "The live consumer processes (the registry): host, pid, version, workers, handlers in flight, " +
			"copies held, clock offset; and the config fields that differ between them (drift).",
		example: "  zerodq -f etc/order-api.yaml consumers\n  zerodq -f etc/order-api.yaml consumers --json | jq .drift",
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("consumers takes no arguments, got %q", args[0])
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				cs, err := in.Consumers(ctx)
				if err != nil {
					return fmt.Errorf("consumers: %w", err)
				}
				v := consumersView{Consumers: cs, Drift: dq.ConfigDrift(cs)}
				if v.Consumers == nil {
					v.Consumers = []dq.ConsumerInfo{}
				}
				if v.Drift == nil {
					v.Drift = []string{}
				}
				if cl.json {
					return cl.printJSON(v)
				}
				t := cl.table("ID", "HOST", "PID", "VERSION", "WORKERS", "IN-FLIGHT", "HELD", "CLOCK", "PAUSED",
					"STARTED", "SEEN")
				for _, c := range cs {
					t.row(c.ID, c.Host, c.Pid, c.Version, c.Workers, c.InFlight, c.Held,
						fmt.Sprintf("%v±%v", c.ClockOffset.Round(time.Millisecond), c.ClockUncertainty.Round(time.Millisecond)),
						yesNo(c.Paused), when(c.Started), when(c.Seen))
				}
				t.flush()
				switch {
				case len(cs) == 0:
					fmt.Fprintln(cl.stdout, "no live consumers")
				case len(v.Drift) == 0:
					fmt.Fprintf(cl.stdout, "%d consumers, config: all agree\n", len(cs))
				default:
					fmt.Fprintf(cl.stdout, "%d consumers, config drift: %s\n", len(cs), strings.Join(v.Drift, ", "))
				}
				return nil
			})
		},
	}
}

func doctorCommand() *command {
	return &command{
		name: "doctor",
		summary: "Checks the production rules (Redis AOF and noeviction, Redis >= 6.2, nodes reachable with a binlog " +
			"and the right -z, Replicas and MinWrites, clock offsets, config drift), one line each. Exits 1 if any fails.",
		example: "  zerodq -f etc/order-api.yaml doctor\n  zerodq -f etc/order-api.yaml doctor --json",
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("doctor takes no arguments, got %q", args[0])
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				checks, err := in.Doctor(ctx)
				if err != nil {
					return fmt.Errorf("doctor: %w", err)
				}
				if cl.json {
					if err := cl.printJSON(checks); err != nil {
						return err
					}
				} else {
					t := cl.table("CHECK", "OK", "DETAIL")
					for _, c := range checks {
						mark := "ok"
						if !c.OK {
							mark = "FAIL"
						}
						t.row(c.Name, mark, c.Detail)
					}
					t.flush()
				}
				var failed []string
				for _, c := range checks {
					if !c.OK {
						failed = append(failed, c.Name)
					}
				}
				if len(failed) > 0 {
					return fmt.Errorf("doctor: %d of %d checks failed: %s", len(failed), len(checks),
						strings.Join(failed, ", "))
				}
				return nil
			})
		},
	}
}

func auditCommand() *command {
	var n int
	return &command{
		name:    "audit",
		summary: "The latest actions written to the audit stream (who, what, when), newest first.",
		example: "  zerodq -f etc/order-api.yaml audit\n  zerodq -f etc/order-api.yaml audit -n 100 --json",
		flags: func(fs *flag.FlagSet) {
			fs.IntVar(&n, "n", 20, "how many entries")
		},
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("audit takes no arguments, got %q", args[0])
			}
			if n < 1 {
				return usagef("-n %d: must be at least 1", n)
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				log, err := in.AuditLog(ctx, n)
				if err != nil {
					return fmt.Errorf("audit: %w", err)
				}
				if log == nil {
					log = []dq.AuditEntry{}
				}
				if cl.json {
					return cl.printJSON(log)
				}
				t := cl.table("AT", "WHO", "WHAT")
				for _, e := range log {
					t.row(when(e.At), e.Who, e.What)
				}
				t.flush()
				return nil
			})
		},
	}
}

// errorsJoinLines reports several failures, one line each, and returns
// errQuiet.
func (cl *cli) errorsJoinLines(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs {
		fmt.Fprintln(cl.stderr, "zerodq: "+oneLine(err.Error()))
	}
	return errors.Join(errQuiet, errs[0])
}
