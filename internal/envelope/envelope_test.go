package envelope_test

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zerodq/zerodq/internal/envelope"
)

var (
	oldKey = []byte("old signing key, retired soon")
	newKey = []byte("new signing key")
	// longKey is longer than SHA-256's block, which HMAC hashes before use.
	longKey = []byte(strings.Repeat("k", 100))
)

// wire assembles envelope bytes by hand, field by field, as the layout comment describes, so tests can pin the
// format and build envelopes the encoder would refuse to write.
type wire struct {
	version, mode, flags, slot, count byte
	priority, ttr                     uint32
	due                               int64
	id                                string
	headers                           []envelope.Header
	sig                               []byte // fingerprint + MAC, appended when mode has the signed bit
	body                              string
}

func (w wire) bytes() []byte {
	b := []byte("ZQ\xff")
	b = append(b, w.version, w.mode, w.flags, w.slot, w.count)
	b = binary.BigEndian.AppendUint32(b, w.priority)
	b = binary.BigEndian.AppendUint32(b, w.ttr)
	b = binary.BigEndian.AppendUint64(b, uint64(w.due))
	b = binary.AppendUvarint(b, uint64(len(w.id)))
	b = append(b, w.id...)
	b = binary.AppendUvarint(b, uint64(len(w.headers)))
	for _, h := range w.headers {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	b = append(b, w.sig...)
	return append(b, w.body...)
}

func validWire() wire {
	return wire{version: 1, slot: 1, count: 3, priority: 1024, ttr: 30, due: 1_700_000_000_123, id: "job-1", body: "payload"}
}

func manyHeaders(n int) []envelope.Header {
	hs := make([]envelope.Header, n)
	for i := range hs {
		hs[i] = envelope.Header{Key: "k" + strconv.Itoa(i), Value: strings.Repeat("v", i)}
	}
	return hs
}

func sampleEnvelope() envelope.Envelope {
	return envelope.Envelope{
		ID:       "01h5k8w0000000000000000000",
		DueMs:    1_700_000_000_124, // rounded up
		Slot:     2,
		Count:    3,
		Flags:    envelope.FlagUnc,
		Priority: 1024,
		TTR:      60,
		Headers:  []envelope.Header{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, {Key: "type", Value: "order.cancel"}},
		Body:     []byte(`{"order":42}`),
	}
}

func signedSample(t *testing.T, keys envelope.Keys) []byte {
	t.Helper()
	e := sampleEnvelope()
	data, err := envelope.Encode(&e, keys)
	require.NoError(t, err)
	return data
}

func TestEncodeDecodeRoundTripsEveryField(t *testing.T) {
	t.Parallel()
	cases := map[string]envelope.Envelope{
		"minimal": {ID: "a", Body: []byte("x")},
		"headers": sampleEnvelope(),
		"empty body": {
			ID: "job", DueMs: 5, Slot: 0, Count: 1, Priority: 7, TTR: 1, Body: []byte{},
		},
		"max values": {
			ID:       strings.Repeat("~", 200),
			DueMs:    math.MaxInt64,
			Slot:     254,
			Count:    255,
			Flags:    0xff,
			Priority: math.MaxUint32,
			TTR:      math.MaxUint32,
			Headers:  append(manyHeaders(63), envelope.Header{Key: "big", Value: strings.Repeat("b", 300)}),
			Body:     []byte(strings.Repeat("\x00\xff", 40000)),
		},
		"negative due, unknown count, any slot": {ID: "neg", DueMs: math.MinInt64, Slot: 9, Count: 0, Body: []byte("y")},
		"header with empty value": {
			ID: "h", Headers: []envelope.Header{{Key: "k"}}, Body: []byte("z"),
		},
	}
	rings := map[string]envelope.Keys{
		"unsigned":    nil,
		"signed":      {newKey},
		"signed long": {longKey},
	}
	for name, e := range cases {
		for ringName, keys := range rings {
			t.Run(name+"/"+ringName, func(t *testing.T) {
				t.Parallel()
				data, err := envelope.Encode(&e, keys)
				require.NoError(t, err)
				require.Len(t, data, envelope.Overhead(&e, keys)+len(e.Body))

				got, err := envelope.Decode(data, keys, envelope.Accept{})
				require.NoError(t, err)
				require.Equal(t, e, got)
				require.Equal(t, e.Unc(), got.Unc())
			})
		}
	}
}

func TestAppendEncodeAppendsAfterExistingBytes(t *testing.T) {
	t.Parallel()
	e := sampleEnvelope()
	want, err := envelope.Encode(&e, envelope.Keys{newKey})
	require.NoError(t, err)

	got, err := envelope.AppendEncode([]byte("prefix"), &e, envelope.Keys{newKey})
	require.NoError(t, err)
	require.Equal(t, "prefix", string(got[:6]))
	require.Equal(t, want, got[6:])
}

func TestEncodeWritesTheDocumentedLayout(t *testing.T) {
	t.Parallel()
	e := envelope.Envelope{
		ID: "job-1", DueMs: 1_700_000_000_123, Slot: 1, Count: 3, Flags: envelope.FlagUnc, Priority: 1024, TTR: 30,
		Headers: []envelope.Header{{Key: "type", Value: "mail"}}, Body: []byte("payload"),
	}
	w := wire{version: 1, flags: 1, slot: 1, count: 3, priority: 1024, ttr: 30, due: 1_700_000_000_123, id: "job-1",
		headers: e.Headers, body: "payload"}

	unsigned, err := envelope.Encode(&e, nil)
	require.NoError(t, err)
	require.Equal(t, w.bytes(), unsigned)

	signed, err := envelope.Encode(&e, envelope.Keys{newKey, oldKey})
	require.NoError(t, err)
	head := len(w.bytes()) - len(w.body)
	fp := sha256.Sum256(newKey)
	mac := hmac.New(sha256.New, newKey)
	w.mode = 1
	w.sig = fp[:4]
	w.body = ""
	mac.Write(w.bytes())
	mac.Write(e.Body)
	w.sig = append(w.sig, mac.Sum(nil)...)
	w.body = "payload"
	require.Equal(t, w.bytes(), signed)
	require.Equal(t, head+4+32, envelope.Overhead(&e, envelope.Keys{newKey}))
}

func TestDecodeVerifiesWithARotatedKeyRing(t *testing.T) {
	t.Parallel()
	oldRing := envelope.Keys{oldKey}
	newRing := envelope.Keys{newKey, oldKey}
	data := signedSample(t, oldRing)

	got, err := envelope.Decode(data, newRing, envelope.Accept{})
	require.NoError(t, err)
	require.Equal(t, sampleEnvelope(), got)

	// A ring that no longer lists the old key refuses what it signed.
	_, err = envelope.Decode(data, envelope.Keys{newKey}, envelope.Accept{})
	require.ErrorIs(t, err, envelope.ErrBadSignature)
}

func TestDecodeWithKeysTakesUnsignedEnvelopesOnlyWhenAccepted(t *testing.T) {
	t.Parallel()
	keys := envelope.Keys{newKey}
	unsigned := signedSample(t, nil)

	_, err := envelope.Decode(unsigned, keys, envelope.Accept{})
	require.ErrorIs(t, err, envelope.ErrUnsigned)
	_, err = envelope.Decode(unsigned, keys, envelope.Accept{Legacy: true})
	require.ErrorIs(t, err, envelope.ErrUnsigned, "Legacy is about go-queue bodies only")
	got, err := envelope.Decode(unsigned, keys, envelope.Accept{Unsigned: true})
	require.NoError(t, err)
	require.Equal(t, sampleEnvelope(), got)

	// A signed envelope must still verify; a go-queue body needs Legacy.
	forged := signedSample(t, envelope.Keys{[]byte("intruder")})
	_, err = envelope.Decode(forged, keys, envelope.Accept{Unsigned: true})
	require.ErrorIs(t, err, envelope.ErrBadSignature)
	_, err = envelope.Decode([]byte("1700000000000000000/body"), keys, envelope.Accept{Unsigned: true})
	require.ErrorIs(t, err, envelope.ErrLegacyRefused)
}

func TestDecodeWithoutKeysAcceptsASignedEnvelopeAndIgnoresItsMAC(t *testing.T) {
	t.Parallel()
	data := signedSample(t, envelope.Keys{newKey})
	data[len(data)-len(sampleEnvelope().Body)-1] ^= 0xff // last MAC byte

	got, err := envelope.Decode(data, nil, envelope.Accept{})
	require.NoError(t, err)
	require.Equal(t, sampleEnvelope(), got)
}

func TestDecodeBodyAliasesTheInput(t *testing.T) {
	t.Parallel()
	data := signedSample(t, nil)
	got, err := envelope.Decode(data, nil, envelope.Accept{})
	require.NoError(t, err)
	data[len(data)-1] = '!'
	require.Equal(t, byte('!'), got.Body[len(got.Body)-1])
}

func TestDecodeRejectsEachMalformedInputWithItsReason(t *testing.T) {
	t.Parallel()
	keys := envelope.Keys{newKey, oldKey}
	signed := signedSample(t, keys)
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), signed...)) }
	withWire := func(f func(w *wire)) []byte {
		w := validWire()
		f(&w)
		return w.bytes()
	}

	cases := []struct {
		name string
		data []byte
		keys envelope.Keys
		want error
	}{
		{"empty", nil, nil, envelope.ErrNotEnvelope},
		{"json", []byte(`{"order":42}`), nil, envelope.ErrNotEnvelope},
		{"magic cut short", []byte("ZQ"), nil, envelope.ErrNotEnvelope},
		{"wrong magic", mutate(func(b []byte) []byte { b[2] = 0xfe; return b }), nil, envelope.ErrNotEnvelope},
		{"digits without slash", []byte("1700000000000000000"), nil, envelope.ErrNotEnvelope},
		{"magic only", []byte("ZQ\xff"), nil, envelope.ErrTruncated},
		{"fixed fields cut", signed[:20], nil, envelope.ErrTruncated},
		{"id cut", withWire(func(w *wire) { w.id = "abcdef"; w.body = "" })[:27], nil, envelope.ErrTruncated},
		{"header count missing", withWire(func(w *wire) { w.body = "" })[:30], nil, envelope.ErrTruncated},
		{"header value cut", withWire(func(w *wire) {
			w.headers = []envelope.Header{{Key: "k", Value: "long value"}}
			w.body = ""
		})[:36], nil, envelope.ErrTruncated},
		{"signature cut", signed[:envelope.Overhead(ptr(sampleEnvelope()), keys)-1], keys, envelope.ErrTruncated},
		{"signature cut, no keys", signed[:envelope.Overhead(ptr(sampleEnvelope()), keys)-1], nil, envelope.ErrTruncated},
		{"version 2", withWire(func(w *wire) { w.version = 2 }), nil, envelope.ErrVersion},
		{"version 0", withWire(func(w *wire) { w.version = 0 }), nil, envelope.ErrVersion},
		{"unknown mode bit", withWire(func(w *wire) { w.mode = 2 }), nil, envelope.ErrVersion},
		{"slot equals count", withWire(func(w *wire) { w.slot, w.count = 3, 3 }), nil, envelope.ErrInvalid},
		{"slot above count", withWire(func(w *wire) { w.slot, w.count = 200, 2 }), nil, envelope.ErrInvalid},
		{"empty id", withWire(func(w *wire) { w.id = "" }), nil, envelope.ErrInvalid},
		{"id with space", withWire(func(w *wire) { w.id = "a b" }), nil, envelope.ErrInvalid},
		{"id with slash", withWire(func(w *wire) { w.id = "a/b" }), nil, envelope.ErrInvalid},
		{"id with hash tag", withWire(func(w *wire) { w.id = "{a}" }), nil, envelope.ErrInvalid},
		{"id too long", withWire(func(w *wire) { w.id = strings.Repeat("a", 201) }), nil, envelope.ErrInvalid},
		{"too many headers", withWire(func(w *wire) { w.headers = manyHeaders(65) }), nil, envelope.ErrInvalid},
		{"empty header key", withWire(func(w *wire) { w.headers = []envelope.Header{{Value: "v"}} }), nil, envelope.ErrInvalid},
		{"id length overflows", append([]byte(validWire().bytes()[:24]),
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), nil, envelope.ErrInvalid},
		{"id length not minimal", append(append([]byte(validWire().bytes()[:24]), 0x81, 0x00, 'a'), 0), nil, envelope.ErrInvalid},
		{"unsigned with keys", withWire(func(w *wire) {}), keys, envelope.ErrUnsigned},
		{"body tampered", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), keys, envelope.ErrBadSignature},
		{"body extended", mutate(func(b []byte) []byte { return append(b, 'x') }), keys, envelope.ErrBadSignature},
		{"due tampered", mutate(func(b []byte) []byte { b[23] ^= 1; return b }), keys, envelope.ErrBadSignature},
		{"flag cleared", mutate(func(b []byte) []byte { b[5] = 0; return b }), keys, envelope.ErrBadSignature},
		{"slot made invalid", mutate(func(b []byte) []byte { b[6] = 9; return b }), keys, envelope.ErrBadSignature},
		{"MAC tampered", mutate(func(b []byte) []byte { b[len(b)-len(sampleEnvelope().Body)-5] ^= 1; return b }), keys, envelope.ErrBadSignature},
		{"signed with an unknown key", signedSample(t, envelope.Keys{[]byte("intruder")}), keys, envelope.ErrBadSignature},
		{"ring of empty keys", signed, envelope.Keys{{}}, envelope.ErrBadSignature},
		{"legacy with keys", []byte("1700000000000000000/body"), keys, envelope.ErrLegacyRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := envelope.Decode(tc.data, tc.keys, envelope.Accept{})
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, envelope.Envelope{}, got)
		})
	}
}

func TestDecodeReportsEveryCutThroughTheHeaderAsTruncated(t *testing.T) {
	t.Parallel()
	e := sampleEnvelope()
	e.Body = nil
	for _, keys := range []envelope.Keys{nil, {newKey}} {
		data, err := envelope.Encode(&e, keys)
		require.NoError(t, err)
		for n := len("ZQ\xff") + 1; n < len(data); n++ {
			_, err := envelope.Decode(data[:n], keys, envelope.Accept{})
			require.ErrorIs(t, err, envelope.ErrTruncated, "cut at %d of %d", n, len(data))
		}
		_, err = envelope.Decode(data, keys, envelope.Accept{})
		require.NoError(t, err)
	}
}

func TestEncodeRefusesInvalidEnvelopes(t *testing.T) {
	t.Parallel()
	valid := func(f func(e *envelope.Envelope)) *envelope.Envelope {
		e := sampleEnvelope()
		f(&e)
		return &e
	}
	cases := []struct {
		name string
		e    *envelope.Envelope
		keys envelope.Keys
	}{
		{"nil", nil, nil},
		{"legacy", valid(func(e *envelope.Envelope) { e.Legacy = true }), nil},
		{"empty id", valid(func(e *envelope.Envelope) { e.ID = "" }), nil},
		{"id with newline", valid(func(e *envelope.Envelope) { e.ID = "a\nb" }), nil},
		{"slot not below count", valid(func(e *envelope.Envelope) { e.Slot, e.Count = 3, 3 }), nil},
		{"too many headers", valid(func(e *envelope.Envelope) { e.Headers = manyHeaders(65) }), nil},
		{"empty header key", valid(func(e *envelope.Envelope) { e.Headers[1].Key = "" }), nil},
		{"empty signing key", valid(func(e *envelope.Envelope) {}), envelope.Keys{{}, newKey}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dst := []byte("kept")
			got, err := envelope.AppendEncode(dst, tc.e, tc.keys)
			require.ErrorIs(t, err, envelope.ErrInvalid)
			require.Equal(t, []byte("kept"), got)

			_, err = envelope.Encode(tc.e, tc.keys)
			require.ErrorIs(t, err, envelope.ErrInvalid)
		})
	}
}

func TestEnvelopeUncReadsTheFlag(t *testing.T) {
	t.Parallel()
	require.False(t, (&envelope.Envelope{Flags: 0xfe}).Unc())
	require.True(t, (&envelope.Envelope{Flags: envelope.FlagUnc}).Unc())
}

func goQueueBody(nanos int64, body string) []byte {
	return []byte(strconv.FormatInt(nanos, 10) + "/" + body)
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func TestDecodeReadsGoQueueBodiesAsLegacyEnvelopes(t *testing.T) {
	t.Parallel()
	raw := goQueueBody(1_700_000_000_123_456_789, "hello/world")
	want := envelope.Envelope{
		ID:       "gq-" + md5Hex(raw),
		DueMs:    1_700_000_000_124, // rounded up
		Priority: 2,
		TTR:      5,
		Body:     []byte("hello/world"),
		Legacy:   true,
	}
	for _, tc := range []struct {
		name         string
		keys         envelope.Keys
		acceptLegacy bool
	}{
		{"no keys", nil, false},
		{"no keys, accepting", nil, true},
		{"keys, accepting", envelope.Keys{newKey}, true},
	} {
		got, err := envelope.Decode(raw, tc.keys, envelope.Accept{Legacy: tc.acceptLegacy})
		require.NoError(t, err, tc.name)
		require.Equal(t, want, got, tc.name)
	}

	got, err := envelope.Decode([]byte("0/"), nil, envelope.Accept{})
	require.NoError(t, err)
	require.Empty(t, got.Body)
	require.Zero(t, got.DueMs)

	_, err = envelope.Encode(&want, nil)
	require.ErrorIs(t, err, envelope.ErrInvalid)
}

func TestDecodeRejectsBodiesThatOnlyLookLikeGoQueue(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]string{
		"letter before digits": "x1700000000000000000/body",
		"minus sign":           "-1700000000000000000/body",
		"plus sign":            "+1700000000000000000/body",
		"space before slash":   "1700000000000000000 /body",
		"missing slash":        "1700000000000000000",
		"letter in digits":     "17000000a0000000000/body",
		"overflow":             "9223372036854775808/body",
	} {
		_, err := envelope.Decode([]byte(data), nil, envelope.Accept{Legacy: true})
		require.ErrorIs(t, err, envelope.ErrNotEnvelope, name)
	}
	got, err := envelope.Decode([]byte("9223372036854775807/x"), nil, envelope.Accept{Legacy: true})
	require.NoError(t, err)
	require.Equal(t, int64(math.MaxInt64/1_000_000+1), got.DueMs)
}

func TestLegacyIDAndLockKeyAreTheMD5OfTheRawBody(t *testing.T) {
	t.Parallel()
	raw := goQueueBody(1_700_000_000_000_000_000, "job")
	require.Equal(t, md5Hex(raw), envelope.LegacyLockKey(raw))
	require.Equal(t, "gq-"+md5Hex(raw), envelope.LegacyID(raw))
	require.NoError(t, envelope.ValidID(envelope.LegacyID(raw)))
}

func TestAppendEncodeDoesNotAllocateWhenDstHasRoom(t *testing.T) {
	e := sampleEnvelope()
	for name, keys := range map[string]envelope.Keys{"unsigned": nil, "signed": {newKey}, "signed long key": {longKey}} {
		dst := make([]byte, 0, 1024)
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			dst, err = envelope.AppendEncode(dst[:0], &e, keys)
		})
		require.NoError(t, err)
		require.Zero(t, allocs, name)
	}
}

func BenchmarkAppendEncode(b *testing.B) {
	e := sampleEnvelope()
	for name, keys := range map[string]envelope.Keys{"unsigned": nil, "signed": {newKey}} {
		b.Run(name, func(b *testing.B) {
			dst := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(e.Body)))
			for b.Loop() {
				var err error
				if dst, err = envelope.AppendEncode(dst[:0], &e, keys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for name, keys := range map[string]envelope.Keys{"unsigned": nil, "signed": {newKey}} {
		b.Run(name, func(b *testing.B) {
			e := sampleEnvelope()
			data, err := envelope.Encode(&e, keys)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := envelope.Decode(data, keys, envelope.Accept{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	keys := envelope.Keys{newKey, oldKey}
	e := sampleEnvelope()
	unsigned, err := envelope.Encode(&e, nil)
	require.NoError(f, err)
	signed, err := envelope.Encode(&e, keys)
	require.NoError(f, err)
	f.Add(unsigned)
	f.Add(signed)
	f.Add(goQueueBody(1_700_000_000_000_000_000, "legacy body"))
	f.Add(signed[:30])
	f.Add([]byte("ZQ\xff\x01garbage that is not an envelope"))
	f.Add([]byte{})

	sentinels := []error{envelope.ErrNotEnvelope, envelope.ErrTruncated, envelope.ErrVersion, envelope.ErrInvalid,
		envelope.ErrUnsigned, envelope.ErrBadSignature, envelope.ErrLegacyRefused}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ring := range []envelope.Keys{nil, keys} {
			for _, accept := range []envelope.Accept{{}, {Legacy: true}, {Unsigned: true}} {
				e, err := envelope.Decode(data, ring, accept)
				if err != nil {
					require.True(t, slicesContainsIs(sentinels, err), "unexpected error %v", err)
					continue
				}
				if e.Legacy {
					continue
				}
				again, err := envelope.Encode(&e, ring)
				require.NoError(t, err)
				require.Len(t, again, envelope.Overhead(&e, ring)+len(e.Body))
				e2, err := envelope.Decode(again, ring, envelope.Accept{})
				require.NoError(t, err)
				require.Equal(t, e, e2)
			}
		}
	})
}

func slicesContainsIs(targets []error, err error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// The handler sees Job.Headers, a map built in order, where a repeated key
// keeps its last value; Header must read the same value, or the consumer's
// own reading of a header (the WithID writer) could disagree with the job's.
func TestHeaderReadsTheLastValueOfARepeatedKeyAsJobHeadersDoes(t *testing.T) {
	e := envelope.Envelope{Headers: []envelope.Header{{Key: "a", Value: "1"}, {Key: "b", Value: "x"}, {Key: "a", Value: "2"}}}
	asMap := make(map[string]string)
	for _, h := range e.Headers {
		asMap[h.Key] = h.Value
	}
	got, ok := e.Header("a")
	if !ok || got != asMap["a"] {
		t.Fatalf(`Header("a") = %q, %v; the headers as a map say %q`, got, ok, asMap["a"])
	}
	if v, ok := e.Header("b"); !ok || v != "x" {
		t.Fatalf(`Header("b") = %q, %v`, v, ok)
	}
	if _, ok := e.Header("c"); ok {
		t.Fatal(`Header("c") found a key that is not there`)
	}
}
