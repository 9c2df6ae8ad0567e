package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// row is one figure of the bench beside its raw baseline.
type row struct {
	name   string
	unit   string
	key    string // JSON key of the zerodq figure
	rawKey string // JSON key of the raw figure; empty when there is none
	value  float64
	raw    float64
	note   string
}

// report is the bench's result, in the order the table prints it.
type report struct {
	rows  []row
	extra map[string]any // further JSON keys (counts, settings)
}

func (r *report) add(x row) { r.rows = append(r.rows, x) }

func (r *report) set(key string, v any) {
	if r.extra == nil {
		r.extra = make(map[string]any)
	}
	r.extra[key] = v
}

func (r *report) json() map[string]any {
	m := make(map[string]any, 2*len(r.rows)+len(r.extra))
	for k, v := range r.extra {
		m[k] = v
	}
	for _, x := range r.rows {
		m[x.key] = round3(x.value)
		if x.rawKey != "" {
			m[x.rawKey] = round3(x.raw)
		}
	}
	return m
}

func (r *report) table(w io.Writer) {
	cells := [][]string{{"scenario", "zerodq", "raw beanstalkd", "unit", "note"}}
	for _, x := range r.rows {
		raw := "-"
		if x.rawKey != "" {
			raw = format(x.raw, x.unit)
		}
		cells = append(cells, []string{x.name, format(x.value, x.unit), raw, x.unit, x.note})
	}
	width := make([]int, len(cells[0]))
	for _, line := range cells {
		for i, c := range line {
			width[i] = max(width[i], len(c))
		}
	}
	for _, line := range cells {
		// Names, units and notes read left to right; figures line up on
		// their last digit.
		fmt.Fprintf(w, "%-*s  %*s  %*s  %-*s  %s\n", width[0], line[0], width[1], line[1],
			width[2], line[2], width[3], line[3], line[4])
	}
}

func format(v float64, unit string) string {
	switch unit {
	case "jobs/s", "jobs", "MB":
		return thousands(int64(math.Round(v)))
	case "ratio":
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
