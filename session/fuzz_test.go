package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/fuzzseed"
)

// Fuzz targets for every decoder of the package (docs/ARCHITECTURE.md §4.2). Seed corpora
// in testdata/fuzz/<Target>/ hold real messages; regenerate them with
//
//	PQRELAY_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./session
//
// The pairing targets take a resign flag: when set, the target replaces the
// input's MAC with a valid one before consuming it, so that the fuzzer
// explores the checks and the KEM decoding behind the MAC, which a random
// input never reaches. Each target must run clean for ten seconds (a
// fuzz-short run). Minimizing each new 1.2 KB input the pairing targets
// find can use the whole default budget of a minute, during which the run
// reports no progress; a short run should cap it:
//
//	go test -run '^$' -fuzz '^FuzzConsumePairRequest$' -fuzztime 10s -fuzzminimizetime 2s ./session

// fuzzIKM is the seed of the fixed initiators' KEM keys.
func fuzzIKM(suite Suite) []byte {
	return []byte(fmt.Sprintf("pqrelay fuzz initiator %d 0123456789", suite))
}

// fuzzInitiators are deterministic, so that committed responses verify.
func fuzzInitiators(t testing.TB, s *Secrets) map[Suite]*Initiator {
	m := map[Suite]*Initiator{}
	for _, suite := range allSuites() {
		m[suite] = fixedInitiator(t, s, suite, katNow, fuzzIKM(suite))
	}
	return m
}

func FuzzConsumePairRequest(f *testing.F) {
	s := mustSecrets(f, katSecret)
	initiators := fuzzInitiators(f, s)
	genuine := map[string]bool{}
	for _, i := range initiators {
		genuine[string(i.Request())] = true
		f.Add(i.Request(), false)
		f.Add(i.Request(), true)
	}
	f.Fuzz(func(t *testing.T, req []byte, resign bool) {
		if resign && len(req) >= macLen {
			req = remac(s, req, labelPairRequest, nil)
		}
		resp, sess, err := s.ConsumePairRequest(req, katNow, DefaultLifetime)
		if err != nil {
			if !errors.Is(err, ErrPair) || resp != nil || sess != nil {
				t.Fatalf("ConsumePairRequest = %v, %v, %v; want ErrPair alone", resp, sess, err)
			}
			return
		}
		if !resign && !genuine[string(req)] {
			t.Fatalf("a request with a MAC the test never made was accepted: %x", req)
		}
		suite := Suite(req[1])
		if len(req) != PairRequestLen(suite) || len(resp) != PairResponseLen(suite) ||
			!bytes.Equal(resp[:4], req[:4]) || sess.Suite != suite {
			t.Fatalf("accepted %d-byte request of suite %d: response %d bytes %x, session %v", len(req), suite, len(resp), resp[:4], sess)
		}
		if err := s.VerifyClientID(&sess.ClientID); err != nil || !bytes.Equal(resp[12:52], sess.ClientID[:]) {
			t.Fatal("the issued client id does not verify or is not the one sent")
		}
	})
}

func FuzzConsumePairResponse(f *testing.F) {
	s := mustSecrets(f, katSecret)
	initiators := fuzzInitiators(f, s)
	for _, i := range initiators {
		resp, _, err := s.ConsumePairRequest(i.Request(), katNow, DefaultLifetime)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp, false)
		f.Add(resp, true)
	}
	f.Fuzz(func(t *testing.T, resp []byte, resign bool) {
		i := initiators[allSuites()[0]]
		if len(resp) > 1 && initiators[Suite(resp[1])] != nil {
			i = initiators[Suite(resp[1])]
		}
		if resign && len(resp) >= macLen {
			resp = remac(s, resp, labelPairResponse, i.Request())
		}
		sess, err := i.ConsumePairResponse(resp, katNow)
		if err != nil {
			if err != ErrPair || sess != nil {
				t.Fatalf("ConsumePairResponse = %v, %v; want ErrPair alone", sess, err)
			}
			return
		}
		expires := time.UnixMilli(int64(binary.BigEndian.Uint64(resp[4:12])))
		if len(resp) != PairResponseLen(i.suite) || sess.Suite != i.suite ||
			!bytes.Equal(sess.ClientID[:], resp[12:52]) || !sess.Expires.Equal(expires) {
			t.Fatalf("accepted response does not match its session: %v", sess)
		}
	})
}

func FuzzParseClientID(f *testing.F) {
	s := mustSecrets(f, katSecret)
	c := s.NewClientID(katID, katNow)
	good := c.AppendText(nil)
	f.Add(good)
	f.Add(good[:53])
	f.Add(append(bytes.Clone(good[:53]), 'B'))
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := ParseClientID(text)
		if err != nil {
			if err != ErrClientID || c != (ClientID{}) {
				t.Fatalf("ParseClientID = %x, %v; want zero, ErrClientID", c, err)
			}
			return
		}
		// One id, one spelling.
		if got := c.AppendText(nil); !bytes.Equal(got, text) {
			t.Fatalf("ParseClientID(%q) re-encodes as %q", text, got)
		}
		// The signature check agrees with the spec's MAC.
		want := bytes.Equal(c[24:], refClientIDMAC(s.clientID[:], c.ID(), int64(binary.BigEndian.Uint64(c[16:24]))))
		if got := s.VerifyClientID(&c) == nil; got != want {
			t.Fatalf("VerifyClientID(%x) = %v, the spec says %v", c, got, want)
		}
	})
}

// FuzzOpenSession: with reseal false the input is a blob from the store;
// with reseal true it is the state plaintext, sealed by the test under the
// at-rest key, to explore the checks behind the AEAD.
func FuzzOpenSession(f *testing.F) {
	s := mustSecrets(f, katSecret)
	sess := testSession(f, katID, katNow, katNow.Add(time.Hour))
	blob := s.SealSession(sess)
	state, err := s.atRestAEAD().Open(nil, blob[:atRestNonceLen], blob[atRestNonceLen:], atRestAD(katID))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob, false)
	f.Add(state, true)
	f.Fuzz(func(t *testing.T, in []byte, reseal bool) {
		if reseal {
			in = sealState(s, katID, in)
		}
		got, err := s.OpenSession(katID, in)
		if err != nil {
			if err != ErrSealedSession || got != nil {
				t.Fatalf("OpenSession = %v, %v; want ErrSealedSession alone", got, err)
			}
			return
		}
		if got.ClientID.ID() != katID || (got.Suite != SuiteMLKEM768X25519 && got.Suite != SuiteMLKEM768P256) {
			t.Fatalf("opened a session for id %x, suite %d", got.ClientID.ID(), got.Suite)
		}
		again, err := s.OpenSession(katID, s.SealSession(got))
		if err != nil || again.keys != got.keys || again.ClientID != got.ClientID ||
			!again.Created.Equal(got.Created) || !again.Expires.Equal(got.Expires) {
			t.Fatalf("re-sealing an opened session does not round-trip: %v", err)
		}
	})
}

// TestFuzzSeedsAreReal: the committed pairing seeds verify, so the fuzzer
// starts from messages that reach the KEM, not only from MAC failures.
func TestFuzzSeedsAreReal(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	initiators := fuzzInitiators(t, s)
	for suite, i := range initiators {
		req := readSeed(t, filepath.Join("testdata", "fuzz", "FuzzConsumePairRequest", suite.String()))
		if _, _, err := s.ConsumePairRequest(req, katNow, DefaultLifetime); err != nil {
			t.Errorf("%v request seed: %v", suite, err)
		}
		resp := readSeed(t, filepath.Join("testdata", "fuzz", "FuzzConsumePairResponse", suite.String()))
		if _, err := i.ConsumePairResponse(resp, katNow); err != nil {
			t.Errorf("%v response seed: %v", suite, err)
		}
	}
	blob := readSeed(t, filepath.Join("testdata", "fuzz", "FuzzOpenSession", "blob"))
	if _, err := s.OpenSession(katID, blob); err != nil {
		t.Errorf("sealed-session seed: %v", err)
	}
}

// readSeed returns the first []byte argument of a corpus file.
func readSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if q, ok := strings.CutPrefix(line, "[]byte("); ok {
			v, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return []byte(v)
		}
	}
	t.Fatalf("%s: no []byte argument", path)
	return nil
}

// TestWriteFuzzSeeds writes the seed corpora under testdata/fuzz. It writes
// into the source tree, so it runs only when asked.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("PQRELAY_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set PQRELAY_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	s := mustSecrets(t, katSecret)
	write := func(target, name string, args ...any) {
		fuzzseed.Write(t, filepath.Join("testdata", "fuzz", target, name), args...)
	}
	for suite, i := range fuzzInitiators(t, s) {
		write("FuzzConsumePairRequest", suite.String(), i.Request(), false)
		write("FuzzConsumePairRequest", suite.String()+"-resign", i.Request(), true)
		resp, _, err := s.ConsumePairRequest(i.Request(), katNow, DefaultLifetime)
		if err != nil {
			t.Fatal(err)
		}
		write("FuzzConsumePairResponse", suite.String(), resp, false)
		write("FuzzConsumePairResponse", suite.String()+"-resign", resp, true)
	}
	c := s.NewClientID(katID, katNow)
	write("FuzzParseClientID", "kat", c.AppendText(nil))
	write("FuzzParseClientID", "non-canonical", append(c.AppendText(nil)[:53], 'R'))
	sess := testSession(t, katID, katNow, katNow.Add(time.Hour))
	blob := s.SealSession(sess)
	write("FuzzOpenSession", "blob", blob, false)
	state, err := s.atRestAEAD().Open(nil, blob[:atRestNonceLen], blob[atRestNonceLen:], atRestAD(katID))
	if err != nil {
		t.Fatal(err)
	}
	write("FuzzOpenSession", "state", state, true)
}
