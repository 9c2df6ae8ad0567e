package admin

import (
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSameOriginTellsTheDashboardsOwnPagesFromOtherSites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host   string
		fetch  string
		origin string
		ok     bool
	}{
		{"dash.example:8090", "same-origin", "http://dash.example:8090", true},
		{"dash.example:8090", "", "", true},     // a tool such as curl
		{"dash.example:8090", "none", "", true}, // typed in the address bar
		{"dash.example", "", "https://dash.example:443", true},
		{"dash.example:8090", "cross-site", "", false},
		{"dash.example:8090", "same-site", "http://other.dash.example:8090", false},
		{"dash.example:8090", "", "http://evil.example", false},
		{"dash.example:8090", "", "null", false},
		{"dash.example:8090", "same-origin", "http://dash.example:9999", false},
	} {
		r := httptest.NewRequest("POST", "http://"+tc.host+"/zerodq/api/pause", nil)
		if tc.fetch != "" {
			r.Header.Set("Sec-Fetch-Site", tc.fetch)
		}
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		require.Equal(t, tc.ok, sameOrigin(r), "%+v", tc)
	}
}

func TestJobIDsReadsRepeatedAndPastedIDs(t *testing.T) {
	t.Parallel()
	q := url.Values{"id": {"a", "b"}, "ids": {"c, d\ne\r\n\tb  f"}}
	require.Equal(t, []string{"a", "b", "c", "d", "e", "f"}, jobIDs(q))
	require.Empty(t, jobIDs(url.Values{"ids": {" \n "}}))
	many := url.Values{}
	for i := range maxLookup + 10 {
		many.Add("id", string(rune('A'+i%26))+string(rune('a'+i/26)))
	}
	require.Len(t, jobIDs(many), maxLookup)
}

func TestParseDeadQuery(t *testing.T) {
	t.Parallel()
	q, err := parseDeadQuery(url.Values{"match": {" boom "}, "since": {"2026-01-02T03:04:05Z"}, "limit": {"20"}})
	require.NoError(t, err)
	require.Equal(t, "boom", q.Match)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), q.Since.UTC())
	require.Equal(t, 20, q.Limit)
	q, err = parseDeadQuery(url.Values{"since": {"1h"}})
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(-time.Hour), q.Since, time.Minute)
	require.Equal(t, defaultDeadLimit, q.Limit)
	for _, bad := range []url.Values{{"limit": {"0"}}, {"limit": {"5000"}}, {"since": {"yesterday"}}} {
		_, err := parseDeadQuery(bad)
		require.Error(t, err, "%v", bad)
	}
}

func TestConfigDefaultsAndPrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "/zerodq", "/": "", "ops/": "/ops", "/a/b/": "/a/b"} {
		require.Equal(t, want, Config{Prefix: in}.withDefaults().Prefix, "Prefix %q", in)
	}
	c := Config{}.withDefaults()
	require.Equal(t, 2*time.Second, c.Poll)
	require.Equal(t, 30*time.Second, c.Timeout)
	require.Equal(t, 5*time.Second, c.Alerts.LatenessP99)
	require.ErrorIs(t, Config{Prefix: "/a b"}.withDefaults().validate(), ErrBadConfig)
	require.ErrorIs(t, Config{Poll: -time.Second}.withDefaults().validate(), ErrBadConfig)
}

func TestTextBodyShowsTextAsItIsAndAnythingElseAsHex(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want string
	}{
		{"", "(empty)"},
		{"order 42", "order 42"},
		{"line 1\n\tline 2\r\n", "line 1\n\tline 2\r\n"},
		{"naïve ☃ 日本", "naïve ☃ 日本"},
		{"<script>", "<script>"}, // escaped by the template, not here
		{"a\x00b", "binary, 3 bytes in hex:\n00000000  61 00 62                                          |a.b|\n"},
		{"\xff\xfe", "binary, 2 bytes in hex:\n00000000  ff fe                                             |..|\n"},
		{"bell\a", "binary, 5 bytes in hex:\n00000000  62 65 6c 6c 07                                    |bell.|\n"},
	} {
		require.Equal(t, tc.want, textBody("q", []byte(tc.body)), "%q", tc.body)
	}
}
