package proxy

import (
	"bytes"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/valyala/fasthttp"
)

// Control headers: set by the app on its request to the outbound relay (or
// by relays on their requests to each other), never forwarded to an upstream.
const (
	hdrOutboundToken = "x-mte-outbound-token"
	hdrUpstream      = "x-mte-upstream"
	hdrEncodeType    = "x-mte-encode-type"
	hdrEncodeHeaders = "x-mte-encode-headers"
	hdrEncodeURL     = "x-mte-encode-url"
	hdrClientID      = "x-mte-client-id"
	hdrRelayError    = "x-mte-relay-error"
	hdrRelayProof    = "x-mte-relay-proof" // on MTE_SESSION_UNKNOWN, session.AppendUnknownSessionProof
	hdrPeerError     = "x-mte-peer-error"  // on MTE_PEER_REFUSED: the code the inbound relay answered
	// hdrRelay marks every answer an inbound relay gives another relay, so
	// that an API mistaken for a relay is recognised as such.
	hdrRelay = "x-mte-relay"
)

const (
	pairContentType  = "application/x-mte-pair"
	frameContentType = "application/x-mte-frame"
)

var controlPrefix = []byte("x-mte-")

// isControl reports whether name is an x-mte-* header, in any case.
func isControl(name []byte) bool {
	return len(name) >= len(controlPrefix) && bytes.EqualFold(name[:len(controlPrefix)], controlPrefix)
}

// hopByHop is the one list of headers that describe a connection, not a
// message (RFC 9110 §7.6.1, plus the non-standard Proxy-Connection and
// Keep-Alive): relays drop them in both directions, along with any header
// the Connection header names. Content-Length and Host are not in it: the
// relays set them from the body and the upstream.
var hopByHop = [][]byte{
	[]byte("Connection"),
	[]byte("Keep-Alive"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("Proxy-Connection"),
	[]byte("TE"),
	[]byte("Trailer"),
	[]byte("Transfer-Encoding"),
	[]byte("Upgrade"),
}

var (
	strContentLength    = []byte("Content-Length")
	strTransferEncoding = []byte("Transfer-Encoding")
	strHost             = []byte("Host")
)

func isHopByHop(name, connection []byte) bool {
	for _, h := range hopByHop {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return len(connection) > 0 && listsToken(connection, name)
}

// listsToken reports whether the comma-separated list holds token, ignoring
// case and optional whitespace, without allocating.
func listsToken(list, token []byte) bool {
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(item), token) {
			return true
		}
	}
	return false
}

// forwardable reports whether a header of the app's request travels to the
// upstream: not a control header, not hop-by-hop, not one the relays derive.
func forwardable(name, connection []byte) bool {
	return !isControl(name) && !isHopByHop(name, connection) &&
		!bytes.EqualFold(name, strContentLength) && !bytes.EqualFold(name, strHost)
}

// options are the per-request choices of DESIGN.md §1.
type options struct {
	mode         uint8 // codec.ModeMKE or codec.ModeMTE
	clearHeaders bool  // x-mte-encode-headers: false
	clearURL     bool  // x-mte-encode-url: false
}

func (o options) flags() uint8 {
	var f uint8
	if o.clearHeaders {
		f |= codec.FlagHeadersInClear
	}
	if o.clearURL {
		f |= codec.FlagURLInClear
	}
	return f
}

// parseOptions reads the x-mte-encode-* headers; values are case-insensitive.
func parseOptions(h *fasthttp.RequestHeader) (options, *relayError) {
	o := options{mode: codec.ModeMKE}
	switch v := h.Peek(hdrEncodeType); {
	case len(v) == 0 || bytes.EqualFold(v, []byte("MKE")):
	case bytes.EqualFold(v, []byte("MTE")):
		o.mode = codec.ModeMTE
	default:
		return o, errBadEncodeType
	}
	var ok bool
	if o.clearHeaders, ok = parseNotBool(h.Peek(hdrEncodeHeaders)); !ok {
		return o, errBadEncodeHeaders
	}
	if o.clearURL, ok = parseNotBool(h.Peek(hdrEncodeURL)); !ok {
		return o, errBadEncodeURL
	}
	return o, nil
}

// parseNotBool parses an encode-* value (default true) and returns its
// negation: whether the part travels in clear.
func parseNotBool(v []byte) (inClear, ok bool) {
	switch {
	case len(v) == 0 || bytes.EqualFold(v, []byte("true")):
		return false, true
	case bytes.EqualFold(v, []byte("false")):
		return true, true
	}
	return false, false
}
