// Command zerodq looks into and acts on a zerodq queue: its stats, nodes and
// consumers, a job by ID, its dead letters, the queue-wide pause and the cron
// schedule. It reads the Dq (and Cron) section of a go-zero service's yaml
// and goes through dq.Inspector and dqx.CronInspector only.
//
//	zerodq -f etc/order-api.yaml stats
//	zerodq -f etc/order-api.yaml job get 01HZX...
//	zerodq -f etc/order-api.yaml dead retry --all --yes
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	red "github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/logx"

	"github.com/zerodq/zerodq/dq"
	"github.com/zerodq/zerodq/dqx"
)

func main() {
	quiet()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCtx(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// quiet silences the libraries' own logs: the CLI reports every failure
// itself, on one line.
func quiet() {
	logx.Disable()
	red.SetLogger(silentLogger{})
}

type silentLogger struct{}

func (silentLogger) Printf(context.Context, string, ...any) {}

// Exit codes: a command that failed (or refused, without --yes) exits 1;
// a command that could not start (bad usage, bad config) exits 2.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// run runs one zerodq command line and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runCtx(context.Background(), args, stdout, stderr)
}

// usageError is a mistake in the command line or the config: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errRefused is a destructive command run without --yes: it printed what it
// would do and changed nothing.
var errRefused = errors.New("nothing changed: pass --yes to do it")

// errQuiet is a failure already reported on stderr line by line.
var errQuiet = errors.New("failed")

func runCtx(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cl := &cli{stdout: stdout, stderr: stderr}
	err := cl.dispatch(ctx, args)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errQuiet):
		return exitFail
	}
	fmt.Fprintln(stderr, "zerodq: "+oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFail
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cli is one run: its output and the flags every command takes.
type cli struct {
	stdout, stderr io.Writer

	file, section, cronSection string
	json, yes, dryRun          bool
	progress                   bool
	timeout                    time.Duration
	actor                      string
}

// command is one zerodq command.
type command struct {
	name    string // "job get"
	args    string // what follows the flags in the usage line
	summary string
	example string
	// destructive commands take --yes, bulk ones --dry-run.
	destructive, bulk bool
	flags             func(fs *flag.FlagSet)
	run               func(ctx context.Context, cl *cli, args []string) error
}

func (cl *cli) commands() []*command {
	return []*command{
		statsCommand(), nodesCommand(), consumersCommand(),
		jobGetCommand(), jobTimelineCommand(), jobRevokeCommand(), jobEnqueueCommand(),
		deadLsCommand(), deadRetryCommand(), deadDeleteCommand(), deadExportCommand(), deadReconcileCommand(),
		tubePauseCommand(), tubeResumeCommand(),
		cronLsCommand(), cronNextCommand(),
		doctorCommand(), auditCommand(),
		serveCommand(),
	}
}

// dispatch finds the command named by the first words of args and runs it.
func (cl *cli) dispatch(ctx context.Context, args []string) error {
	cmds := cl.commands()
	// Flags may come before the command: move them behind it.
	var lead []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		lead = append(lead, args[0])
		if takesValue(args[0]) && len(args) > 1 {
			lead = append(lead, args[1])
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) == 0 {
		if len(lead) > 0 && isHelp(lead[len(lead)-1]) {
			cl.usage(cmds)
			return flag.ErrHelp
		}
		return usagef("no command given (try zerodq -h)")
	}
	if args[0] == "help" {
		cl.usage(cmds)
		return flag.ErrHelp
	}
	var c *command
	rest := args
	for _, cand := range cmds {
		words := strings.Fields(cand.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			c, rest = cand, args[len(words):]
			break
		}
	}
	if c == nil {
		group := false
		for _, cand := range cmds {
			if strings.HasPrefix(cand.name, args[0]+" ") {
				group = true
			}
		}
		if group && len(args) == 1 {
			return usagef("%s: a subcommand is needed (try zerodq %s -h)", args[0], args[0])
		}
		name := args[0]
		if group {
			name = args[0] + " " + args[1]
		}
		return usagef("unknown command %q (try zerodq -h)", name)
	}
	return cl.runCommand(ctx, c, append(lead, rest...))
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--h" || arg == "-help" || arg == "--help"
}

// takesValue reports whether a leading global flag takes the next argument
// as its value.
func takesValue(arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	switch strings.TrimLeft(arg, "-") {
	case "f", "section", "cron-section", "timeout", "actor":
		return true
	}
	return false
}

// runCommand parses the command's flags, wherever they stand among its
// arguments, and runs it.
func (cl *cli) runCommand(ctx context.Context, c *command, args []string) error {
	fs := flag.NewFlagSet("zerodq "+c.name, flag.ContinueOnError)
	fs.StringVar(&cl.file, "f", "", "the service's yaml config `file`")
	fs.StringVar(&cl.section, "section", "Dq", "the yaml `section` holding the dq.DqConf")
	fs.StringVar(&cl.cronSection, "cron-section", "Cron", "the yaml `section` holding the dqx.CronConf")
	fs.BoolVar(&cl.json, "json", false, "print JSON (the API's types) instead of text")
	// A bulk action on a large index takes as long as it takes (it shows
	// progress and stops on an interrupt); every other command is bounded.
	timeout := 30 * time.Second
	if c.bulk {
		timeout = 0
	}
	fs.DurationVar(&cl.timeout, "timeout", timeout, "bound on the whole command (0: none)")
	fs.BoolVar(&cl.progress, "progress", false, "print progress on stderr even when it is not a terminal")
	fs.StringVar(&cl.actor, "actor", "", "who acts, in the audit stream (default user@host)")
	if c.destructive {
		fs.BoolVar(&cl.yes, "yes", false, "do it (without: print what would be done, change nothing, exit 1)")
	}
	if c.bulk {
		fs.BoolVar(&cl.dryRun, "dry-run", false, "count what would be done and change nothing")
	}
	if c.flags != nil {
		c.flags(fs)
	}
	// A bad flag is reported on one line; -h prints the command's help.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	help := func() {
		out := cl.stderr
		fmt.Fprintf(out, "usage: zerodq %s [flags] %s\n\n%s\n\nflags:\n", c.name, c.args, c.summary)
		fs.SetOutput(out)
		fs.PrintDefaults()
		if c.example != "" {
			fmt.Fprintf(out, "\nexamples:\n%s\n", c.example)
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help()
				return err
			}
			return usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if cl.timeout > 0 && c.name != "stats" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cl.timeout)
		defer cancel()
	}
	return c.run(ctx, cl, pos)
}

func (cl *cli) usage(cmds []*command) {
	w := cl.stderr
	fmt.Fprintln(w, "usage: zerodq -f service.yaml <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, firstSentence(c.summary))
	}
	fmt.Fprintln(w, "\nEvery command takes -f, --section, --json and -h (its flags and examples).")
	fmt.Fprintln(w, "Destructive commands do nothing without --yes; bulk ones take --dry-run.")
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// config reads the Dq section (or --section) of the yaml.
func (cl *cli) config() (dq.DqConf, error) {
	var c dq.DqConf
	v, err := cl.load(cl.section, reflect.TypeOf(c))
	if err != nil {
		return c, err
	}
	c = v.(dq.DqConf)
	if len(c.Beanstalks) == 0 && c.Redis.Host == "" {
		return c, usagef("%s: no %s section (a dq.DqConf; choose another with --section)", cl.file, cl.section)
	}
	if err := c.Validate(); err != nil {
		return c, usagef("%s: section %s: %v", cl.file, cl.section, err)
	}
	return c, nil
}

// cronConfig reads the Cron section (or --cron-section) of the yaml.
func (cl *cli) cronConfig() (dqx.CronConf, error) {
	var c dqx.CronConf
	v, err := cl.load(cl.cronSection, reflect.TypeOf(c))
	if err != nil {
		return c, err
	}
	c = v.(dqx.CronConf)
	if len(c.Entries) == 0 && c.Name == "" {
		return c, usagef("%s: no %s section (a dqx.CronConf; choose another with --cron-section)",
			cl.file, cl.cronSection)
	}
	if err := c.Validate(); err != nil {
		return c, usagef("%s: section %s: %v", cl.file, cl.cronSection, err)
	}
	return c, nil
}

// load reads one section of the yaml with go-zero's conf, into a value of
// type t, as a service's Config struct would.
func (cl *cli) load(section string, t reflect.Type) (any, error) {
	if cl.file == "" {
		return nil, usagef("no config: give the service's yaml with -f")
	}
	if section == "" || strings.ContainsAny(section, "\",`") {
		return nil, usagef("bad section name %q", section)
	}
	st := reflect.StructOf([]reflect.StructField{{
		Name: "Section", Type: t, Tag: reflect.StructTag(`json:"` + section + `,optional"`),
	}})
	v := reflect.New(st)
	if err := conf.Load(cl.file, v.Interface()); err != nil {
		return nil, usagef("%s: %v", cl.file, err)
	}
	return v.Elem().Field(0).Interface(), nil
}

// inspector opens the queue's Inspector.
func (cl *cli) inspector() (*dq.Inspector, error) {
	c, err := cl.config()
	if err != nil {
		return nil, err
	}
	var opts []dq.InspectorOption
	if cl.actor != "" {
		opts = append(opts, dq.WithActor(cl.actor))
	}
	return dq.NewInspector(c, opts...)
}

// withInspector runs fn with the queue's Inspector, closed after.
func (cl *cli) withInspector(fn func(in *dq.Inspector) error) error {
	in, err := cl.inspector()
	if err != nil {
		return err
	}
	defer in.Close()
	return fn(in)
}
