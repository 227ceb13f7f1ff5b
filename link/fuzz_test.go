package link

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/fuzzseed"
)

// The fuzz target for the link's decoder. Seeds live in
// testdata/fuzz/FuzzDecode; regenerate them with
//
//	PQRELAY_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./link

// seedStreams are valid byte streams toward B (toA false) and toward A.
func seedStreams() (toB, toA [][]byte) {
	big := bytes.Repeat([]byte{'b'}, MaxFragment+10)
	frag := AppendHeader(nil, Header{Type: TypeRequest, Flags: FlagMore, Length: MaxFragment, ID: 2})
	frag = append(frag, big[:MaxFragment]...)
	frag = AppendHeader(frag, Header{Type: TypeRequest, Length: 10, ID: 2})
	frag = append(frag, big[MaxFragment:]...)
	toB = [][]byte{
		append(AppendHeader(nil, Header{Type: TypeRequest, Length: 5, ID: 1}), "hello"...),
		frag,
		AppendHeader(nil, Header{Type: TypePing, ID: 9}),
	}
	refusal := AppendRefusal(nil, "MTE_SESSION_UNKNOWN", bytes.Repeat([]byte{1}, ProofLen))
	toA = [][]byte{
		append(AppendHeader(nil, Header{Type: TypeResponse, Length: 2, ID: 1}), "ok"...),
		append(AppendHeader(nil, Header{Type: TypeRefusal, Length: uint32(len(refusal)), ID: 1}), refusal...),
		append(AppendHeader(nil, Header{Type: TypePong, ID: 9}), AppendHeader(nil, Header{Type: TypeGoAway})...),
	}
	return toB, toA
}

// FuzzDecode: any byte stream, fed to the real readers of both sides,
// yields whole messages or ends the connection, and never panics, hangs
// or leaks; whatever ParseHeader and ParseRefusal accept re-encodes to the
// same bytes.
func FuzzDecode(f *testing.F) {
	toB, toA := seedStreams()
	for _, s := range toB {
		f.Add(s, false)
	}
	for _, s := range toA {
		f.Add(s, true)
	}
	srv := &Server{MaxMessage: 4 * MaxFragment}
	f.Cleanup(func() { srv.Shutdown(f.Context()) })
	f.Fuzz(func(t *testing.T, stream []byte, toClient bool) {
		accept := uint(fromClient)
		if toClient {
			accept = fromServer
		}
		for rest := stream; len(rest) >= HeaderLen; {
			h, err := ParseHeader(rest, accept)
			if err != nil {
				if err != ErrProtocol {
					t.Fatalf("ParseHeader error %v", err)
				}
				break
			}
			if !bytes.Equal(AppendHeader(nil, h), rest[:HeaderLen]) {
				t.Fatalf("header %x re-encodes differently", rest[:HeaderLen])
			}
			rest = rest[HeaderLen:]
			if int(h.Length) > len(rest) {
				break
			}
			payload := rest[:h.Length]
			rest = rest[h.Length:]
			if h.Type == TypeRefusal {
				if code, proof, err := ParseRefusal(payload); err == nil &&
					!bytes.Equal(AppendRefusal(nil, string(code), proof), payload) {
					t.Fatalf("refusal %x re-encodes differently", payload)
				}
			}
		}

		conn := &streamConn{r: bytes.NewReader(stream)}
		if toClient {
			c := newConn(conn, bufio.NewReaderSize(conn, readBufferSize), ClientConfig{MaxMessage: 4 * MaxFragment})
			c.mu.Lock()
			for id := uint64(0); id < 4; id++ {
				// Ids 0 to 3 are "in flight", so answers to them are read.
				a := acquireAnswer()
				a.id, a.abandoned = id, true
				a.refs.Store(1)
				c.pending[id] = a
				c.inflight.Add(1)
			}
			c.mu.Unlock()
			<-c.Done()
			return
		}
		srv.ServeConn(conn, echo)
	})
}

// streamConn is a connection whose peer sends stream and then closes, and
// that swallows what is written to it.
type streamConn struct {
	r *bytes.Reader
}

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if err == io.EOF {
		err = net.ErrClosed
	}
	return n, err
}
func (c *streamConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *streamConn) Close() error                     { return nil }
func (c *streamConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *streamConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *streamConn) SetDeadline(time.Time) error      { return nil }
func (c *streamConn) SetReadDeadline(time.Time) error  { return nil }
func (c *streamConn) SetWriteDeadline(time.Time) error { return nil }

// TestWriteFuzzSeeds writes the seed corpus under testdata/fuzz. Guarded by
// an env var: it writes into the source tree.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("PQRELAY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PQRELAY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	toB, toA := seedStreams()
	for i, s := range toB {
		fuzzseed.Write(t, filepath.Join("testdata", "fuzz", "FuzzDecode", "to-b-"+string(rune('0'+i))), s, false)
	}
	for i, s := range toA {
		fuzzseed.Write(t, filepath.Join("testdata", "fuzz", "FuzzDecode", "to-a-"+string(rune('0'+i))), s, true)
	}
}
