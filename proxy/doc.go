// Package proxy is the relay itself: one fasthttp server that plays both
// roles of docs/ARCHITECTURE.md §1, or one of them (RELAY_ROLE, role.go). As the
// outbound relay it takes the app's plain request, seals it into a frame and
// sends it to the inbound relay named by x-mte-upstream; as the inbound
// relay it opens frames, rebuilds the request for UPSTREAM (signed last,
// with package upsign, when UPSTREAM_SIGNING is set) and seals the answer
// back. site.go holds what the inbound role needs per API: one site, or
// one per DOMAIN_MAP entry chosen by Host (domains.go parses the map).
// outbound.go is relay A's path and inbound.go relay B's, each
// opening with a walk through its stages; routes.go holds relay B's route
// lists (PASS_THROUGH_ROUTES, MTE_ROUTES) and passthrough.go proxies the
// plain requests they let through; protect.go refuses JSON and XML
// bodies that break the message-protection limits; cors.go answers
// browsers; errors.go lists every error a relay can answer; park.go
// keeps idle keep-alive connections out of fasthttp between requests.
//
// It must never forward a frame that did not open, never let an x-mte-*
// control header reach an upstream, never log a secret, and never answer an
// app with a half-forwarded request: every failure is one small JSON error.
package proxy
