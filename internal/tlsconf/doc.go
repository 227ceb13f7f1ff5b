// Package tlsconf turns the relay's TLS variables into *tls.Config values:
// the listener's (TLS_*), and the client sides toward the peer relay
// (PEER_*), the API (UPSTREAM_*) and Redis (REDIS_*). It validates every
// file once at start-up, each error one line naming the variable, and
// re-reads the files when they change on disk or when Reload is called
// (SIGHUP): new handshakes use the new certificate, established connections
// are untouched, and a broken new file is refused with one log line while
// the previous certificate keeps serving.
//
// Key exchange is Go's default, which offers and prefers the hybrid
// X25519MLKEM768 group in TLS 1.3 and, with GODEBUG=fips140=on, keeps to
// the FIPS-approved groups; README.md lists the suites and groups.
//
// It must never weaken verification: a client side that has no CA file
// verifies against the system roots, never skips the check; and it must
// never log a private key or file contents.
package tlsconf
