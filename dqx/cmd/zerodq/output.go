package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zerodq/zerodq/dq"
)

// printJSON writes v as indented JSON.
func (cl *cli) printJSON(v any) error {
	enc := json.NewEncoder(cl.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns for people.
type table struct{ tw *tabwriter.Writer }

func (cl *cli) table(header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(cl.stdout, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(anys(header)...)
	}
	return t
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = strings.ReplaceAll(fmt.Sprint(c), "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *table) flush() { _ = t.tw.Flush() }

// progress returns a dq.Progress that prints "what: done/total" on stderr
// when stderr is a terminal or --progress is given, and nil otherwise.
func (cl *cli) progressFunc(what string) (dq.Progress, func()) {
	if !cl.progress && !isTerminal(cl.stderr) {
		return nil, func() {}
	}
	printed := false
	p := func(done, total int) {
		printed = true
		fmt.Fprintf(cl.stderr, "\r%s: %d/%d", what, done, total)
	}
	return p, func() {
		if printed {
			fmt.Fprintln(cl.stderr)
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// when formats a time for people: UTC to the millisecond, "-" when zero.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// whenIn formats a time in its own zone.
func whenIn(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseSince reads --since: a duration back from now (30m) or a time
// (RFC 3339).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, usagef("--since %s: a negative duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--since %q: neither a duration (30m) nor an RFC 3339 time", s)
	}
	return t, nil
}
