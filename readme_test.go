package zerodq_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/zeromicro/go-zero/core/conf"

	"github.com/zerodq/zerodq/dq"
)

// block is one fenced code block of a markdown file.
type block struct {
	lang, body string
	snippet    string // the file named by a "<!-- snippet: path -->" line just above
	line       int
}

var (
	fenceRe   = regexp.MustCompile("(?ms)^```(\\w*)\\n(.*?)^```")
	snippetRe = regexp.MustCompile(`<!-- snippet: (\S+) -->\n$`)
)

func readmeBlocks(t *testing.T) []block {
	t.Helper()
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	text := string(data)
	var blocks []block
	for _, m := range fenceRe.FindAllStringSubmatchIndex(text, -1) {
		b := block{
			lang: text[m[2]:m[3]],
			body: text[m[4]:m[5]],
			line: strings.Count(text[:m[0]], "\n") + 1,
		}
		if s := snippetRe.FindStringSubmatch(text[:m[0]]); s != nil {
			b.snippet = s[1]
		}
		blocks = append(blocks, b)
	}
	require.NotEmpty(t, blocks)
	return blocks
}

func blocksOf(t *testing.T, langs ...string) []block {
	t.Helper()
	var out []block
	for _, b := range readmeBlocks(t) {
		for _, l := range langs {
			if b.lang == l {
				out = append(out, b)
			}
		}
	}
	require.NotEmpty(t, out, "README has no %v blocks", langs)
	return out
}

// The Go snippets are excerpts of files that go vet and the tests build, so
// they compile as long as they are verbatim.
func TestReadmeGoSnippetsAreVerbatimFromFilesThatCompile(t *testing.T) {
	t.Parallel()
	for _, b := range blocksOf(t, "go") {
		require.NotEmpty(t, b.snippet, "README line %d: a go block needs a <!-- snippet: path --> line above it", b.line)
		require.True(t, strings.HasSuffix(b.snippet, ".go") && !strings.HasSuffix(b.snippet, "_test.go"),
			"README line %d: snippet source %s is not a Go source file", b.line, b.snippet)
		src, err := os.ReadFile(b.snippet)
		require.NoError(t, err, "README line %d", b.line)
		require.Contains(t, string(src), b.body, "README line %d: the snippet is not verbatim from %s", b.line, b.snippet)
	}
}

func TestReadmeYamlLoadsAsAValidDqSection(t *testing.T) {
	t.Parallel()
	for _, b := range blocksOf(t, "yaml") {
		var c struct{ Dq dq.DqConf }
		require.NoError(t, conf.LoadFromYamlBytes([]byte(b.body), &c), "README line %d", b.line)
		require.NoError(t, c.Dq.Validate(), "README line %d", b.line)
	}
}

func TestReadmeJSONParses(t *testing.T) {
	t.Parallel()
	for _, b := range blocksOf(t, "json") {
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(b.body), &v), "README line %d", b.line)
	}
}

func TestReadmeMakeCommandsAreMakefileTargets(t *testing.T) {
	t.Parallel()
	makefile, err := os.ReadFile("Makefile")
	require.NoError(t, err)
	seen := 0
	for _, b := range blocksOf(t, "sh") {
		for _, line := range strings.Split(b.body, "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || fields[0] != "make" {
				continue
			}
			seen++
			target := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(fields[1]) + `:`)
			require.Regexp(t, target, string(makefile), "README line %d: make %s is not a Makefile target", b.line, fields[1])
		}
	}
	require.Positive(t, seen)
}

// dqFields returns DqConf's field names and the defaults of their tags ("" for
// fields without one).
func dqFields() map[string]string {
	fields := map[string]string{}
	typ := reflect.TypeFor[dq.DqConf]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		def := ""
		for _, opt := range strings.Split(f.Tag.Get("json"), ",") {
			if v, ok := strings.CutPrefix(opt, "default="); ok {
				def = v
			}
		}
		fields[f.Name] = def
	}
	return fields
}

func TestReadmeConfigTableListsEveryFieldWithItsDefault(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	for name, def := range dqFields() {
		row := regexp.MustCompile("(?m)^\\| `" + name + "` \\| ([^|]+) \\|").FindStringSubmatch(string(readme))
		require.NotNil(t, row, "README's config table has no row for %s", name)
		if def != "" {
			require.Equal(t, "`"+def+"`", strings.TrimSpace(row[1]), "default of %s", name)
		}
	}
}

func TestSampleDqYamlShowsEveryFieldAtItsDefaultWithAComment(t *testing.T) {
	t.Parallel()
	sample, err := os.ReadFile("etc/dq.yaml")
	require.NoError(t, err)

	lines := strings.Split(string(sample), "\n")
	for name := range dqFields() {
		key := regexp.MustCompile(`^  ` + name + `:`)
		i := 0
		for i < len(lines) && !key.MatchString(lines[i]) {
			i++
		}
		require.Less(t, i, len(lines), "etc/dq.yaml has no %s", name)
		require.Regexp(t, `^\s*# \S`, lines[i-1], "etc/dq.yaml: %s has no comment above it", name)
	}

	var full, minimal struct{ Dq dq.DqConf }
	require.NoError(t, conf.LoadFromYamlBytes(sample, &full))
	require.NoError(t, full.Dq.Validate())
	require.NoError(t, conf.LoadFromYamlBytes([]byte(`
Dq:
  Beanstalks:
    - { Endpoint: 127.0.0.1:11300, Tube: orders }
    - { Endpoint: 127.0.0.1:11301, Tube: orders }
    - { Endpoint: 127.0.0.1:11302, Tube: orders }
  Redis: { Host: 127.0.0.1:6379, Type: node }
`), &minimal))
	if len(full.Dq.SigningKeys) == 0 {
		full.Dq.SigningKeys = nil
	}
	require.Equal(t, minimal.Dq, full.Dq, "etc/dq.yaml should hold the defaults")
}
