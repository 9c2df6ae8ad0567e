// Command zerodq-bench measures zerodq against raw beanstalkd and soaks it
// under faults.
//
//	zerodq-bench bench [-quick] [-json] [-beanstalks h:p,h:p,h:p -redis h:p]
//	zerodq-bench soak [-duration 3m] [-json]
//
// bench starts its own servers (3 beanstalkd and a Redis) unless endpoints are
// given, runs every scenario beside a raw go-beanstalk baseline doing the same
// beanstalkd work (3 puts, 3 reserves and 3 deletes per job), and prints one
// table, or one JSON object with -json.
//
// soak starts binlogged beanstalkd nodes, an AOF Redis and consumer
// subprocesses, produces jobs while injecting faults one at a time (node
// SIGKILL and restart, node SIGSTOP/SIGCONT, consumer SIGKILL, consumer
// SIGTERM and drain, a short Redis restart, a Redis outage longer than TTR,
// an operator's kick of delayed jobs and of dead letters) and enqueues WithID
// jobs again once their record has expired, waits for the queue to drain and
// reports lost jobs and runs twice, each double attributed to the fault that
// caused it. It exits non-zero when a job was lost or a double has no allowed
// cause.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// childEnv marks a process started by this program as one of its own
// subprocesses; the tests' TestMain looks for it to run the child instead of
// the tests.
const childEnv = "ZERODQ_BENCH_CHILD"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "bench":
		err = benchMain(ctx, args[1:], stdout, stderr)
	case "soak":
		err = soakMain(ctx, args[1:], stdout, stderr)
	case "consumer": // the soak's consumer subprocess
		err = soakConsumerMain(ctx, args[1:], stderr)
	case "backlog-consumer": // the bench's backlog consumer subprocess
		err = backlogConsumerMain(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "zerodq-bench: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "zerodq-bench %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage reports bad flags; the flag package has already said why.
var errUsage = errors.New("bad usage")

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  zerodq-bench bench [-quick] [-json] [-beanstalks host:port,... -redis host:port]
  zerodq-bench soak  [-duration 3m] [-json]
Run "zerodq-bench <command> -h" for the flags of a command.
`)
}

// parseFlags parses args into fs, reporting errors and -h on stderr.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return errUsage
	}
	return nil
}
