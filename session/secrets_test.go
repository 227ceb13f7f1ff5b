package session

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestNewSecrets(t *testing.T) {
	t.Parallel()
	if _, err := NewSecrets(strings.Repeat("x", MinSecretLen-1)); err != ErrShortSecret {
		t.Errorf("31-character secret: %v, want ErrShortSecret", err)
	}
	if _, err := NewSecrets(""); err != ErrShortSecret {
		t.Errorf("empty secret: %v, want ErrShortSecret", err)
	}
	a := mustSecrets(t, strings.Repeat("x", MinSecretLen))
	b := mustSecrets(t, strings.Repeat("x", MinSecretLen))
	c := mustSecrets(t, strings.Repeat("x", MinSecretLen-1)+"y")
	if *a != *b {
		t.Error("the same secret derives different keys")
	}
	if a.psk == c.psk || a.clientID == c.clientID || a.atRest == c.atRest {
		t.Error("different secrets share a derived key")
	}
	if a.psk == a.clientID || a.psk == a.atRest || a.clientID == a.atRest {
		t.Error("two jobs share one key")
	}
}

// TestSecretsRedacted: printing Secrets with a string verb never shows key
// material (docs/ARCHITECTURE.md §4.4: secrets never appear in logs).
func TestSecretsRedacted(t *testing.T) {
	t.Parallel()
	s := mustSecrets(t, katSecret)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, s)
		for _, k := range [][32]byte{s.psk, s.clientID, s.atRest} {
			if leaks(out, k[:]) {
				t.Errorf("fmt %s of Secrets shows key material: %s", verb, out)
			}
		}
	}
}

// leaks reports whether out shows key in any of the forms fmt prints bytes.
func leaks(out string, key []byte) bool {
	for _, form := range []string{string(key), fmt.Sprintf("%x", key), fmt.Sprintf("%X", key), fmt.Sprint(key), fmt.Sprintf("%x", key[:8])} {
		if strings.Contains(out, form) {
			return true
		}
	}
	return bytes.Contains([]byte(out), key[:8])
}
