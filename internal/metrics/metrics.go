package metrics

import (
	"runtime"
	"time"
)

// Recorder is what the relay records into: *Relay when metrics are served,
// Nop when they are off. Every method is safe for concurrent use and
// allocates nothing.
type Recorder interface {
	// RequestStarted counts a request in flight until its RequestDone.
	RequestStarted()
	// RequestDone records a finished request: the role the relay played,
	// its outcome and how long the relay took to answer it.
	RequestDone(role Role, outcome Outcome, d time.Duration)
	// UpstreamDone records one round trip of the inbound relay to UPSTREAM.
	UpstreamDone(d time.Duration)
	// PeerDone records one round trip of the outbound relay to its peer.
	PeerDone(d time.Duration)
	// Pairing records a pairing from the side of role: the outbound relay
	// asking, the inbound relay answering.
	Pairing(role Role, r Result)
	// Rekey records an outbound relay pairing anew before its session
	// expires (docs/PROTOCOL.md §6.2).
	Rekey(r Result)
	// FrameRefused records a frame the inbound relay did not open.
	FrameRefused(r Refusal)
	// StoreCommandError records a session store command that failed.
	StoreCommandError()
}

// Role is the role a relay played for a request.
type Role uint8

const (
	Outbound Role = iota // relay A: the app's request, sealed toward the peer
	Inbound              // relay B: a frame opened and proxied to UPSTREAM
	// PassThrough is relay B proxying a plain request PASS_THROUGH_ROUTES
	// lets through unsealed, or refusing one for a path in no route list.
	PassThrough
	numRoles
)

// numPairingRoles: only the outbound and inbound roles pair.
const numPairingRoles = PassThrough

var roleNames = [numRoles]string{"outbound", "inbound", "pass_through"}

// Outcome is how a request ended: OK (the upstream's answer was relayed,
// whatever its status) or one of the relay error codes given to New, by
// position: Outcome(i+1) is Options.Codes[i].
type Outcome uint16

// OK is a request the relay answered with the upstream's response.
const OK Outcome = 0

// Result is how a pairing or rekey ended.
type Result uint8

const (
	ResultOK      Result = iota
	ResultRefused        // refused, or an answer that did not verify (different CLIENT_ID_SECRET, replayed pairing)
	ResultFailed         // no answer (unreachable, timed out), or the session store failed
	numResults
)

var resultNames = [numResults]string{"ok", "refused", "failed"}

// Refusal is why the inbound relay refused a frame. The peer only ever
// learns MTE_FRAME_REJECTED; the reason is for the operator.
type Refusal uint8

const (
	RefusedMalformed   Refusal = iota // not a request frame
	RefusedStale                      // outside the clock bound (docs/PROTOCOL.md §6.1)
	RefusedUnauthentic                // did not open under the session's key
	RefusedReplay                     // its counter was already seen
	RefusedEnvelope                   // opened, but the envelope inside is malformed
	numRefusals
)

var refusalNames = [numRefusals]string{"malformed", "stale", "unauthentic", "replay", "envelope"}

// Options are the label values and callbacks fixed at start-up.
type Options struct {
	Version, Commit string
	// Codes are the relay error codes, the outcomes besides OK.
	Codes []string
	// StoreDegraded, if set, is asked at each scrape whether the session
	// store is degraded (Redis unreachable).
	StoreDegraded func() bool
	// LinkConnections, if set, is asked at each scrape how many relay
	// links the relay serves.
	LinkConnections func() int
}

// Outcome returns the Outcome of a relay error code, false if it is not
// one of o.Codes.
func (o Options) Outcome(code string) (Outcome, bool) {
	for i, c := range o.Codes {
		if c == code {
			return Outcome(i + 1), true
		}
	}
	return OK, false
}

// Relay is the relay's set of series.
type Relay struct {
	opts       Options
	goVersion  string
	requests   [numRoles][]counter // by Outcome
	duration   [numRoles]histogram
	upstream   histogram
	peer       histogram
	inFlight   gauge
	pairings   [numPairingRoles][numResults]counter
	rekeys     [numResults]counter
	refusals   [numRefusals]counter
	storeErrs  counter
	outcomeLbl []string // "ok", then Codes
}

var _ Recorder = (*Relay)(nil)

// New builds every series, each at zero.
func New(opts Options) *Relay {
	r := &Relay{opts: opts, goVersion: runtime.Version()}
	r.outcomeLbl = append([]string{"ok"}, opts.Codes...)
	for i := range r.requests {
		r.requests[i] = make([]counter, len(r.outcomeLbl))
	}
	return r
}

func (r *Relay) RequestStarted() { r.inFlight.n.Add(1) }

// RequestDone panics on an Outcome New was not given: a programmer's
// mistake, not something a request can cause.
func (r *Relay) RequestDone(role Role, o Outcome, d time.Duration) {
	r.inFlight.n.Add(-1)
	r.requests[role][o].inc()
	r.duration[role].observe(d)
}

func (r *Relay) UpstreamDone(d time.Duration)  { r.upstream.observe(d) }
func (r *Relay) PeerDone(d time.Duration)      { r.peer.observe(d) }
func (r *Relay) Pairing(role Role, res Result) { r.pairings[role][res].inc() }
func (r *Relay) Rekey(res Result)              { r.rekeys[res].inc() }
func (r *Relay) FrameRefused(why Refusal)      { r.refusals[why].inc() }
func (r *Relay) StoreCommandError()            { r.storeErrs.inc() }

// Nop records nothing: the relay's Recorder when METRICS_PORT is 0.
var Nop Recorder = nop{}

type nop struct{}

func (nop) RequestStarted()                          {}
func (nop) RequestDone(Role, Outcome, time.Duration) {}
func (nop) UpstreamDone(time.Duration)               {}
func (nop) PeerDone(time.Duration)                   {}
func (nop) Pairing(Role, Result)                     {}
func (nop) Rekey(Result)                             {}
func (nop) FrameRefused(Refusal)                     {}
func (nop) StoreCommandError()                       {}
