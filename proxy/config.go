package proxy

import (
	"bytes"
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/metrics"
	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/session"
	"github.com/pqrelay/pqrelay/upsign"
)

// Config is a relay's configuration. cmd/pqrelay fills it from environment
// variables of the same names; each field states its zero-value default.
type Config struct {
	// Role is RELAY_ROLE: which roles the relay serves. Default RoleBoth.
	Role Role
	// Upstream is UPSTREAM: the API this relay proxies to in the inbound
	// role, an http or https origin with an optional base path. Required
	// unless Role is RoleOutbound or Domains is set; not with Domains.
	Upstream string
	// Domains is DOMAIN_MAP (ParseDomainMap): several APIs, each chosen by
	// the Host that frames, pairing requests and links arrive under, each
	// with its own upstream, sessions and settings. Default none: the one
	// API is Upstream.
	Domains []Domain
	// ClientIDSecret is CLIENT_ID_SECRET, shared by both relays of a pair:
	// at least 32 characters, and not predictable (see weakSecret).
	// Required.
	ClientIDSecret string
	// OutboundToken is OUTBOUND_TOKEN, which apps must send in
	// x-mte-outbound-token: at least MinTokenLen visible ASCII characters.
	// Required unless Role is RoleInbound.
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
	// CORSOrigins is CORS_ORIGINS: origins (scheme://host[:port], or
	// "null") whose browser requests the outbound relay answers with CORS
	// headers, or "*" for any origin without credentials. Default none: no
	// CORS headers, preflights are relayed like any request and the
	// upstream's own CORS headers reach the browser. With origins set, the
	// relay's policy replaces the upstream's Access-Control-* headers.
	CORSOrigins []string
	// CORSMethods is CORS_METHODS. Default GET, POST, PUT, DELETE.
	CORSMethods []string
	// CORSCredentials is CORS_CREDENTIALS: answer listed origins with
	// Access-Control-Allow-Credentials: true, so that browsers send and
	// read cookies. Not with "*" or "null" origins. Default false.
	CORSCredentials bool
	// CORSExposeHeaders is CORS_EXPOSE_HEADERS: response headers, besides
	// x-mte-relay-error and x-mte-peer-error (always exposed), that
	// browser scripts may read. Default none.
	CORSExposeHeaders []string
	// PassThroughRoutes is PASS_THROUGH_ROUTES, as set: comma-separated RE2
	// patterns over the request path. On the inbound relay a plain request
	// (no x-mte-client-id, x-mte-outbound-token or x-mte-upstream) whose
	// path one matches is proxied to UPSTREAM unsealed. Default none.
	PassThroughRoutes string
	// MTERoutes is MTE_ROUTES, as set: patterns like PassThroughRoutes;
	// the inbound relay forwards sealed requests only for paths one
	// matches and answers others MTE_ROUTE_NOT_FOUND. Default none: every
	// path.
	MTERoutes string
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
	// for the upstream. Default 25 s: under the outbound relay's default
	// PEER_TIMEOUT, so that the app learns it was the upstream that was slow
	// (MTE_UPSTREAM_TIMEOUT), not the peer.
	UpstreamTimeout time.Duration
	// ReadTimeout is READ_TIMEOUT, how long a client may take to send a
	// whole request; it ends slow clients. Default 30 s.
	ReadTimeout time.Duration
	// IdleTimeout is IDLE_TIMEOUT, how long the server keeps an idle
	// keep-alive connection. Default 120 s. It is longer than the outbound
	// relay's own idle limit toward peers (peerIdle), so an outbound relay
	// closes its idle connections before the inbound relay does.
	IdleTimeout time.Duration
	// NoPeerLinks is PEER_LINKS=false: the outbound relay sends every
	// request to its peers over per-request HTTP and never opens a relay
	// link (docs/PROTOCOL.md §10). Default false: links where the peer
	// takes them.
	NoPeerLinks bool
	// JSONLimits are JSON_MAX_DEPTH, JSON_MAX_ARRAY_ELEMENTS,
	// JSON_MAX_OBJECT_ENTRIES, JSON_MAX_NAME_LENGTH and
	// JSON_MAX_STRING_LENGTH: the inbound relay refuses a request whose
	// Content-Type is JSON and whose body breaks one of them or is not valid
	// JSON. 0 means no limit; all 0 (the default) turns JSON protection off.
	JSONLimits codec.JSONLimits
	// XMLLimits are XML_MAX_DEPTH, XML_MAX_CHILDREN, XML_MAX_ATTRIBUTES,
	// XML_MAX_NAME_LENGTH, XML_MAX_TEXT_LENGTH and XML_MAX_ATTRIBUTE_LENGTH,
	// as JSONLimits for XML bodies; with any set, a DOCTYPE is refused too.
	// Default: all 0, XML protection off.
	XMLLimits codec.XMLLimits
	// JSONResponses is JSON_RESPONSES: the outbound relay also checks the
	// JSON responses it opens against JSONLimits and answers 502 for one
	// that fails. Default false.
	JSONResponses bool
	// XMLResponses is XML_RESPONSES, JSONResponses for XML.
	XMLResponses bool

	// SessionLifetime is SESSION_LIFETIME, how long an inbound relay keeps a
	// session it paired; the outbound relay pairs anew at 75% of it.
	// Default 1 h, from 1 min to 24 h.
	SessionLifetime time.Duration

	// TLS is every hop's TLS, from the TLS_*, PEER_* and UPSTREAM_*
	// variables (cmd/pqrelay loads and checks the files): with
	// TLS.Listener set the relay serves HTTPS; https:// peers and an
	// https:// UPSTREAM are dialled with TLS.Peer and TLS.Upstream.
	// Default nil: plain HTTP, and https:// peers and upstreams verified
	// against the system roots without a client certificate.
	TLS *tlsconf.Set

	// Signing is UPSTREAM_SIGNING and the SIGNING_* variables: how the
	// inbound relay signs every request it sends to the upstream (after
	// HEADERS are set and hop-by-hop headers dropped, so that what is
	// signed is what is sent). Default: Scheme empty, no signing.
	Signing upsign.Config
}

// Role is RELAY_ROLE: which of the two roles a relay serves. Splitting them
// in production means a relay next to the API cannot be used as an entry
// point by anyone holding a token, and a relay next to the app opens no
// frames from the network.
type Role uint8

const (
	// RoleBoth serves app requests and relay frames, as the reference
	// product does. The default.
	RoleBoth Role = iota
	// RoleOutbound serves app requests only: it refuses pairing and frames
	// (MTE_OUTBOUND_ONLY) and needs no UPSTREAM.
	RoleOutbound
	// RoleInbound serves pairing and frames only: it refuses app requests
	// (MTE_INBOUND_ONLY) and needs no OUTBOUND_TOKEN.
	RoleInbound
)

// ParseRole reads a RELAY_ROLE value; its error says what is expected,
// for the caller to prefix with the variable's name.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if s == name {
			return Role(r), nil
		}
	}
	return 0, errors.New("must be both, outbound or inbound, got " + strconv.Quote(s))
}

var roleNames = [...]string{RoleBoth: "both", RoleOutbound: "outbound", RoleInbound: "inbound"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

func (r Role) outbound() bool { return r != RoleInbound }
func (r Role) inbound() bool  { return r != RoleOutbound }

// Header is one HEADERS field.
type Header struct{ Name, Value string }

// Defaults.
const (
	DefaultMaxBodyBytes   = 5 << 20
	DefaultMaxHeaderBytes = 16 << 10
	DefaultTimeout        = 30 * time.Second
	// DefaultUpstreamTimeout stays under DefaultTimeout, the default
	// PEER_TIMEOUT (see Config.UpstreamTimeout).
	DefaultUpstreamTimeout = 25 * time.Second
	DefaultIdleTimeout     = 120 * time.Second
	// MinTokenLen is the shortest OUTBOUND_TOKEN accepted: 16 random
	// characters are beyond guessing online, and a token is compared as a
	// SHA-256 hash, so its length does not show in timing.
	MinTokenLen = 16
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
	for _, d := range []*time.Duration{&c.PeerTimeout, &c.ReadTimeout} {
		if *d == 0 {
			*d = DefaultTimeout
		}
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
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
	if c.TLS == nil {
		c.TLS = tlsconf.Default()
	}
	return c
}

// Validate checks c (after defaults); errors are one line naming the
// environment variable. Variables the relay's role does not use (UPSTREAM
// for RoleOutbound, OUTBOUND_TOKEN for RoleInbound) are not checked.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Role > RoleInbound {
		return errors.New("RELAY_ROLE: must be both, outbound or inbound")
	}
	switch {
	case len(c.Domains) > 0 && !c.Role.inbound():
		return errors.New("DOMAIN_MAP: relay A (RELAY_ROLE=outbound) serves no upstream; set it on relay B")
	case len(c.Domains) > 0 && c.Upstream != "":
		return errors.New("DOMAIN_MAP: set either UPSTREAM or DOMAIN_MAP, not both; with DOMAIN_MAP every entry names its upstream")
	case c.Role.inbound() && len(c.Domains) == 0:
		if _, _, err := parseUpstream(c.Upstream); err != nil {
			return err
		}
	}
	if err := validateSecret(c.ClientIDSecret); err != nil {
		return errors.New("CLIENT_ID_SECRET: " + err.Error())
	}
	if c.Role.outbound() {
		if err := validateToken(c.OutboundToken); err != nil {
			return errors.New("OUTBOUND_TOKEN: " + err.Error())
		}
	}
	switch {
	case c.MaxBodyBytes < 0 || c.MaxBodyBytes > 1<<30:
		return errors.New("MAX_BODY_BYTES: must be between 1 and 1073741824")
	case c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20:
		return errors.New("MAX_HEADER_BYTES: must be between 1024 and 1048576")
	case c.PeerTimeout < 0:
		return errors.New("PEER_TIMEOUT: must be positive")
	case c.UpstreamTimeout < 0:
		return errors.New("UPSTREAM_TIMEOUT: must be positive")
	case c.ReadTimeout < 0:
		return errors.New("READ_TIMEOUT: must be positive")
	case c.IdleTimeout < 0:
		return errors.New("IDLE_TIMEOUT: must be positive")
	case c.IdleTimeout <= peerIdle:
		return errors.New("IDLE_TIMEOUT: must be longer than 30s, the outbound relay's idle limit toward peers")
	case c.SessionLifetime < session.MinLifetime || c.SessionLifetime > session.MaxLifetime:
		return errors.New("SESSION_LIFETIME: must be between 1m and 24h")
	}
	if err := validateLimits(c); err != nil {
		return err
	}
	if err := c.checkHeaders(c.Headers); err != nil {
		return errors.New("HEADERS: " + err.Error())
	}
	if c.Signing.Scheme != "" {
		if !c.Role.inbound() {
			return errors.New("UPSTREAM_SIGNING: relay A (RELAY_ROLE=outbound) sends nothing to an upstream; set it on relay B")
		}
		if _, err := upsign.New(c.Signing); err != nil {
			return err
		}
	}
	// Checked in every role, so that a relay whose role changes later
	// does not start to fail then.
	if _, err := parseRoutes("PASS_THROUGH_ROUTES", c.PassThroughRoutes, "MTE_ROUTES", c.MTERoutes); err != nil {
		return err
	}
	for _, p := range c.AllowedPeers {
		if _, err := parsePeerOrigin(p); err != nil {
			return errors.New("ALLOWED_PEERS: " + quoteName(p) + " is not an origin like https://relay.example.com:8443")
		}
	}
	if err := c.validateCORS(); err != nil {
		return err
	}
	return c.validateDomains()
}

// validateDomains checks each DOMAIN_MAP entry's values by the rules of the
// variables they stand in for; each error names the entry and the field.
func (c Config) validateDomains() error {
	seen := map[string]bool{}
	for _, d := range c.Domains {
		prefix := "DOMAIN_MAP: " + quoteName(d.Host) + ": "
		host, err := domainKey(d.Host)
		switch {
		case err != nil:
			return errors.New(prefix + err.Error())
		case seen[host]:
			return errors.New(prefix + "the host is listed twice (keys are case-insensitive)")
		}
		seen[host] = true
		if _, _, err := parseUpstream(d.Upstream); err != nil {
			return errors.New(prefix + "upstream: " + strings.TrimPrefix(err.Error(), "UPSTREAM: "))
		}
		if d.ClientIDSecret != "" {
			if err := validateSecret(d.ClientIDSecret); err != nil {
				return errors.New(prefix + "client_id_secret: " + err.Error())
			}
		}
		if d.OutboundToken != "" {
			if err := validateToken(d.OutboundToken); err != nil {
				return errors.New(prefix + "outbound_token: " + err.Error())
			}
		}
		if err := c.checkHeaders(d.Headers); err != nil {
			return errors.New(prefix + "headers: " + err.Error())
		}
		pt, mte := c.PassThroughRoutes, c.MTERoutes
		if d.PassThroughRoutes != nil {
			pt = *d.PassThroughRoutes
		}
		if d.MTERoutes != nil {
			mte = *d.MTERoutes
		}
		if _, err := parseRoutes(domainField(d.Host, "pass_through_routes"), pt, domainField(d.Host, "mte_routes"), mte); err != nil {
			return err
		}
		for _, o := range d.CORSOrigins {
			if err := c.checkCORSOrigin(o); err != nil {
				if _, ok := corsOrigin(o); ok {
					return errors.New(prefix + "cors_origins: " + quoteName(o) + " cannot be combined with CORS_CREDENTIALS=true; browsers refuse credentials with * and any site's sandboxed frames send Origin: null")
				}
				return errors.New(prefix + "cors_origins: " + err.Error())
			}
		}
	}
	return nil
}

// validateSecret applies CLIENT_ID_SECRET's rules; the error lacks the name.
func validateSecret(secret string) error {
	switch {
	case len(secret) < session.MinSecretLen:
		return errors.New("must be at least 32 characters, the same on both relays")
	case weakSecret(secret):
		return errors.New("too predictable (a repeated pattern, or too few different characters); use random characters, e.g. openssl rand -hex 32")
	}
	return nil
}

// validateToken applies OUTBOUND_TOKEN's rules; the error lacks the name.
func validateToken(token string) error {
	switch {
	case token == "":
		return errors.New("required; apps send it in x-mte-outbound-token")
	case len(token) < MinTokenLen:
		return errors.New("must be at least 16 characters, e.g. openssl rand -hex 16")
	case !visibleASCII(token):
		return errors.New("must be visible ASCII characters only (no spaces or controls), since apps send it as a header value")
	case periodic(token):
		return errors.New("too predictable (a repeated pattern); use random characters, e.g. openssl rand -hex 16")
	}
	return nil
}

// checkHeaders applies HEADERS' rules to hs; the error lacks the name.
func (c Config) checkHeaders(hs []Header) error {
	for _, h := range hs {
		name := []byte(h.Name)
		switch {
		case !codec.ValidHeaderName(name) || !codec.ValidHeaderValue([]byte(h.Value)) || isControl(name):
			return errors.New(quoteName(h.Name) + " is not a valid header to add")
		case isHopByHop(name, nil) || bytes.EqualFold(name, strContentLength) || bytes.EqualFold(name, strHost):
			// Set on every request and response, these would redefine how
			// messages are framed or routed: a request smuggling tool.
			return errors.New(quoteName(h.Name) + " describes the connection or the message's framing; relays set it themselves")
		case hasPrefixFold(name, accessControlPrefix):
			return errors.New(quoteName(h.Name) + " is a CORS header; set CORS_ORIGINS, CORS_CREDENTIALS and CORS_EXPOSE_HEADERS instead")
		case c.Signing.Scheme != "" && c.Signing.Replaces(h.Name):
			return errors.New(quoteName(h.Name) + " would be replaced by relay B's upstream signature (UPSTREAM_SIGNING)")
		}
	}
	return nil
}

// validateCORS checks the CORS_* variables. The Fetch standard's CORS check
// never lets a credentialed response through with Access-Control-Allow-
// Origin: *, and Origin: null is what any site's sandboxed iframe sends, so
// neither may be combined with CORS_CREDENTIALS.
func (c Config) validateCORS() error {
	for _, o := range c.CORSOrigins {
		if err := c.checkCORSOrigin(o); err != nil {
			if _, ok := corsOrigin(o); ok {
				return errors.New("CORS_CREDENTIALS: " + err.Error())
			}
			return errors.New("CORS_ORIGINS: " + err.Error())
		}
	}
	for _, m := range c.CORSMethods {
		if !codec.ValidHeaderName([]byte(m)) {
			return errors.New("CORS_METHODS: " + quoteName(m) + " is not a method name")
		}
	}
	for _, h := range c.CORSExposeHeaders {
		if !codec.ValidHeaderName([]byte(h)) {
			return errors.New("CORS_EXPOSE_HEADERS: " + quoteName(h) + " is not a header name")
		}
	}
	return nil
}

// checkCORSOrigin checks one CORS_ORIGINS entry against CORS_CREDENTIALS;
// the error lacks the variable's name.
func (c Config) checkCORSOrigin(o string) error {
	switch canonical, ok := corsOrigin(o); {
	case !ok:
		return errors.New(quoteName(o) + " is not an origin like https://app.example.com, nor null or *")
	case c.CORSCredentials && canonical == "*":
		return errors.New("true cannot be combined with CORS_ORIGINS=*; browsers refuse credentials with a wildcard origin, so list the origins")
	case c.CORSCredentials && canonical == "null":
		return errors.New("true cannot be combined with null in CORS_ORIGINS; any site's sandboxed frames send Origin: null")
	}
	return nil
}

// validateLimits checks the message-protection settings.
func validateLimits(c Config) error {
	j, x := c.JSONLimits, c.XMLLimits
	for _, l := range []struct {
		name  string
		value int
	}{
		{"JSON_MAX_DEPTH", j.MaxDepth}, {"JSON_MAX_ARRAY_ELEMENTS", j.MaxArrayElements},
		{"JSON_MAX_OBJECT_ENTRIES", j.MaxObjectEntries}, {"JSON_MAX_NAME_LENGTH", j.MaxNameLength},
		{"JSON_MAX_STRING_LENGTH", j.MaxStringLength}, {"XML_MAX_DEPTH", x.MaxDepth},
		{"XML_MAX_CHILDREN", x.MaxChildren}, {"XML_MAX_ATTRIBUTES", x.MaxAttributes},
		{"XML_MAX_NAME_LENGTH", x.MaxNameLength}, {"XML_MAX_TEXT_LENGTH", x.MaxTextLength},
		{"XML_MAX_ATTRIBUTE_LENGTH", x.MaxAttributeLength},
	} {
		if l.value < 0 {
			return errors.New(l.name + ": must be 0 (no limit) or a positive number")
		}
	}
	switch {
	case j.MaxDepth > codec.MaxNesting:
		return errors.New("JSON_MAX_DEPTH: must be at most " + strconv.Itoa(codec.MaxNesting) + ", the deepest nesting the relay's scanner follows")
	case x.MaxDepth > codec.MaxNesting:
		return errors.New("XML_MAX_DEPTH: must be at most " + strconv.Itoa(codec.MaxNesting) + ", the deepest nesting the relay's scanner follows")
	case x.MaxAttributes > codec.MaxElementAttributes:
		return errors.New("XML_MAX_ATTRIBUTES: must be at most " + strconv.Itoa(codec.MaxElementAttributes) + ", the most attributes of one element the relay's scanner checks for duplicates")
	case c.JSONResponses && !j.Enabled():
		return errors.New("JSON_RESPONSES: applies only with a JSON_MAX_* limit set")
	case c.XMLResponses && !x.Enabled():
		return errors.New("XML_RESPONSES: applies only with an XML_MAX_* limit set")
	}
	return nil
}

// Warnings lists settings that are allowed but probably wrong, one line each
// naming the variable, for the log at start-up.
func (c Config) Warnings() []string {
	c = c.withDefaults()
	var w []string
	// A warning, not a refusal: UPSTREAM_TIMEOUT acts on the inbound relay
	// and PEER_TIMEOUT on the outbound one, usually two processes, and this
	// relay cannot see its peers' values. A relay with one role has only one
	// of the two.
	if c.Role == RoleBoth && c.UpstreamTimeout >= c.PeerTimeout {
		w = append(w, "UPSTREAM_TIMEOUT ("+c.UpstreamTimeout.String()+") is not shorter than PEER_TIMEOUT ("+
			c.PeerTimeout.String()+"): an outbound relay with this PEER_TIMEOUT gives up first, and apps see MTE_PEER_TIMEOUT instead of MTE_UPSTREAM_TIMEOUT")
	}
	if c.Role.outbound() && len(c.AllowedPeers) == 0 {
		w = append(w, "ALLOWED_PEERS is empty: in the outbound role, token holders may name any x-mte-upstream origin")
	}
	// Message protection acts on requests at the inbound relay and on
	// responses at the outbound relay: limits set where neither applies
	// protect nothing, which an operator would not guess.
	if c.Role == RoleInbound && (c.JSONResponses || c.XMLResponses) {
		w = append(w, "JSON_RESPONSES/XML_RESPONSES act on the outbound relay, and RELAY_ROLE is inbound: set them on relay A")
	}
	if c.Role == RoleInbound {
		for _, d := range c.Domains {
			if d.OutboundToken != "" || d.CORSOrigins != nil {
				w = append(w, "DOMAIN_MAP: "+quoteName(d.Host)+": outbound_token and cors_origins act on app requests, and RELAY_ROLE is inbound: they have no effect")
			}
		}
	}
	if c.Role == RoleOutbound && (c.JSONLimits.Enabled() && !c.JSONResponses || c.XMLLimits.Enabled() && !c.XMLResponses) {
		w = append(w, "JSON_MAX_*/XML_MAX_* check requests on the inbound relay, and RELAY_ROLE is outbound: set them on relay B (or set JSON_RESPONSES/XML_RESPONSES to check responses here)")
	}
	if c.Role == RoleOutbound && (strings.TrimSpace(c.PassThroughRoutes) != "" || strings.TrimSpace(c.MTERoutes) != "") {
		w = append(w, "PASS_THROUGH_ROUTES/MTE_ROUTES act on the inbound relay, and RELAY_ROLE is outbound: they are ignored here; set them on relay B")
	}
	return w
}

// weakSecret reports a CLIENT_ID_SECRET that is predictable on its face:
// periodic, or whose characters' frequencies carry under minSecretBits
// (Shannon's estimate: the sum over its bytes of -log2 of each byte's
// frequency). The estimate is a floor that catches mistakes (32 spaces,
// "aaaa…ab", "abab…"), not a strength meter: random hex of 32 characters
// lands far above it (TestRandomSecretsAccepted), while a chosen phrase can
// pass with little real entropy.
func weakSecret(s string) bool {
	if periodic(s) {
		return true
	}
	var count [256]int
	for i := 0; i < len(s); i++ {
		count[s[i]]++
	}
	bits := 0.0
	for _, n := range count {
		if n > 0 {
			bits -= float64(n) * math.Log2(float64(n)/float64(len(s)))
		}
	}
	return bits < minSecretBits
}

const minSecretBits = 64

// periodic reports whether s repeats a string of at most half its length
// ("abcabcabcab", "passwordpassword"). A random string of n characters from
// an alphabet of 16 is periodic with a probability near 16^(-n/2).
func periodic(s string) bool {
	for p := 1; p <= len(s)/2; p++ {
		if s[p:] == s[:len(s)-p] {
			return true
		}
	}
	return false
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// corsOrigin returns a CORS_ORIGINS entry as browsers serialize an origin
// in the Origin header (RFC 6454 §6.2: lower-case scheme and host, no
// default port, no path), which is what requests are compared with; "*" and
// "null" stay as they are.
func corsOrigin(raw string) (string, bool) {
	if raw == "*" || raw == "null" {
		return raw, true
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || u.Opaque != "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || !validAuthority(u) {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// validAuthority reports whether u's authority has a host and, if it names a
// port, one from 1 to 65535: url.Parse takes "h:" and "h:99999".
func validAuthority(u *url.URL) bool {
	if u.Hostname() == "" || strings.HasSuffix(u.Host, ":") {
		return false
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		return err == nil && n >= 1 && n <= 65535
	}
	return true
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
	if !validAuthority(u) {
		return nil, "", errors.New("UPSTREAM: " + quoteName(u.Host) + " needs a host and, if it names a port, one from 1 to 65535")
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
