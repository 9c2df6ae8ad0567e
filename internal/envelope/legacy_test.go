package envelope_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/envelope"
)

func TestGoQueueDueTimesRoundUpToTheMillisecond(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		nanos int64
		ms    int64
	}{
		{0, 0},
		{1, 1},
		{999_999, 1},
		{1_000_000, 1},
		{1_000_001, 2},
		{1_700_000_000_123_000_000, 1_700_000_000_123},
		{1_700_000_000_123_000_001, 1_700_000_000_124},
		{1_700_000_000_123_456_789, 1_700_000_000_124},
		{math.MaxInt64, math.MaxInt64/1_000_000 + 1},
	} {
		got, err := envelope.Decode([]byte(strconv.FormatInt(tc.nanos, 10)+"/x"), nil, envelope.Accept{Legacy: true})
		require.NoError(t, err, "%d", tc.nanos)
		require.Equal(t, tc.ms, got.DueMs, "due of %d ns, rounded up", tc.nanos)
	}
}
