package dqx

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"
)

func TestCronConfFromYamlGetsDefaults(t *testing.T) {
	t.Parallel()
	var c struct {
		Cron CronConf
	}
	yaml := []byte(`
Cron:
  Entries:
    - Name: report
      Spec: "0 0 2 * * *"
      TimeZone: Asia/Shanghai
      Body: daily
    - { Name: sweep, Spec: "@every 30s", Missed: once, Type: sweeper }
`)
	require.NoError(t, conf.LoadFromYamlBytes(yaml, &c))
	require.Equal(t, "cron", c.Cron.Name)
	require.Equal(t, time.Minute, c.Cron.Lookahead)
	require.Equal(t, 5*time.Second, c.Cron.Refresh)
	require.Equal(t, MissedSkip, c.Cron.Entries[0].Missed)
	require.Equal(t, MissedRunOnce, c.Cron.Entries[1].Missed)
	require.NoError(t, c.Cron.Validate())

	got, entries, err := c.Cron.compile()
	require.NoError(t, err)
	require.Equal(t, CronType("report"), got.Entries[0].Type, "an entry without Type routes by its name")
	require.Equal(t, "sweeper", entries[1].Type)
}

func TestCronConfInGoDefaultsZeroFields(t *testing.T) {
	t.Parallel()
	c, entries, err := CronConf{Entries: []CronEntry{{Name: "a", Spec: "@hourly"}}}.compile()
	require.NoError(t, err)
	require.Equal(t, defaultCronName, c.Name)
	require.Equal(t, defaultLookahead, c.Lookahead)
	require.Equal(t, defaultRefresh, c.Refresh)
	require.Equal(t, MissedSkip, entries[0].Missed)
}

func TestCronConfValidateNamesTheBadField(t *testing.T) {
	t.Parallel()
	ok := CronEntry{Name: "a", Spec: "@every 1s"}
	tests := []struct {
		conf  CronConf
		field string
	}{
		{CronConf{Name: "a{b}"}, "Name"},
		{CronConf{Lookahead: -time.Second}, "Lookahead"},
		{CronConf{Refresh: -time.Second}, "Refresh"},
		{CronConf{Lookahead: time.Second, Refresh: time.Second}, "Refresh"},
		{CronConf{Entries: []CronEntry{{Spec: "@every 1s"}}}, "Entries[0].Name"},
		{CronConf{Entries: []CronEntry{ok, {Name: "has space", Spec: "@every 1s"}}}, "Entries[1].Name"},
		{CronConf{Entries: []CronEntry{ok, {Name: "a/b", Spec: "@every 1s"}}}, "Entries[1].Name"},
		{CronConf{Entries: []CronEntry{ok, ok}}, "Entries[1].Name"},
		{CronConf{Entries: []CronEntry{{Name: "x", Spec: "every second"}}}, "Entries[0].Spec"},
		{CronConf{Entries: []CronEntry{{Name: "x", Spec: "@daily", TimeZone: "Mars/Olympus"}}}, "Entries[0].Spec"},
		{CronConf{Entries: []CronEntry{{Name: "x", Spec: "@daily", Missed: "all"}}}, "Entries[0].Missed"},
	}
	for _, tt := range tests {
		err := tt.conf.Validate()
		require.ErrorIs(t, err, ErrBadCron, "%+v", tt.conf)
		var ce *CronConfError
		require.True(t, errors.As(err, &ce))
		require.Equal(t, tt.field, ce.Field, "%v", err)
		require.Contains(t, err.Error(), tt.field)
	}
}
