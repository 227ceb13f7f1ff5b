package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

var katID = ID{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}

// refClientIDMAC is the client id MAC of docs/PROTOCOL.md §3.3 written from
// the spec: HMAC-SHA256(clientIDKey, label || id || issuedAt)[:16].
func refClientIDMAC(key []byte, id ID, issued int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pqrelay v1 client id"))
	m.Write(id[:])
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(issued)))
	return m.Sum(nil)[:16]
}

func TestClientIDLayout(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	c := s.NewClientID(katID, katNow.Add(1500*time.Millisecond))
	if c.ID() != katID {
		t.Errorf("ID() = %x, want %x", c.ID(), katID)
	}
	if !c.IssuedAt().Equal(katNow.Add(time.Second)) {
		t.Errorf("IssuedAt = %v, want %v (whole seconds)", c.IssuedAt(), katNow.Add(time.Second))
	}
	if got := binary.BigEndian.Uint64(c[16:24]); got != uint64(katNow.Unix()+1) {
		t.Errorf("issuedAt field = %d", got)
	}
	if want := refClientIDMAC(s.clientID[:], katID, katNow.Unix()+1); !bytes.Equal(c[24:], want) {
		t.Errorf("MAC %x, spec says %x", c[24:], want)
	}
	text := c.AppendText([]byte("x-mte-client-id: "))
	if !bytes.HasPrefix(text, []byte("x-mte-client-id: ")) || len(text)-17 != ClientIDChars {
		t.Errorf("AppendText = %q", text)
	}
	back, err := ParseClientID(text[17:])
	if err != nil || back != c {
		t.Errorf("ParseClientID(AppendText) = %x, %v", back, err)
	}
	if err := s.VerifyClientID(&back); err != nil {
		t.Errorf("VerifyClientID = %v", err)
	}
	if !c.Equal(&back) {
		t.Error("Equal is false for equal ids")
	}
	other := c
	other[39] ^= 1
	if c.Equal(&other) {
		t.Error("Equal is true for different ids")
	}
}

// TestClientIDForgery is docs/PROTOCOL.md §1.2, property 3: a client id verifies only if a
// relay holding the same CLIENT_ID_SECRET issued it, unchanged.
func TestClientIDForgery(t *testing.T) {
	t.Parallel()
	s, o := mustSecrets(t, katSecret), mustSecrets(t, otherSecret)
	c := s.NewClientID(katID, katNow)
	for off := range ClientIDLen {
		f := c
		f[off] ^= 0x01
		if err := s.VerifyClientID(&f); err != ErrClientID {
			t.Fatalf("client id with byte %d flipped: %v, want ErrClientID", off, err)
		}
	}
	if err := o.VerifyClientID(&c); err != ErrClientID {
		t.Errorf("another secret's relay accepted the id: %v", err)
	}
	// The MAC of one id grafted onto another id or time.
	d := s.NewClientID(ID{1}, katNow)
	graft := d
	copy(graft[24:], c[24:])
	if err := s.VerifyClientID(&graft); err != ErrClientID {
		t.Errorf("grafted MAC accepted: %v", err)
	}
	later := s.NewClientID(katID, katNow.Add(time.Second))
	copy(later[24:], c[24:])
	if err := s.VerifyClientID(&later); err != ErrClientID {
		t.Errorf("MAC moved to another issue time accepted: %v", err)
	}
	var zero ClientID
	if err := s.VerifyClientID(&zero); err != ErrClientID {
		t.Errorf("all-zero id accepted: %v", err)
	}
}

func TestParseClientIDRefuses(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	c := s.NewClientID(katID, katNow)
	good := string(c.AppendText(nil))
	// The last of 54 characters carries the id's final 2 bits and 4 unused
	// bits, which must be zero. The same 40 bytes with unused bits set would
	// be a second spelling of the id; it is refused so that each id has one
	// header form.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good[53])
	if last%16 != 0 {
		t.Fatalf("AppendText's last character %q has unused bits set", good[53:])
	}
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"53 chars", good[:53]},
		{"55 chars", good + "A"},
		{"padded", good + "=="},
		{"standard alphabet +", good[:10] + "+" + good[11:]},
		{"standard alphabet /", good[:10] + "/" + good[11:]},
		{"padding inside", good[:52] + "=="},
		{"space", good[:10] + " " + good[11:]},
		{"newline", good[:10] + "\n" + good[11:]},
		{"non-canonical last char", good[:53] + string(alphabet[last|1])},
		{"non-canonical last char 2", good[:53] + string(alphabet[last|8])},
		{"72 chars (hex)", strings.Repeat("ab", 36)},
	}
	for _, tt := range tests {
		if got, err := ParseClientID([]byte(tt.text)); err != ErrClientID || got != (ClientID{}) {
			t.Errorf("%s: ParseClientID(%q) = %x, %v; want ErrClientID", tt.name, tt.text, got, err)
		}
	}
	if _, err := ParseClientID([]byte(good)); err != nil {
		t.Fatalf("the canonical form is refused: %v", err)
	}
}
