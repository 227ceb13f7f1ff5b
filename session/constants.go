package session

import "time"

// Protocol constants (docs/PROTOCOL.md §3, §6). Changing any of them changes
// the protocol; tuning knobs live in proxy.Config.
const (
	// RejectAfterMessages: a session never seals more than 2^32 messages
	// under one key (docs/PROTOCOL.md §6.2); AES-GCM with deterministic nonces is
	// safe far beyond that, the margin is deliberate.
	RejectAfterMessages = 1 << 32
	// RekeyAfterMessages: the outbound relay pairs anew in the background
	// (make-before-break) once a session has sealed this many requests.
	RekeyAfterMessages = RejectAfterMessages / 2

	// RekeyAfterFraction of a session's lifetime the outbound relay starts
	// pairing anew; the old session keeps serving until the new one is in.
	RekeyAfterFraction = 0.75

	// MaxClockSkew bounds how far a pairing message's or a frame's
	// timestamp may be from the receiver's clock.
	MaxClockSkew = 60 * time.Second

	// DefaultLifetime is a session's lifetime when the relay sets none.
	DefaultLifetime = time.Hour
	// MinLifetime keeps rekeying from turning into a pairing storm.
	MinLifetime = time.Minute
)

// MaxLifetime bounds the session lifetime a relay may set or accept.
const MaxLifetime = 24 * time.Hour
