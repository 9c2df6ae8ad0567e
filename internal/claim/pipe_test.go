package claim

import (
	"context"
	"errors"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// go-zero's breaker refuses a whole pipeline without touching its commands,
// which are left with neither an answer nor an error. Each caller in the
// batch must get the pipeline's error, not an empty answer that reads as a
// script's bad reply ("unexpected script reply: <nil>"). A command that has
// an answer or an error of its own keeps it.
func TestACommandOfAPipelineRefusedWholeGetsThePipelinesError(t *testing.T) {
	ctx := context.Background()
	refused := errors.New("circuit breaker is open")

	v, err := pipedResult(goredis.NewCmd(ctx), refused)
	require.Nil(t, v)
	require.ErrorIs(t, err, refused)

	answered := goredis.NewCmd(ctx)
	answered.SetVal([]any{"RUN", int64(1), int64(0)})
	v, err = pipedResult(answered, refused)
	require.NoError(t, err, "another command failed the pipeline; this one's answer stands")
	rep, err := parseReply(v)
	require.NoError(t, err)
	require.Equal(t, Reply{Kind: Run, Attempt: 1}, rep)

	own := errors.New("NOSCRIPT No matching script")
	failed := goredis.NewCmd(ctx)
	failed.SetErr(own)
	_, err = pipedResult(failed, own)
	require.ErrorIs(t, err, own)
}
