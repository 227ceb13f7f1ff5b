package link

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// Known-answer vectors of docs/PROTOCOL.md §10.7. The request carries the
// MKE request frame of §9.2 (86 bytes, counter 1) as message 1.
var linkKAT = struct {
	frameMKE                    string
	request                     string
	fragmentFirst, fragmentLast string
	refusal                     string
	ping, pong, goAway          string
}{
	frameMKE: "010101000000000000000001000001941f297c00" +
		"04922b600a7ab49974b28419bab60826a0d6b36570814387722876b96f5e42a3c9c5ed7a159d01377e08c68651991b897d2d" +
		"053d324c8f0395ec943ce002e12fa754",
	request:       "01000000 00000056 0000000000000001",
	fragmentFirst: "01010000 00004000 0000000000000002",
	fragmentLast:  "01000000 00000005 0000000000000002",
	refusal: "03000000 0000003c 0000000000000003" +
		"13 4d54455f53455353494f4e5f554e4b4e4f574e" +
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7",
	ping:   "04000000 00000000 0000000000000007",
	pong:   "05000000 00000000 0000000000000007",
	goAway: "06000000 00000000 0000000000000000",
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in a vector: %v", err)
	}
	return b
}

func TestKnownAnswers(t *testing.T) {
	t.Parallel()
	frame := unhex(t, linkKAT.frameMKE)
	proof := make([]byte, ProofLen)
	for i := range proof {
		proof[i] = 0xa0 + byte(i)
	}
	refusal := AppendRefusal(nil, "MTE_SESSION_UNKNOWN", proof)
	for _, tc := range []struct {
		name    string
		got     []byte
		want    string
		payload []byte
		accept  uint
	}{
		{"request", append(AppendHeader(nil, Header{Type: TypeRequest, Length: uint32(len(frame)), ID: 1}), frame...), linkKAT.request, frame, fromClient},
		{"first fragment", AppendHeader(nil, Header{Type: TypeRequest, Flags: FlagMore, Length: MaxFragment, ID: 2}), linkKAT.fragmentFirst, nil, fromClient},
		{"last fragment", AppendHeader(nil, Header{Type: TypeRequest, Length: 5, ID: 2}), linkKAT.fragmentLast, nil, fromClient},
		{"refusal", append(AppendHeader(nil, Header{Type: TypeRefusal, Length: uint32(len(refusal)), ID: 3}), refusal...), linkKAT.refusal, nil, fromServer},
		{"ping", AppendHeader(nil, Header{Type: TypePing, ID: 7}), linkKAT.ping, nil, fromClient},
		{"pong", AppendHeader(nil, Header{Type: TypePong, ID: 7}), linkKAT.pong, nil, fromServer},
		{"goaway", AppendHeader(nil, Header{Type: TypeGoAway}), linkKAT.goAway, nil, fromServer},
	} {
		want := append(unhex(t, tc.want), tc.payload...)
		if !bytes.Equal(tc.got, want) {
			t.Errorf("%s:\n got %x\nwant %x", tc.name, tc.got, want)
		}
		if _, err := ParseHeader(want, tc.accept); err != nil {
			t.Errorf("%s: the vector does not parse: %v", tc.name, err)
		}
	}
}
