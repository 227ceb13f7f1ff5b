package link

import "time"

// Wire constants (docs/PROTOCOL.md §10). Changing any of them changes the
// protocol.
const (
	// HeaderLen is the length of a link frame's header.
	HeaderLen = 16
	// MaxFragment bounds a link frame's payload. A longer message is split
	// into fragments, so that a large body delays the small messages
	// queued behind it by one fragment at a time, not by its whole length.
	MaxFragment = 16 << 10
	// MaxCodeLen bounds a refusal's error code.
	MaxCodeLen = 64
	// ProofLen is the length of the proof a refusal of an unknown session
	// carries (docs/PROTOCOL.md §2.3: kept, then an HMAC-SHA256).
	ProofLen = 40

	// Protocol is the Upgrade token that asks for a link.
	Protocol = "pqrelay-link/1"
	// Path is where A asks for a link on B's port.
	Path = "/api/mte-link"
	// ClientIDHeader carries the session's client id in the upgrade
	// request. It is not x-mte-client-id on purpose: a relay that does not
	// speak the link treats a request with that header as a relay frame to
	// forward, and must instead refuse the upgrade like any unknown request.
	ClientIDHeader = "x-mte-link"
)

// Frame types.
const (
	TypeRequest  = 1 // A → B: a fragment of a sealed request frame
	TypeResponse = 2 // B → A: a fragment of a sealed response frame
	TypeRefusal  = 3 // B → A: a relay error instead of a response
	TypePing     = 4 // either way: answer with a pong of the same id
	TypePong     = 5
	TypeGoAway   = 6 // B → A: send no new requests on this connection
)

// FlagMore marks a request or response fragment that is not its message's
// last.
const FlagMore = 1

// Tuning defaults: knobs, not protocol.
const (
	// DefaultMaxInFlight bounds the messages in flight on one connection.
	DefaultMaxInFlight = 256
	// DefaultIdleTimeout closes a connection that carried nothing for this
	// long.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds one write: a peer that stops reading for
	// this long loses the connection instead of growing the queue.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultDialTimeout bounds a dial, TLS handshake and upgrade.
	DefaultDialTimeout = 5 * time.Second

	// readBufferSize and maxBatch size the I/O: one read takes up to 64
	// KiB, one write carries up to maxBatch plus one fragment.
	readBufferSize = 64 << 10
	maxBatch       = 64 << 10
	// maxUpgradeResponse bounds the 101 answer A reads before the link.
	maxUpgradeResponse = 4 << 10
	// keepBuffer is the largest message buffer returned to a pool; larger
	// ones (big bodies) are left to the garbage collector.
	keepBuffer = 64 << 10
)
