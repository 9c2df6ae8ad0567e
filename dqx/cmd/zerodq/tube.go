package main

import (
	"context"
	"fmt"

	"github.com/zerodq/zerodq/dq"
)

func tubePauseCommand() *command {
	return &command{
		name: "tube pause",
		summary: "Pauses the queue: every consumer stops reserving until resumed (a flag in Redis: it survives " +
			"node and consumer restarts); running handlers finish. Needs --yes.",
		example:     "  zerodq -f etc/order-api.yaml tube pause --yes",
		destructive: true,
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("tube pause takes no arguments, got %q", args[0])
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				if !cl.yes {
					fmt.Fprintf(cl.stdout, "would pause %s: its consumers stop reserving until `zerodq tube resume`\n",
						in.Queue())
					return errRefused
				}
				if err := in.Pause(ctx); err != nil {
					return fmt.Errorf("tube pause: %w", err)
				}
				return cl.printPause(ctx, in)
			})
		},
	}
}

func tubeResumeCommand() *command {
	return &command{
		name:    "tube resume",
		summary: "Lifts the pause: consumers reserve again within a second or so.",
		example: "  zerodq -f etc/order-api.yaml tube resume",
		run: func(ctx context.Context, cl *cli, args []string) error {
			if len(args) > 0 {
				return usagef("tube resume takes no arguments, got %q", args[0])
			}
			return cl.withInspector(func(in *dq.Inspector) error {
				if err := in.Resume(ctx); err != nil {
					return fmt.Errorf("tube resume: %w", err)
				}
				return cl.printPause(ctx, in)
			})
		},
	}
}

func (cl *cli) printPause(ctx context.Context, in *dq.Inspector) error {
	p, err := in.Paused(ctx)
	if err != nil {
		return fmt.Errorf("reading the pause: %w", err)
	}
	if cl.json {
		return cl.printJSON(p)
	}
	if p.Paused {
		fmt.Fprintf(cl.stdout, "%s paused by %s since %s\n", in.Queue(), p.By, when(p.Since))
	} else {
		fmt.Fprintf(cl.stdout, "%s running (not paused)\n", in.Queue())
	}
	return nil
}
