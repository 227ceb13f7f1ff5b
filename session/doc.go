// Package session is pqrelay's relay-to-relay key management: the pairing
// handshake (a hybrid post-quantum KEM authenticated by a PSK derived from
// CLIENT_ID_SECRET), the signed client id, session keys and their lifetime,
// the replay window, and the Store that holds inbound sessions.
//
// It must never expose key material: not in errors, not in String methods,
// not at rest (stores hold sessions sealed under a key derived from
// CLIENT_ID_SECRET). Handshake messages that do not verify are refused with
// one sentinel error that tells the peer nothing.
package session
