// Package upsign signs the requests an inbound relay sends to its upstream
// API, so that the API can check that a request came through its relay and
// was not altered on the last hop, which the relays' own sealing does not
// cover. Two schemes are built in: draft-cavage-http-signatures-10 in the
// form the Tyk gateway sends it, and RFC 9421 (HTTP Message Signatures) with
// RFC 9530 Content-Digest.
//
// A Signer works on the fasthttp.Request the relay is about to send, after
// every other change to it: it adds Date when absent and a body digest when
// there is a body, and appends the signature headers. With an HMAC algorithm
// it allocates nothing per request (keyed hash states and buffers are
// pooled).
//
// It must never sign anything other than what fasthttp will send (the host,
// request target and Content-Length are taken the way Request.Write takes
// them), never keep a signature or digest header that the request arrived
// with, and never log or return key material.
package upsign
