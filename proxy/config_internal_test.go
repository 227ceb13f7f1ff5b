package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// TestRandomSecretsAccepted: the CLIENT_ID_SECRET and OUTBOUND_TOKEN checks
// refuse predictable values, never random ones of the shortest accepted
// length, hex or base64 (a false refusal would stop a correctly configured
// relay from starting).
func TestRandomSecretsAccepted(t *testing.T) {
	t.Parallel()
	raw := make([]byte, 24)
	for i := 0; i < 100_000; i++ {
		rand.Read(raw)
		secrets := []string{hex.EncodeToString(raw[:16]), base64.RawURLEncoding.EncodeToString(raw)[:32]}
		for _, s := range secrets {
			if weakSecret(s) {
				t.Fatalf("random secret %q refused", s)
			}
		}
		if token := hex.EncodeToString(raw[:8]); periodic(token) {
			t.Fatalf("random token %q refused", token)
		}
	}
}
