package dq

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReserveRoundTripsGrowUnderABacklogAndShrinkToATrickle(t *testing.T) {
	ask := 1
	for _, want := range []int{2, 4, 8, reserveBatch} {
		ask = nextAsk(ask, ask) // every copy asked for came
		require.Equal(t, want, ask)
	}
	require.Equal(t, 3, nextAsk(8, 3), "back to what came")
	require.Equal(t, 1, nextAsk(8, 0), "never below one")
	require.Equal(t, 2, nextAsk(1, 1))
	require.Equal(t, 1, nextAsk(2, 1), "a trickle asks for one, then two")
}
