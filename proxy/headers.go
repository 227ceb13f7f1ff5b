package proxy

import (
	"bytes"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/valyala/fasthttp"
)

// Control headers: set by the app on its request to the outbound relay (or
// by relays on their requests to each other), never forwarded to an upstream.
var (
	hdrOutboundToken = []byte("x-mte-outbound-token")
	hdrUpstream      = []byte("x-mte-upstream")
	hdrEncodeType    = []byte("x-mte-encode-type")
	hdrEncodeHeaders = []byte("x-mte-encode-headers")
	hdrEncodeURL     = []byte("x-mte-encode-url")
	hdrClientID      = []byte("x-mte-client-id")
)

const (
	hdrRelayError = "x-mte-relay-error"
	hdrRelayProof = "x-mte-relay-proof" // on MTE_SESSION_UNKNOWN, session.AppendUnknownSessionProof
	hdrPeerError  = "x-mte-peer-error"  // on MTE_PEER_REFUSED: the code the inbound relay answered
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

// options are the per-request choices of the x-mte-encode-* headers.
type options struct {
	mode         uint8 // codec.ModeMKE or codec.ModeMTE
	clearHeaders bool  // x-mte-encode-headers: false, or a list of names
	clearURL     bool  // x-mte-encode-url: false
	// sealedOnly is x-mte-encode-headers' value when it lists header names
	// (nil otherwise): the headers that stay out of the clear copies. It
	// points into the app's request, which outlives every use of options.
	sealedOnly []byte
}

// headerInClear reports whether the app's forwardable header name also
// travels in clear. Names are matched against the list as the app sent it,
// so that deciding costs no allocation.
func (o *options) headerInClear(name []byte) bool {
	return o.clearHeaders && !listsToken(o.sealedOnly, name)
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

// linkable reports whether a request may travel on a relay link. What
// travels in clear is for L7 balancers that route each request, and a
// link, one connection for many requests, would hide it from them: such
// requests keep the per-request path.
func (o options) linkable() bool { return !o.clearHeaders && !o.clearURL }

// parseOptions reads the x-mte-encode-* headers; values are case-insensitive.
func parseOptions(h *fasthttp.RequestHeader) (options, *relayError) {
	o := options{mode: codec.ModeMKE}
	switch v := controlValue(h, hdrEncodeType); {
	case len(v) == 0 || bytes.EqualFold(v, []byte("MKE")):
	case bytes.EqualFold(v, []byte("MTE")):
		o.mode = codec.ModeMTE
	default:
		return o, errBadEncodeType
	}
	var ok bool
	if o.clearHeaders, o.sealedOnly, ok = parseEncodeHeaders(controlValue(h, hdrEncodeHeaders)); !ok {
		return o, errBadEncodeHeaders
	}
	if o.clearURL, ok = parseNotBool(controlValue(h, hdrEncodeURL)); !ok {
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

// parseEncodeHeaders parses x-mte-encode-headers: true (the default),
// false, or a comma-separated list of header names (RFC 9110 §5.6.1, any
// case, optional whitespace), which keeps those headers sealed-only and sends
// every other one in clear too, as false does. inClear is true for false and
// for a list; sealedOnly is the list itself, checked but not copied.
func parseEncodeHeaders(v []byte) (inClear bool, sealedOnly []byte, ok bool) {
	if inClear, ok = parseNotBool(v); ok {
		return inClear, nil, true
	}
	if validTokenList(v) {
		return true, v, true
	}
	return false, nil, false
}

// nextField returns the first field of a header section as fasthttp keeps
// it (RequestHeader.RawHeaders: the lines as received, each ending in CRLF or
// a bare LF, then an empty line) and the rest of the section. ok is false at
// the end of the section. bad reports a line no relay forwards: no colon, a
// name that is not a token, a value with control characters, or a line folded
// onto the previous one (obs-fold, which RFC 9112 §5.2 lets a server refuse).
//
// The relays read the app's headers from here rather than from fasthttp's
// parsed view for two reasons: the parsed view rewrites Cookie (quotes
// dropped, a pair without a name lost), and after a chunked body it also
// holds the request's trailer fields, which must never pass for headers.
func nextField(raw []byte) (name, value, rest []byte, ok, bad bool) {
	nl := bytes.IndexByte(raw, '\n')
	if nl < 0 {
		return nil, nil, nil, false, len(raw) > 0
	}
	line, rest := raw[:nl], raw[nl+1:]
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		return nil, nil, nil, false, false
	}
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, nil, false, true
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return nil, nil, nil, false, true
	}
	name, value = line[:colon], bytes.Trim(line[colon+1:], " \t")
	if !codec.ValidHeaderName(name) || !codec.ValidHeaderValue(value) {
		return nil, nil, nil, false, true
	}
	return name, value, rest, true, false
}

// controlValue returns the first value of header name in the header section
// of req. A chunked request can carry trailer fields, which fasthttp merges
// into its parsed headers once the body is read; only then is the section as
// received scanned, so that a trailer can never supply a token, a peer or a
// client id. Every other request is a map read.
func controlValue(h *fasthttp.RequestHeader, name []byte) []byte {
	if !chunked(h) {
		return h.PeekBytes(name)
	}
	v, _ := findField(h.RawHeaders(), name)
	return v
}

// chunked reports whether the request's body came in chunks. fasthttp
// reports the length of such a body as -1, but as 0 once it has read an
// empty one: only then is the header section scanned.
func chunked(h *fasthttp.RequestHeader) bool {
	switch h.ContentLength() {
	case -1:
		return true
	case 0:
		_, te := findField(h.RawHeaders(), strTransferEncoding)
		return te
	}
	return false
}

// findField returns the first value of field name in the header section
// raw, and whether the section holds it.
func findField(raw, name []byte) ([]byte, bool) {
	for {
		n, v, rest, ok, _ := nextField(raw)
		if !ok {
			return nil, false
		}
		if bytes.EqualFold(n, name) {
			return v, true
		}
		raw = rest
	}
}

// idempotent reports whether RFC 9110 §9.2.2 calls method idempotent: sending
// it twice has the effect of sending it once. Such a request is the only kind
// a relay sends again when it cannot know whether the first copy ran.
func idempotent(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions, fasthttp.MethodTrace,
		fasthttp.MethodPut, fasthttp.MethodDelete:
		return true
	}
	return false
}
