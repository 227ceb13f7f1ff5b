package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"
)

// Known-answer vectors of docs/PROTOCOL.md §9.1. The deterministic ones were
// cross-checked with an independent implementation
// (testdata/kat_crosscheck.py, Python and pyca/cryptography).
var sessionKAT = struct {
	// NewSecrets(katSecret)
	psk, clientIDKey, atRestKey string
	// NewClientID(katID = 00 01 … 0f, katNow = 2025-01-01T00:00:00Z)
	clientID, clientIDText string
	// deriveKeys(shared = 80 81 … 9f, request = "request", response = "response")
	transcriptHash string
	keys           [numKeys]string
	// SealSession(testSession(katID, katNow, katNow+1h)) once; the nonce is
	// random, so the vector checks that this blob opens, not that a new seal
	// reproduces it.
	sealedSession string
}{
	psk:            "ee68c3f3d1a9da5598edf62eca92268dccf90311f43fb698bdd8e29358e983ff",
	clientIDKey:    "c3086debc292c03669744dae17ed4b4b9f3334a1d362723f4cdbd3e26051c901",
	atRestKey:      "9e841cb38d862c5d75a97dbe785af05dd144f93b2eb9e7b78a21ad58b4a50637",
	clientID:       "000102030405060708090a0b0c0d0e0f" + "0000000067748580" + "c1acf0e0521290b7ed09e633cc239215",
	clientIDText:   "AAECAwQFBgcICQoLDA0ODwAAAABndIWAwazw4FISkLftCeYzzCOSFQ",
	transcriptHash: "5a970de9a15cc56fdfdcb8a343e2e538a544ee6716872e916eb362b91a208057",
	keys: [numKeys]string{
		"16ea4e3603a51dba17733a6a715cbccba0dfea64f71af45ad4521f5be4e90bab", // request MKE
		"9ed2172d1d0942fdef605599d0f30dff62a98fccc22a9a90cb34c4bf09986df8", // request MTE
		"90f21b5e86cac4d311e2f086fc91680fb03b2594172c2bf6a4e3ff66cf64ec30", // response MKE
		"5c6da4649adf74b297e8dda530a5fff4d706f0a92f760afa092088186ba6a00d", // response MTE
	},
	sealedSession: "a94f3b3610c8f8750aea1115" + // nonce
		"98384ae09d3f13eddbdf48aae438bb38336f73e3222b305308537960b81991359a7c9e5631cb35ba9fe4ac41927a914f" +
		"6151e08d914c104e3f70a726172d68769effedcb005963a49170ff543dacbace069d851952037cc8c0605420d9b35a9f" +
		"c1c9f66016ca8115fd7d33ce36dfafff35ff87e7f5b3018dd8577b1318be14e55addcb837ce2fbf574d3b764aa1ac0c5" +
		"d8515fe048c99021a250f232cb3a4f9eef942ce3ce6bd7afd907cb8534b763fffa7403abd45dc383c2b9a9d9caa558b7" +
		"3d5cc8c43c2e5f4da733",
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in a vector: %v", err)
	}
	return b
}

func seqBytes(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestKnownAnswers(t *testing.T) {
	t.Parallel()
	check := func(name string, got []byte, want string) {
		t.Helper()
		if w := unhex(t, want); !bytes.Equal(got, w) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, w)
		}
	}
	s := mustSecrets(t, katSecret)
	check("psk", s.psk[:], sessionKAT.psk)
	check("client id key", s.clientID[:], sessionKAT.clientIDKey)
	check("at-rest key", s.atRest[:], sessionKAT.atRestKey)

	c := s.NewClientID(katID, katNow)
	check("client id", c[:], sessionKAT.clientID)
	if got := string(c.AppendText(nil)); got != sessionKAT.clientIDText {
		t.Errorf("client id text %q, want %q", got, sessionKAT.clientIDText)
	}

	th := sha256.Sum256([]byte("requestresponse"))
	check("transcript hash", th[:], sessionKAT.transcriptHash)
	keys, err := s.deriveKeys(seqBytes(0x80, 32), []byte("request"), []byte("response"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		check(keyLabels[i], keys[i][:], sessionKAT.keys[i])
	}

	want := testSession(t, katID, katNow, katNow.Add(time.Hour))
	got, err := s.OpenSession(katID, unhex(t, sessionKAT.sealedSession))
	if err != nil {
		t.Fatalf("the sealed-session vector does not open: %v", err)
	}
	if got.ClientID != want.ClientID || got.Suite != want.Suite || got.keys != want.keys ||
		!got.Created.Equal(want.Created) || !got.Expires.Equal(want.Expires) {
		t.Errorf("the sealed-session vector opens to %+v", got)
	}
}

// pairingKAT is a whole pairing at katNow with crypto/rand replaced by
// testing/cryptotest.SetGlobalRandom(t, 1). How the standard library draws
// randomness for key generation and encapsulation is not specified and may
// change between Go releases, so the vector is pinned to go1.26; it records
// SHA-256 digests rather than the 2.4 KB of messages.
var pairingKAT = []struct {
	suite                   Suite
	request, response, keys string // SHA-256 of request, response, and of the 4 keys in order
	clientID                string
}{
	{
		suite:    SuiteMLKEM768X25519,
		request:  "d6d19c37c9de09b461b9af31598ab6648acd53529ebc3d3584c9bd338ec284cc",
		response: "c36b558d5e300b3bc34c760806ab8ec4f2a5e2d5135211ece57fb10ae741a382",
		keys:     "5afd5c357ae05bdc89eac6c7a040f228f4e37b1d51cc427559115f386f21fdea",
		clientID: "3a311de85bcdb3207b7c831d1c902015" + "0000000067748580" + "8158117558ac0a55c961e69525b7f1a2",
	},
	{
		suite:    SuiteMLKEM768P256,
		request:  "8bddda0efcaaa70c35cdc5b4d272bd3c64c84ccdf0302177ac400d6b7d4e0a88",
		response: "cd59b736cd91c9623655503412b21f40f92c6246c4a024c550aaa1311247352a",
		keys:     "393289916f94820cc1989512c8b9fd93b4d85a59f296a4f2070d273bb28158d0",
		clientID: "3a311de85bcdb3207b7c831d1c902015" + "0000000067748580" + "8158117558ac0a55c961e69525b7f1a2",
	},
}

// TestPairingKnownAnswer is not parallel: SetGlobalRandom replaces the
// process's randomness for the duration of the test.
func TestPairingKnownAnswer(t *testing.T) {
	if v := runtime.Version(); !strings.HasPrefix(v, "go1.26") {
		t.Skipf("the pairing vector is pinned to go1.26's use of randomness; this is %s", v)
	}
	s := mustSecrets(t, katSecret)
	for _, v := range pairingKAT {
		if !suiteAvailable(v.suite) {
			continue
		}
		t.Run(v.suite.String(), func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 1)
			out, in, req, resp := pairAt(t, s, s, v.suite, katNow)
			h := sha256.New()
			for _, k := range in.keys {
				h.Write(k[:])
			}
			reqSum, respSum := sha256.Sum256(req), sha256.Sum256(resp)
			for _, c := range []struct {
				name string
				got  []byte
				want string
			}{
				{"SHA-256(request)", reqSum[:], v.request},
				{"SHA-256(response)", respSum[:], v.response},
				{"SHA-256(keys)", h.Sum(nil), v.keys},
				{"client id", in.ClientID[:], v.clientID},
			} {
				if w := unhex(t, c.want); !bytes.Equal(c.got, w) {
					t.Errorf("%s:\n got %x\nwant %x", c.name, c.got, w)
				}
			}
			if out.keys != in.keys {
				t.Error("the two sides derived different keys")
			}
		})
	}
}
