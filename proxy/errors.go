package proxy

import (
	"strconv"

	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/valyala/fasthttp"
)

// relayError is one row of the relay's error table (docs/PROTOCOL.md §8,
// served at GET /api/mte-errors). Every error a relay answers is one of these,
// as {"error": message, "code": code} with header x-mte-relay-error: code.
type relayError struct {
	code    string
	status  int
	message string // what to fix, for the app's developer
	side    string // which relay answers it, and to whom
	json    []byte // the response body, built once at start-up
	// peerCode is, on a copy of errPeerRefused, the code the inbound relay
	// answered; it goes to the app in x-mte-peer-error.
	peerCode []byte
	// outcome is the error's label value in pqrelay_requests_total.
	outcome metrics.Outcome
}

// The error table. Messages say what to fix and nothing about keys, frames
// or sessions beyond what the peer already knows (fail closed).
var (
	errTokenMissing = newError("MTE_TOKEN_MISSING", 401,
		"missing x-mte-outbound-token header: send the relay's OUTBOUND_TOKEN", "outbound, to the app")
	errTokenInvalid = newError("MTE_TOKEN_INVALID", 401,
		"x-mte-outbound-token does not match this relay's OUTBOUND_TOKEN", "outbound, to the app")
	errUpstreamMissing = newError("MTE_UPSTREAM_MISSING", 400,
		"missing x-mte-upstream header: send the origin of the inbound relay, e.g. https://relay.example.com", "outbound, to the app")
	errUpstreamInvalid = newError("MTE_UPSTREAM_INVALID", 400,
		"x-mte-upstream must be an origin: http:// or https://, a host, an optional port, no path, query or credentials", "outbound, to the app")
	errUpstreamNotAllowed = newError("MTE_UPSTREAM_NOT_ALLOWED", 403,
		"x-mte-upstream is not in this relay's ALLOWED_PEERS", "outbound, to the app")
	errBadEncodeType = newError("MTE_BAD_ENCODE_TYPE", 400,
		"x-mte-encode-type must be MKE or MTE", "outbound, to the app")
	errBadEncodeHeaders = newError("MTE_BAD_ENCODE_HEADERS", 400,
		"x-mte-encode-headers must be true, false or a list of header names", "outbound, to the app")
	errBadEncodeURL = newError("MTE_BAD_ENCODE_URL", 400,
		"x-mte-encode-url must be true or false", "outbound, to the app")
	errBodyTooLarge = newError("MTE_BODY_TOO_LARGE", 413,
		"request body is larger than this relay's MAX_BODY_BYTES", "either relay: outbound to the app, inbound sealed to the app")
	errHeadersTooLarge = newError("MTE_HEADERS_TOO_LARGE", 431,
		"request headers are larger than this relay's MAX_HEADER_BYTES", "either relay, to its client")
	errTooManyHeaders = newError("MTE_TOO_MANY_HEADERS", 431,
		"request has more header fields than a frame can carry (65,535)", "outbound, to the app")
	errBadMethod = newError("MTE_BAD_METHOD", 400,
		"the request method must be a token (RFC 9110 §9) of at most 32 characters", "outbound, to the app")
	errBadTarget = newError("MTE_BAD_TARGET", 400,
		"the request target must be a path with an optional query, or an absolute http(s) URL; no fragment, no dot segments (/./, /../)", "either relay: outbound to the app, inbound sealed to the app")
	errBadHeader = newError("MTE_BAD_HEADER", 400,
		"a request header field is malformed: a name that is not a token, a value with control characters, or a line folded onto the previous one", "outbound, to the app")
	errBadRequest = newError("MTE_BAD_REQUEST", 400,
		"the request could not be parsed as HTTP/1.1", "either relay, to its client")
	errClientTimeout = newError("MTE_CLIENT_TIMEOUT", 408,
		"the request was not received within this relay's READ_TIMEOUT", "either relay, to its client")
	errPeerUnreachable = newError("MTE_PEER_UNREACHABLE", 502,
		"the inbound relay named by x-mte-upstream could not be reached", "outbound, to the app")
	errPeerTimeout = newError("MTE_PEER_TIMEOUT", 504,
		"the inbound relay did not answer within this relay's PEER_TIMEOUT", "outbound, to the app")
	errPairRefused = newError("MTE_PAIR_REFUSED", 502,
		"the inbound relay refused to pair: both relays need the same CLIENT_ID_SECRET", "outbound, to the app")
	errPeerNotRelay = newError("MTE_PEER_NOT_RELAY", 502,
		"x-mte-upstream does not answer as a pqrelay: point it at the inbound relay, not at the API", "outbound, to the app")
	errPeerRefused = newError("MTE_PEER_REFUSED", 502,
		"the inbound relay refused the request (x-mte-peer-error names its code); nothing is resent that the upstream may have run", "outbound, to the app")
	errPeerLostSession = newError("MTE_PEER_LOST_SESSION", 502,
		"the inbound relay lost its session while this request was under way; it may have reached the upstream, so it was not sent again (only idempotent methods are)", "outbound, to the app")
	errResponseTooLarge = newError("MTE_RESPONSE_TOO_LARGE", 502,
		"the response is larger than this relay's MAX_BODY_BYTES; the upstream may have run the request", "outbound, to the app")
	errPeerBadResponse = newError("MTE_PEER_BAD_RESPONSE", 502,
		"the inbound relay's answer did not open: it may be a different relay or tampered with in transit", "outbound, to the app")
	errUpstreamUnreachable = newError("MTE_UPSTREAM_UNREACHABLE", 502,
		"the inbound relay could not reach its UPSTREAM", "inbound, sealed to the app")
	errUpstreamTimeout = newError("MTE_UPSTREAM_TIMEOUT", 504,
		"UPSTREAM did not answer within the inbound relay's UPSTREAM_TIMEOUT", "inbound, sealed to the app")
	errUpstreamBadResponse = newError("MTE_UPSTREAM_BAD_RESPONSE", 502,
		"UPSTREAM answered with something that is not a valid HTTP response to relay: a status outside 200-999, a 101 without an upgrade asked for, or a malformed header field", "inbound, sealed to the app")
	errUpstreamTooLarge = newError("MTE_UPSTREAM_RESPONSE_TOO_LARGE", 502,
		"UPSTREAM answered with a body or headers larger than the inbound relay's limits", "inbound, sealed to the app")
	errForbiddenHeader = newError("MTE_FORBIDDEN_HEADER", 400,
		"the relayed request carried Content-Length or Transfer-Encoding inside the frame; relays never send these", "inbound, sealed to the app")
	errSessionUnknown = newError("MTE_SESSION_UNKNOWN", 401,
		"the inbound relay does not know this session; the outbound relay pairs anew and resends once if x-mte-relay-proof verifies", "inbound, to the outbound relay")
	errClientIDInvalid = newError("MTE_CLIENT_ID_INVALID", 401,
		"x-mte-client-id is malformed or not issued by this relay fleet", "inbound, to the outbound relay")
	errFrameRejected = newError("MTE_FRAME_REJECTED", 400,
		"the frame did not open: tampered, replayed, stale or sealed for another session", "inbound, to the outbound relay")
	errPairRejected = newError("MTE_PAIR_REJECTED", 401,
		"the pairing request did not verify: different CLIENT_ID_SECRET, clock skew over 60 s, or malformed", "inbound, to the outbound relay")
	errStoreUnavailable = newError("MTE_STORE_UNAVAILABLE", 503,
		"the session store could not be reached; retry", "inbound, to the outbound relay")
	errInternal = newError("MTE_INTERNAL", 500,
		"the relay failed on this request; it is logged, please report it", "either relay, to its client")
	errJSONThreat = newError("MTE_JSON_THREAT", 400,
		"the JSON request body exceeds a JSON_MAX_* limit of the inbound relay; the message names the limit, its value and the byte offset", "inbound, sealed to the app")
	errJSONInvalid = newError("MTE_JSON_INVALID", 400,
		"the JSON request body is not valid JSON (RFC 8259, UTF-8); the message gives the byte offset", "inbound, sealed to the app")
	errXMLThreat = newError("MTE_XML_THREAT", 400,
		"the XML request body exceeds an XML_MAX_* limit of the inbound relay or has a DOCTYPE; the message names the limit, its value and the byte offset", "inbound, sealed to the app")
	errXMLInvalid = newError("MTE_XML_INVALID", 400,
		"the XML request body is not well-formed XML in UTF-8; the message gives the byte offset", "inbound, sealed to the app")
	errResponseThreat = newError("MTE_RESPONSE_THREAT", 502,
		"the upstream's JSON or XML response exceeds a limit of the outbound relay (JSON_RESPONSES, XML_RESPONSES) or has a DOCTYPE", "outbound, to the app")
	errResponseInvalid = newError("MTE_RESPONSE_INVALID", 502,
		"the upstream's JSON or XML response is malformed and the outbound relay checks responses (JSON_RESPONSES, XML_RESPONSES)", "outbound, to the app")
	errCORSOrigin = newError("MTE_CORS_ORIGIN", 403,
		"the Origin of this preflight request is not in CORS_ORIGINS", "outbound, to the browser")
	errInboundOnly = newError("MTE_INBOUND_ONLY", 403,
		"this relay's RELAY_ROLE is inbound: it does not relay app requests; send them to the outbound relay", "inbound-only relay, to the app")
	errOutboundOnly = newError("MTE_OUTBOUND_ONLY", 403,
		"this relay's RELAY_ROLE is outbound: it neither pairs nor opens frames; x-mte-upstream must name an inbound relay", "outbound-only relay, to the outbound relay")
	errUnknownHost = newError("MTE_UNKNOWN_HOST", 421,
		"this inbound relay serves no DOMAIN_MAP entry for the host x-mte-upstream names; name a host it serves", "inbound, to the outbound relay")
	errPeerTLS = newError("MTE_PEER_TLS", 502,
		"TLS to the inbound relay failed: its certificate is not trusted or lacks the name, or it refused this relay's client certificate (the message says which side to fix)", "outbound, to the app")
	errRouteNotFound = newError("MTE_ROUTE_NOT_FOUND", 404,
		"the path matches none of the inbound relay's routes: MTE_ROUTES for sealed requests, PASS_THROUGH_ROUTES for plain ones", "inbound: sealed to the app, or to a plain client")
	errUpstreamTLS = newError("MTE_UPSTREAM_TLS", 502,
		"TLS from the inbound relay to its UPSTREAM failed: the API's certificate is not trusted or lacks the name, or the API refused the relay's client certificate (the message says which side to fix)", "inbound, sealed to the app")
)

// The TLS failures, each with the code of its row above and a message that
// names the variables to fix on either side (tlsconf.Classify tells them
// apart).
var (
	errPeerTLSFailures = [...]*relayError{
		tlsconf.Untrusted: newError("MTE_PEER_TLS", 502,
			"the inbound relay's TLS certificate is not trusted: fix PEER_CA_FILE on this relay, or TLS_CERT_FILE on the inbound relay (expired, or from another CA)", "outbound, to the app"),
		tlsconf.WrongName: newError("MTE_PEER_TLS", 502,
			"the inbound relay's TLS certificate does not carry the x-mte-upstream host name: set PEER_SERVER_NAME on this relay, or give the inbound relay a certificate for that name", "outbound, to the app"),
		tlsconf.Refused: newError("MTE_PEER_TLS", 502,
			"the inbound relay refused this relay's TLS handshake: set PEER_CERT_FILE and PEER_KEY_FILE on this relay to a certificate the inbound relay's TLS_CLIENT_CA_FILE signed and TLS_CLIENT_NAMES allows", "outbound, to the app"),
		tlsconf.NoTLS: newError("MTE_PEER_TLS", 502,
			"x-mte-upstream is https:// but the inbound relay does not serve TLS there: set TLS_CERT_FILE and TLS_KEY_FILE on it, or send http://", "outbound, to the app"),
		tlsconf.Other: errPeerTLS,
	}
	errUpstreamTLSFailures = [...]*relayError{
		tlsconf.Untrusted: newError("MTE_UPSTREAM_TLS", 502,
			"the API's TLS certificate is not trusted by the inbound relay: fix UPSTREAM_CA_FILE there, or the API's certificate (expired, or from another CA)", "inbound, sealed to the app"),
		tlsconf.WrongName: newError("MTE_UPSTREAM_TLS", 502,
			"the API's TLS certificate does not carry the UPSTREAM host name: set UPSTREAM_SERVER_NAME on the inbound relay, or fix the API's certificate", "inbound, sealed to the app"),
		tlsconf.Refused: newError("MTE_UPSTREAM_TLS", 502,
			"the API refused the inbound relay's TLS handshake: set UPSTREAM_CERT_FILE and UPSTREAM_KEY_FILE there to a certificate the API trusts", "inbound, sealed to the app"),
		tlsconf.NoTLS: newError("MTE_UPSTREAM_TLS", 502,
			"UPSTREAM is https:// but the API does not serve TLS there: fix UPSTREAM on the inbound relay", "inbound, sealed to the app"),
		tlsconf.Other: errUpstreamTLS,
	}
)

// errorTable lists every error, in the order GET /api/mte-errors serves them.
var errorTable = []*relayError{
	errTokenMissing, errTokenInvalid, errUpstreamMissing, errUpstreamInvalid,
	errUpstreamNotAllowed, errBadEncodeType, errBadEncodeHeaders, errBadEncodeURL,
	errBodyTooLarge, errHeadersTooLarge, errTooManyHeaders, errBadMethod, errBadTarget, errBadHeader,
	errBadRequest, errClientTimeout,
	errPeerUnreachable, errPeerTimeout, errPairRefused, errPeerNotRelay, errPeerRefused,
	errPeerLostSession, errResponseTooLarge, errPeerBadResponse,
	errUpstreamUnreachable, errUpstreamTimeout, errUpstreamBadResponse, errUpstreamTooLarge,
	errForbiddenHeader, errSessionUnknown, errClientIDInvalid, errFrameRejected,
	errPairRejected, errStoreUnavailable, errInternal, errJSONThreat, errJSONInvalid, errXMLThreat,
	errXMLInvalid, errResponseThreat, errResponseInvalid, errCORSOrigin, errInboundOnly, errOutboundOnly,
	errPeerTLS, errUpstreamTLS, errUnknownHost, errRouteNotFound,
}

// ErrorCodes returns every relay error code in the table's order, the
// outcomes a metrics.Recorder counts besides OK (metrics.Options.Codes).
func ErrorCodes() []string {
	codes := make([]string, len(errorTable))
	for i, e := range errorTable {
		codes[i] = e.code
	}
	return codes
}

// outcomeByCode finds the outcome of a code an inbound relay sealed into its
// answer; a string(b) map index does not allocate.
var outcomeByCode = func() map[string]metrics.Outcome {
	m := make(map[string]metrics.Outcome, len(errorTable))
	for i, e := range errorTable {
		e.outcome = metrics.Outcome(i + 1) // ErrorCodes' order
		m[e.code] = e.outcome
	}
	return m
}()

// outcome is e's metrics outcome, OK for no error.
func (e *relayError) outcomeOrOK() metrics.Outcome {
	if e == nil {
		return metrics.OK
	}
	return e.outcome
}

func newError(code string, status int, message, side string) *relayError {
	b := append([]byte(`{"error":`), strconv.Quote(message)...)
	b = append(b, `,"code":"`...)
	b = append(b, code...)
	b = append(b, `"}`...)
	return &relayError{code: code, status: status, message: message, side: side, json: b}
}

// writeError answers ctx with e. The body is prebuilt: no allocation.
func writeError(ctx *fasthttp.RequestCtx, e *relayError) {
	ctx.Response.Reset()
	ctx.SetStatusCode(e.status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set(hdrRelayError, e.code)
	if len(e.peerCode) > 0 {
		ctx.Response.Header.SetBytesV(hdrPeerError, e.peerCode)
	}
	ctx.Response.SetBodyRaw(e.json)
}

// errorTableJSON is the body of GET /api/mte-errors.
var errorTableJSON = func() []byte {
	b := []byte(`{"errors":[`)
	for i, e := range errorTable {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"code":"`...)
		b = append(b, e.code...)
		b = append(b, `","status":`...)
		b = strconv.AppendInt(b, int64(e.status), 10)
		b = append(b, `,"message":`...)
		b = strconv.AppendQuote(b, e.message)
		b = append(b, `,"from":`...)
		b = strconv.AppendQuote(b, e.side)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}()
