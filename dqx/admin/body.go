package admin

import (
	"encoding/hex"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// maxHexBody bounds the bytes of a binary body textBody shows.
const maxHexBody = 256

// textBody renders a job's body when no WithBodyFormatter is given: as it
// is when it is printable UTF-8 text (the page's template escapes it), else
// its size and a hex dump of its first 256 bytes.
func textBody(_ string, body []byte) string {
	if len(body) == 0 {
		return "(empty)"
	}
	if printable(body) {
		return string(body)
	}
	n := min(len(body), maxHexBody)
	if n == len(body) {
		return fmt.Sprintf("binary, %d bytes in hex:\n%s", n, hex.Dump(body))
	}
	return fmt.Sprintf("binary, %d bytes; the first %d in hex:\n%s", len(body), n, hex.Dump(body[:n]))
}

// printable says whether b is UTF-8 text of printable characters, line
// breaks and tabs.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}
