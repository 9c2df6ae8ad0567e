package claim

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIndexKeysAreHashTaggedPerQueue(t *testing.T) {
	t.Parallel()
	s := New(nil, "zerodq", time.Hour)
	require.Equal(t, "{zerodq:orders}:dead", s.DeadKey("orders"))
	require.Equal(t, "{zerodq:orders}:dead:info", s.DeadInfoKey("orders"))
	require.Equal(t, "{zerodq:orders}:consumers", s.ConsumersKey("orders"))
	require.Equal(t, "{zerodq:orders}:consumer:h/1/ab", s.ConsumerKey("orders", "h/1/ab"))
	require.Equal(t, "{zerodq:orders}:producers", s.ProducersKey("orders"))
	require.Equal(t, "{zerodq:orders}:producer:h/1/ab", s.ProducerKey("orders", "h/1/ab"))
	require.Equal(t, "{zerodq:orders}:op:0123456789abcdef", s.OpKey("orders", "0123456789abcdef"))
	require.Equal(t, "{zerodq:orders}:paused", s.PausedKey("orders"))
	require.Equal(t, "{zerodq}:audit", s.AuditKey())
	// No index key starts like a job record key of the queue.
	for _, k := range []string{s.DeadKey("orders"), s.ConsumersKey("orders"), s.PausedKey("orders"), s.AuditKey(),
		s.ProducersKey("orders"), s.OpKey("orders", "x")} {
		require.False(t, strings.HasPrefix(k, s.Key("orders", "")), k)
	}
}
