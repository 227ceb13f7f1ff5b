package upsign_test

import (
	"crypto/ed25519"
	"net/http"

	"github.com/yaronf/httpsign"
)

// An API behind relay B (UPSTREAM_SIGNING=rfc9421, SIGNING_ALGORITHM=ed25519,
// SIGNING_KEY_ID=relay-b) checks each request with yaronf/httpsign before
// serving it: the signature (label "pqrelay") must cover the method, the
// target URI, the date and, with a body, the Content-Digest, which must
// match the body.
func Example_verifyRFC9421() {
	var relayKey ed25519.PublicKey // the public half of SIGNING_KEY_FILE
	verified := func(r *http.Request) error {
		covered := httpsign.Headers("@method", "@target-uri", "date")
		if r.ContentLength != 0 {
			covered.AddHeader("content-digest")
		}
		v, err := httpsign.NewEd25519Verifier(relayKey,
			httpsign.NewVerifyConfig().SetKeyID("relay-b").SetAllowedAlgs([]string{"ed25519"}), covered)
		if err == nil {
			err = httpsign.VerifyRequest("pqrelay", *v, r)
		}
		if err == nil && r.ContentLength != 0 {
			err = httpsign.ValidateContentDigestHeader(r.Header.Values("Content-Digest"), &r.Body, []string{"sha-256"})
		}
		return err
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	http.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if verified(r) != nil {
			http.Error(w, "not signed by our relay", http.StatusUnauthorized)
			return
		}
		api.ServeHTTP(w, r)
	}))
}
