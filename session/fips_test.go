package session

import (
	"crypto/fips140"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/codec"
)

// FIPS mode (docs/PROTOCOL.md §1.2, property 9). GODEBUG=fips140 is read once at start-up, so
// TestFIPS re-executes this test binary with fips140=on and runs only
// TestFIPSChild there. The parent hands the child an X25519 PairRequest and
// sealed session, made outside FIPS mode, through files.

const fipsChildEnv = "PQRELAY_FIPS_CHILD_DATA"

func TestFIPS(t *testing.T) {
	t.Parallel()
	if fips140.Enabled() {
		t.Skip("already in FIPS mode: TestFIPSChild's checks apply to the whole run")
	}
	dir := t.TempDir()
	s := mustSecrets(t, katSecret)
	now := time.Now()
	i, err := s.CreatePairRequest(SuiteMLKEM768X25519, now)
	if err != nil {
		t.Fatal(err)
	}
	_, x25519, _, _ := pairAt(t, s, s, SuiteMLKEM768X25519, now)
	_, p256, _, _ := pairAt(t, s, s, SuiteMLKEM768P256, now)
	files := map[string][]byte{
		"x25519-request": i.Request(),
		"x25519-session": s.SealSession(x25519),
		"x25519-id":      x25519.ClientID[:],
		"p256-session":   s.SealSession(p256),
		"p256-id":        p256.ClientID[:],
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFIPSChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=on", fipsChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestFIPSChild") {
		t.Fatalf("FIPS child failed (%v):\n%s", err, out)
	}
}

func TestFIPSChild(t *testing.T) {
	dir := os.Getenv(fipsChildEnv)
	if dir == "" {
		t.Skip("run by TestFIPS in a child process with GODEBUG=fips140=on")
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !fips140.Enabled() {
		t.Fatal("GODEBUG=fips140=on did not enable FIPS mode")
	}
	if got := DefaultSuite(); got != SuiteMLKEM768P256 {
		t.Fatalf("DefaultSuite() = %v in FIPS mode, want MLKEM768-P256", got)
	}

	// Pairing and both encode types work end to end on the P-256 hybrid.
	s := mustSecrets(t, katSecret)
	now := time.Now()
	out, in, _, _ := pairAt(t, s, s, DefaultSuite(), now)
	for _, mode := range []uint8{codec.ModeMKE, codec.ModeMTE} {
		exchange(t, out, in, mode)
	}
	p256, err := s.OpenSession(ID(read("p256-id")), read("p256-session"))
	if err != nil {
		t.Fatalf("a P-256 session sealed outside FIPS mode does not open: %v", err)
	}
	if p256.Suite != SuiteMLKEM768P256 {
		t.Errorf("opened suite %v", p256.Suite)
	}

	// X25519 is not FIPS-approved: refused to offer, to answer and to load.
	if _, err := s.CreatePairRequest(SuiteMLKEM768X25519, now); err != ErrPair {
		t.Errorf("CreatePairRequest(X25519) = %v, want ErrPair", err)
	}
	if _, _, err := s.ConsumePairRequest(read("x25519-request"), now, DefaultLifetime); !errors.Is(err, ErrPair) {
		t.Errorf("an X25519 PairRequest was answered in FIPS mode: %v", err)
	}
	if _, err := s.OpenSession(ID(read("x25519-id")), read("x25519-session")); err != ErrSealedSession {
		t.Errorf("an X25519 session was loaded in FIPS mode: %v", err)
	}
}
