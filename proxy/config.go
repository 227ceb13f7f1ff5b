package proxy

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/session"
)

// Config is a relay's configuration. cmd/pqrelay fills it from environment
// variables of the same names; each field states its zero-value default.
type Config struct {
	// Upstream is UPSTREAM: the API this relay proxies to in the inbound
	// role, an http or https origin with an optional base path. Required.
	Upstream string
	// ClientIDSecret is CLIENT_ID_SECRET, shared by both relays of a pair,
	// at least 32 characters. Required.
	ClientIDSecret string
	// OutboundToken is OUTBOUND_TOKEN, which apps must send in
	// x-mte-outbound-token. Required.
	OutboundToken string

	// Metrics is where the relay records requests, round trips, pairings
	// and refusals; cmd/pqrelay passes a *metrics.Relay when METRICS_PORT is
	// set. Default metrics.Nop.
	Metrics metrics.Recorder

	// AccessLog is ACCESS_LOG: one log line per relayed request, in either
	// role (role, method, path without query, status, relay code,
	// duration, body sizes, request id). Default false.
	AccessLog bool

	// Debug is DEBUG: log every request at debug level. Secrets are never
	// logged. Default false.
	Debug bool
	// Headers is HEADERS: fields added to every request sent to the upstream
	// and every response sent to the app. Default none.
	Headers []Header
	// CORSOrigins is CORS_ORIGINS: origins whose browser requests the
	// outbound relay answers with CORS headers; "*" allows any. Default none:
	// no CORS headers, preflights are relayed like any request.
	CORSOrigins []string
	// CORSMethods is CORS_METHODS. Default GET, POST, PUT, DELETE.
	CORSMethods []string
	// AllowedPeers is ALLOWED_PEERS: the inbound relay origins that
	// x-mte-upstream may name. Default none, meaning any origin; set it in
	// production, since x-mte-upstream otherwise lets a token holder make
	// this relay send pairing requests anywhere.
	AllowedPeers []string

	// MaxBodyBytes is MAX_BODY_BYTES, the largest request or response body
	// relayed. Default 5 MiB.
	MaxBodyBytes int
	// MaxHeaderBytes is MAX_HEADER_BYTES, the largest request or response
	// header block. Default 16 KiB.
	MaxHeaderBytes int
	// PeerTimeout is PEER_TIMEOUT, how long the outbound relay waits for the
	// inbound relay's answer (pairing or request). Default 30 s.
	PeerTimeout time.Duration
	// UpstreamTimeout is UPSTREAM_TIMEOUT, how long the inbound relay waits
	// for the upstream. Default 30 s; keep it under PEER_TIMEOUT.
	UpstreamTimeout time.Duration
	// ReadTimeout is READ_TIMEOUT, how long a client may take to send a
	// whole request; it ends slow clients. Default 30 s.
	ReadTimeout time.Duration
	// IdleTimeout is IDLE_TIMEOUT, how long the server keeps an idle
	// keep-alive connection. Default 120 s. It is longer than the outbound
	// relay's own idle limit toward peers (peerIdle), so an outbound relay
	// closes its idle connections before the inbound relay does.
	IdleTimeout time.Duration
	// SessionLifetime is SESSION_LIFETIME, how long an inbound relay keeps a
	// session it paired; the outbound relay pairs anew at 75% of it.
	// Default 1 h, from 1 min to 24 h.
	SessionLifetime time.Duration
}

// Header is one HEADERS field.
type Header struct{ Name, Value string }

// Defaults.
const (
	DefaultMaxBodyBytes   = 5 << 20
	DefaultMaxHeaderBytes = 16 << 10
	DefaultTimeout        = 30 * time.Second
	DefaultIdleTimeout    = 120 * time.Second
	// peerIdle is how long the outbound relay keeps an idle connection to
	// a peer; it must stay below any inbound relay's IdleTimeout.
	peerIdle = 30 * time.Second
	// upstreamIdle is how long the inbound relay keeps an idle connection to
	// the upstream: below the 5 s keep-alive timeout of common servers
	// (Node.js), so the upstream rarely closes a connection we are about to
	// reuse.
	upstreamIdle = 4 * time.Second
)

var defaultCORSMethods = []string{"GET", "POST", "PUT", "DELETE"}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	for _, d := range []*time.Duration{&c.PeerTimeout, &c.UpstreamTimeout, &c.ReadTimeout} {
		if *d == 0 {
			*d = DefaultTimeout
		}
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.Metrics == nil {
		c.Metrics = metrics.Nop
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = session.DefaultLifetime
	}
	if len(c.CORSMethods) == 0 {
		c.CORSMethods = defaultCORSMethods
	}
	return c
}

// Validate checks c (after defaults); errors name the environment variable.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, _, err := parseUpstream(c.Upstream); err != nil {
		return err
	}
	switch {
	case len(c.ClientIDSecret) < session.MinSecretLen:
		return errors.New("CLIENT_ID_SECRET: must be at least 32 characters, the same on both relays")
	case c.OutboundToken == "":
		return errors.New("OUTBOUND_TOKEN: required; apps send it in x-mte-outbound-token")
	case c.MaxBodyBytes < 0 || c.MaxBodyBytes > 1<<30:
		return errors.New("MAX_BODY_BYTES: must be between 1 and 1073741824")
	case c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20:
		return errors.New("MAX_HEADER_BYTES: must be between 1024 and 1048576")
	case c.PeerTimeout < 0, c.UpstreamTimeout < 0, c.ReadTimeout < 0, c.IdleTimeout < 0:
		return errors.New("timeouts must be positive")
	case c.IdleTimeout <= peerIdle:
		return errors.New("IDLE_TIMEOUT: must be longer than 30s, the outbound relay's idle limit toward peers")
	case c.SessionLifetime < session.MinLifetime || c.SessionLifetime > session.MaxLifetime:
		return errors.New("SESSION_LIFETIME: must be between 1m and 24h")
	}
	for _, h := range c.Headers {
		if !codec.ValidHeaderName([]byte(h.Name)) || !codec.ValidHeaderValue([]byte(h.Value)) || isControl([]byte(h.Name)) {
			return errors.New("HEADERS: " + quoteName(h.Name) + " is not a valid header to add")
		}
	}
	for _, p := range c.AllowedPeers {
		if _, err := parsePeerOrigin(p); err != nil {
			return errors.New("ALLOWED_PEERS: " + quoteName(p) + " is not an origin like https://relay.example.com:8443")
		}
	}
	return nil
}

func quoteName(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}

// parseUpstream splits UPSTREAM into an origin URL and a base path without a
// trailing slash.
func parseUpstream(raw string) (*url.URL, string, error) {
	if raw == "" {
		return nil, "", errors.New("UPSTREAM: required; set it to the API's origin, e.g. http://127.0.0.1:9000")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, "", errors.New("UPSTREAM: must be an http:// or https:// URL with a host and no query, e.g. http://127.0.0.1:9000")
	}
	return u, strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// parsePeerOrigin checks an x-mte-upstream value or ALLOWED_PEERS entry and
// returns it in canonical form: lower-case scheme and host, no trailing
// slash, default port omitted.
func parsePeerOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errUpstreamInvalidErr
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if n, err := strconv.Atoi(port); host == "" || (port != "" && (err != nil || n < 1 || n > 65535)) {
		return "", errUpstreamInvalidErr
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	origin := u.Scheme + "://"
	if strings.Contains(host, ":") {
		origin += "[" + host + "]"
	} else {
		origin += host
	}
	if port != "" {
		origin += ":" + port
	}
	return origin, nil
}

var errUpstreamInvalidErr = errors.New(errUpstreamInvalid.message)
