// Package link is the relay link: a few long-lived connections from an
// outbound relay (A) to an inbound relay (B), each carrying many sealed
// frames of one session at once, answered out of order and written in
// batches, so that the hop between the relays costs one write and one read
// per batch rather than per request. docs/PROTOCOL.md §10 specifies every
// byte.
//
// The package moves opaque messages: it never opens, seals or inspects the
// frames it carries, and knows nothing of sessions or HTTP beyond the
// upgrade that starts a link. It must never let one peer grow memory
// without bound (every length, every queue and the number of messages in
// flight per connection are bounded), never block one message behind
// another's upstream call, and never leave a goroutine behind a closed
// connection. A byte stream that breaks the format ends the connection with
// ErrProtocol; the peer learns nothing more.
package link
