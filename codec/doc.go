// Package codec is pqrelay's wire format between two relays: the sealed frame
// (a 20-byte clear header and an AES-256-GCM ciphertext) and the envelope
// inside it (method, URI, headers and body of a request, or status, headers
// and body of a response). docs/PROTOCOL.md specifies every byte.
//
// The package knows nothing about sessions, HTTP servers or clocks: callers
// hand it keys, counters and timestamps. It must never return plaintext from a
// frame that did not authenticate, and every decoder checks lengths before it
// reads, so hostile input yields ErrFrame or ErrEnvelope, never a panic.
// Programmer mistakes (a key of the wrong length) do panic.
package codec
