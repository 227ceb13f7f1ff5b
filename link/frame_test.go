package link

import (
	"bytes"
	"strings"
	"testing"
)

func hdr(typ, flags uint8, length uint32, id uint64) []byte {
	return AppendHeader(nil, Header{Type: typ, Flags: flags, Length: length, ID: id})
}

func TestParseHeader(t *testing.T) {
	t.Parallel()
	withReserved := hdr(TypeRequest, 0, 1, 1)
	withReserved[3] = 1
	for _, tc := range []struct {
		name   string
		b      []byte
		accept uint
		ok     bool
	}{
		{"request", hdr(TypeRequest, 0, 100, 7), fromClient, true},
		{"request, last fragment full", hdr(TypeRequest, 0, MaxFragment, 7), fromClient, true},
		{"request fragment", hdr(TypeRequest, FlagMore, MaxFragment, 7), fromClient, true},
		{"response", hdr(TypeResponse, 0, 1, 1<<63), fromServer, true},
		{"refusal", hdr(TypeRefusal, 0, 2, 9), fromServer, true},
		{"refusal with proof", hdr(TypeRefusal, 0, 1+MaxCodeLen+ProofLen, 9), fromServer, true},
		{"ping to B", hdr(TypePing, 0, 0, 5), fromClient, true},
		{"ping to A", hdr(TypePing, 0, 0, 5), fromServer, true},
		{"pong", hdr(TypePong, 0, 0, 5), fromServer, true},
		{"goaway", hdr(TypeGoAway, 0, 0, 0), fromServer, true},

		{"short", hdr(TypeRequest, 0, 1, 1)[:HeaderLen-1], fromClient, false},
		{"type 0", hdr(0, 0, 0, 0), fromClient | fromServer, false},
		{"type 7", hdr(7, 0, 0, 0), fromClient | fromServer, false},
		{"type 255", hdr(255, 0, 0, 0), fromClient | fromServer, false},
		{"response to B", hdr(TypeResponse, 0, 1, 1), fromClient, false},
		{"request to A", hdr(TypeRequest, 0, 1, 1), fromServer, false},
		{"goaway to B", hdr(TypeGoAway, 0, 0, 0), fromClient, false},
		{"reserved", withReserved, fromClient, false},
		{"empty message", hdr(TypeRequest, 0, 0, 1), fromClient, false},
		{"fragment too long", hdr(TypeRequest, 0, MaxFragment+1, 1), fromClient, false},
		{"length 2^32-1", hdr(TypeRequest, 0, 1<<32-1, 1), fromClient, false},
		{"short non-last fragment", hdr(TypeRequest, FlagMore, MaxFragment-1, 1), fromClient, false},
		{"unknown flag", hdr(TypeRequest, 2, 10, 1), fromClient, false},
		{"flag on refusal", hdr(TypeRefusal, FlagMore, 2, 1), fromServer, false},
		{"refusal too short", hdr(TypeRefusal, 0, 1, 1), fromServer, false},
		{"refusal too long", hdr(TypeRefusal, 0, 2+MaxCodeLen+ProofLen, 1), fromServer, false},
		{"ping with payload", hdr(TypePing, 0, 1, 1), fromClient, false},
		{"pong with flag", hdr(TypePong, FlagMore, 0, 1), fromClient, false},
		{"goaway with id", hdr(TypeGoAway, 0, 0, 1), fromServer, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHeader(tc.b, tc.accept)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseHeader(%x) = %+v, %v; want ok=%v", tc.b, h, err, tc.ok)
			}
			if err != nil && err != ErrProtocol {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			if err == nil && !bytes.Equal(AppendHeader(nil, h), tc.b) {
				t.Fatalf("header %+v re-encodes to %x, not %x", h, AppendHeader(nil, h), tc.b)
			}
		})
	}
}

func TestRefusal(t *testing.T) {
	t.Parallel()
	proof := bytes.Repeat([]byte{0xaa}, ProofLen)
	for _, tc := range []struct {
		code  string
		proof []byte
	}{
		{"MTE_FRAME_REJECTED", nil},
		{"MTE_SESSION_UNKNOWN", proof},
		{"X", nil},
		{strings.Repeat("A", MaxCodeLen), proof},
	} {
		b := AppendRefusal(nil, tc.code, tc.proof)
		code, p, err := ParseRefusal(b)
		if err != nil || string(code) != tc.code || !bytes.Equal(p, tc.proof) {
			t.Errorf("ParseRefusal(AppendRefusal(%q)) = %q, %x, %v", tc.code, code, p, err)
		}
	}
	for _, bad := range [][]byte{
		nil, {0}, {1}, {0, 'A'}, {2, 'A'}, {1, 'a'}, {1, ' '}, {1, 'A', 0},
		append([]byte{1, 'A'}, make([]byte, ProofLen-1)...),
		append([]byte{1, 'A'}, make([]byte, ProofLen+1)...),
		append([]byte{MaxCodeLen + 1}, strings.Repeat("A", MaxCodeLen+1)...),
	} {
		if _, _, err := ParseRefusal(bad); err != ErrProtocol {
			t.Errorf("ParseRefusal(%x) = %v, want ErrProtocol", bad, err)
		}
	}
	for _, code := range []string{"", "lower", "MTE-DASH", strings.Repeat("A", MaxCodeLen+1)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendRefusal(%q) did not panic", code)
				}
			}()
			AppendRefusal(nil, code, nil)
		}()
	}
}
