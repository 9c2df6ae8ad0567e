package envelope_test

import (
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/envelope"
)

const maxIDDue = 1<<48 - 1

func TestNewIDIsUniqueAcrossGoroutines(t *testing.T) {
	t.Parallel()
	const goroutines, perGoroutine = 8, 12_500
	// One due time for all: uniqueness then rests on the random bits alone.
	const due = 1_700_000_000_000
	results := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]string, perGoroutine)
			for i := range ids {
				ids[i] = envelope.NewID(due)
			}
			results[g] = ids
		}()
	}
	wg.Wait()

	seen := make(map[string]struct{}, goroutines*perGoroutine)
	for _, ids := range results {
		for _, id := range ids {
			seen[id] = struct{}{}
		}
	}
	require.Len(t, seen, goroutines*perGoroutine)
}

func TestNewIDSortsByDueTimeAsAString(t *testing.T) {
	t.Parallel()
	dues := []int64{0, 1, 31, 32, 999, 1_000, 1_700_000_000_000, 1_700_000_000_001, 1_700_000_001_000,
		4_102_444_800_000, maxIDDue - 1, maxIDDue}
	var ids []string
	for _, due := range dues {
		// Several IDs per due time: their random tails must never reorder them against other due times.
		for range 20 {
			ids = append(ids, envelope.NewID(due))
		}
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	for i := range sorted {
		got, ok := envelope.IDDue(sorted[i])
		require.True(t, ok)
		require.Equal(t, dues[i/20], got, "position %d", i)
	}
}

func TestNewIDWritesTwentySixCharactersOfTheAlphabet(t *testing.T) {
	t.Parallel()
	for _, due := range []int64{0, 1_700_000_000_000, maxIDDue} {
		id := envelope.NewID(due)
		require.Len(t, id, 26)
		require.LessOrEqual(t, id[0], byte('7'))
		for i := range len(id) {
			require.Contains(t, "0123456789abcdefghjkmnpqrstvwxyz", string(id[i]))
		}
		require.NoError(t, envelope.ValidID(id))
	}
	// The first 10 digits (3 + 9×5 bits) hold exactly the 48 bits of due time, the rest is random.
	require.Equal(t, "0000000000", envelope.NewID(0)[:10])
	require.Equal(t, envelope.NewID(1_700_000_000_000)[:10], envelope.NewID(1_700_000_000_000)[:10])
	require.NotEqual(t, envelope.NewID(1_700_000_000_000)[10:], envelope.NewID(1_700_000_000_000)[10:])
}

func TestIDDueReadsBackTheDueTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ due, want int64 }{
		{0, 0},
		{1, 1},
		{1_700_000_000_123, 1_700_000_000_123},
		{maxIDDue, maxIDDue},
		{-5, 0},                        // clamped: before 1970
		{math.MinInt64, 0},             // clamped
		{maxIDDue + 1, maxIDDue},       // clamped: after year 10889
		{math.MaxInt64, maxIDDue},      // clamped
		{1<<40 + 12345, 1<<40 + 12345}, // bits on both sides of a digit boundary
	} {
		got, ok := envelope.IDDue(envelope.NewID(tc.due))
		require.True(t, ok, "due %d", tc.due)
		require.Equal(t, tc.want, got, "due %d", tc.due)
	}
}

func TestIDDueRejectsStringsNewIDCannotMake(t *testing.T) {
	t.Parallel()
	valid := envelope.NewID(1_700_000_000_000)
	for name, id := range map[string]string{
		"empty":           "",
		"user id":         "order-42",
		"legacy id":       envelope.LegacyID([]byte("1/x")),
		"one short":       valid[:25],
		"one long":        valid + "0",
		"upper case":      strings.ToUpper(valid[:1]) + "ABCDEFGHJKMNPQRSTVWXYZ0123",
		"letter i":        valid[:25] + "i",
		"letter l":        valid[:25] + "l",
		"letter o":        valid[:25] + "o",
		"letter u":        valid[:25] + "u",
		"first digit 8":   "8" + valid[1:],
		"first digit z":   "z" + valid[1:],
		"non-ASCII":       valid[:24] + "é",
		"punctuation":     valid[:25] + "-",
		"high bit":        valid[:25] + "\xff",
		"nul":             valid[:25] + "\x00",
		"first char only": valid[:1],
	} {
		_, ok := envelope.IDDue(id)
		require.False(t, ok, name)
	}
	got, ok := envelope.IDDue("7zzzzzzzzzzzzzzzzzzzzzzzzz")
	require.True(t, ok)
	require.Equal(t, int64(maxIDDue), got)
}

func TestValidIDAcceptsPrintableIDsAndExplainsRejections(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "order-42", "user:7|mail#3", "gq-0123abcd", strings.Repeat("~", 200), "!\"#$%&'()*+,-.:;<=>?@[\\]^_`|~"} {
		require.NoError(t, envelope.ValidID(id), id)
	}
	for name, id := range map[string]string{
		"empty":       "",
		"too long":    strings.Repeat("a", 201),
		"space":       "a b",
		"tab":         "a\tb",
		"newline":     "a\n",
		"slash":       "orders/42",
		"open brace":  "{tag",
		"close brace": "tag}",
		"delete":      "a\x7f",
		"nul":         "\x00",
		"non-ASCII":   "café",
	} {
		err := envelope.ValidID(id)
		require.ErrorIs(t, err, envelope.ErrInvalid, name)
		require.Contains(t, err.Error(), "id", name)
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		envelope.NewID(1_700_000_000_000)
	}
}
