package admin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJobPageShowsTheBodyEscapedOrAsHexOrThroughTheFormatter: a text body
// is shown escaped, a binary one as the hex of its first 256 bytes with its
// size, and WithBodyFormatter's rendering replaces both, on the page and in
// /api/jobs; the raw body is never in the JSON.
func TestJobPageShowsTheBodyEscapedOrAsHexOrThroughTheFormatter(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	text := `die <b>&"order"</b>`
	binary := "die\x00\x01" + strings.Repeat("\xff", 295) // 300 bytes
	ids := deadLetter(t, c, in, text, binary)

	s := serve(t, authConf(), in)
	page := s.get(t, "/jobs?id="+ids[0]+"&id="+ids[1]).body
	require.Contains(t, page, `<pre class="body">die &lt;b&gt;&amp;&#34;order&#34;&lt;/b&gt;</pre>`)
	require.Contains(t, page, "binary, 300 bytes; the first 256 in hex:")
	require.Contains(t, page, "00000000  64 69 65 00 01 ff ff ff")
	require.Contains(t, page, "000000f0  ff ff")
	require.NotContains(t, page, "00000100", "no byte past the 256th")

	var api struct {
		Jobs []struct {
			ID   string         `json:"id"`
			Body string         `json:"body"`
			Info map[string]any `json:"info"`
		} `json:"jobs"`
	}
	a := s.get(t, "/api/jobs?id="+ids[0])
	require.NoError(t, json.Unmarshal([]byte(a.body), &api), a.body)
	require.Len(t, api.Jobs, 1)
	require.Equal(t, text, api.Jobs[0].Body)
	require.NotContains(t, api.Jobs[0].Info, "body", "the raw body is not in the answer")

	f := serve(t, authConf(), in, WithBodyFormatter(func(queue string, body []byte) string {
		return fmt.Sprintf("<%s: %d bytes>", queue, len(body))
	}))
	page = f.get(t, "/jobs?id="+ids[0]+"&id="+ids[1]).body
	require.Contains(t, page, `<pre class="body">&lt;`+in.Queue()+`: 19 bytes&gt;</pre>`)
	require.Contains(t, page, `<pre class="body">&lt;`+in.Queue()+`: 300 bytes&gt;</pre>`)
	require.NotContains(t, page, "&lt;b&gt;")
	a = f.get(t, "/api/jobs?id="+ids[1])
	require.NoError(t, json.Unmarshal([]byte(a.body), &api), a.body)
	require.Equal(t, "<"+in.Queue()+": 300 bytes>", api.Jobs[0].Body)
}

// TestHideBodiesLeavesBodiesOffThePageAndTheAPI: with HideBodies, neither
// the job page nor /api/jobs carries the body in any form, a formatter's
// included.
func TestHideBodiesLeavesBodiesOffThePageAndTheAPI(t *testing.T) {
	t.Parallel()
	c := testConf(t)
	in := inspector(t, c)
	secret := "die: card 4111111111111111"
	ids := deadLetter(t, c, in, secret)
	conf := authConf()
	conf.HideBodies = true
	s := serve(t, conf, in, WithBodyFormatter(func(string, []byte) string { return "formatted" }))

	page := s.get(t, "/jobs?id="+ids[0])
	require.Contains(t, page.body, `data-state="dead"`)
	a := s.get(t, "/api/jobs?id="+ids[0])
	require.Contains(t, a.body, `"state":"dead"`)
	for _, r := range []answer{page, a} {
		require.NotContains(t, r.body, "4111111111111111")
		require.NotContains(t, r.body, base64.StdEncoding.EncodeToString([]byte(secret)))
		require.NotContains(t, r.body, "formatted")
		require.NotContains(t, r.body, `class="body"`)
		require.NotContains(t, r.body, `"body"`)
	}
}
