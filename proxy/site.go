package proxy

import (
	"crypto/sha256"
	"net/url"

	"github.com/pqrelay/pqrelay/session"
	"github.com/valyala/fasthttp"
)

// site is one API this relay serves: everything the inbound role needs per
// API (its upstream, the secret its sessions pair under, their store, the
// headers it adds) and what the outbound role applies to app requests that
// reach the relay under the site's Host (token, CORS, response headers).
// A relay without DOMAIN_MAP has one site, built from UPSTREAM and the
// relay-wide variables; with DOMAIN_MAP, one per entry, chosen by Host
// (docs/ARCHITECTURE.md, "Several APIs behind one relay").
type site struct {
	// host is the DOMAIN_MAP key, "" for the relay-wide site.
	host    string
	secrets *session.Secrets
	// store holds the sessions paired under this site and only those: a
	// session is found only under the Host it was paired under. Nil for
	// the relay-wide site of a relay with DOMAIN_MAP, which serves no
	// frames.
	store session.Store

	upstream       *fasthttp.HostClient
	upstreamName   string // the upstream's host name, which its certificate must carry
	upstreamPrefix []byte // scheme://host/base-path that relayed URIs are appended to
	upstreamHost   []byte // the Host field of requests to the upstream
	extraHeaders   [][2][]byte

	// tokenHash is SHA-256 of the outbound token: tokens are compared as
	// hashes, so that timing reveals neither how much matched nor the
	// length.
	tokenHash [sha256.Size]byte
	cors      corsPolicy
	// routes are PASS_THROUGH_ROUTES and MTE_ROUTES, or the entry's; unset
	// on a relay without the inbound role, which ignores them.
	routes routes
}

// StoreOpener opens the session store of one site. namespace is "" for a
// relay without DOMAIN_MAP, else the entry's host, which a shared store
// keeps its keys under (docs/REDIS.md); secrets are the site's, which seal
// its sessions at rest. Server.Close closes what it opened.
type StoreOpener func(namespace string, secrets *session.Secrets) (session.Store, error)

// newSite builds a site for cfg, the relay's configuration with d's
// settings in place of the relay-wide ones.
func (s *Server) newSite(host string, cfg *Config, open StoreOpener) (*site, error) {
	secrets, err := session.NewSecrets(cfg.ClientIDSecret)
	if err != nil {
		return nil, err
	}
	st := &site{
		host:      host,
		secrets:   secrets,
		tokenHash: sha256.Sum256([]byte(cfg.OutboundToken)),
		cors:      newCORSPolicy(*cfg),
	}
	up, base, _ := parseUpstream(cfg.Upstream)
	if up == nil {
		// No UPSTREAM (RELAY_ROLE=outbound, or the relay-wide site beside
		// DOMAIN_MAP): the client below is never used, since frames are
		// refused before they would need it.
		up = &url.URL{Scheme: "http", Host: "upstream.invalid"}
	}
	st.upstreamPrefix = []byte(up.Scheme + "://" + up.Host + base)
	st.upstreamName = up.Hostname()
	st.upstreamHost = []byte(up.Host)
	st.upstream = &fasthttp.HostClient{
		Addr:                     addrWithPort(up.Host, up.Scheme == "https"),
		IsTLS:                    up.Scheme == "https",
		DialTimeout:              newDialer(upstreamTLS(cfg.TLS, up)).dial,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		MaxConns:                 maxConnsPerHost,
		MaxConnWaitTimeout:       cfg.UpstreamTimeout,
		MaxIdleConnDuration:      upstreamIdle,
		ReadBufferSize:           cfg.MaxHeaderBytes,
		WriteBufferSize:          writeBufferSize,
		MaxResponseBodySize:      cfg.MaxBodyBytes,
		RetryIfErr:               retryUpstream,
	}
	for _, h := range cfg.Headers {
		st.extraHeaders = append(st.extraHeaders, [2][]byte{[]byte(h.Name), []byte(h.Value)})
	}
	if cfg.Role.inbound() { // relay A ignores them (a warning says so)
		passThrough, mte := "PASS_THROUGH_ROUTES", "MTE_ROUTES"
		if host != "" {
			passThrough, mte = domainField(host, "pass_through_routes"), domainField(host, "mte_routes")
		}
		if st.routes, err = parseRoutes(passThrough, cfg.PassThroughRoutes, mte, cfg.MTERoutes); err != nil {
			return nil, err
		}
	}
	if open != nil {
		if st.store, err = open(host, secrets); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// domainConfig is cfg with d's settings in place of the relay-wide ones.
func domainConfig(cfg Config, d *Domain) Config {
	cfg.Upstream = d.Upstream
	if d.ClientIDSecret != "" {
		cfg.ClientIDSecret = d.ClientIDSecret
	}
	if d.OutboundToken != "" {
		cfg.OutboundToken = d.OutboundToken
	}
	if d.CORSOrigins != nil {
		cfg.CORSOrigins = d.CORSOrigins
	}
	if d.Headers != nil {
		cfg.Headers = d.Headers
	}
	if d.PassThroughRoutes != nil {
		cfg.PassThroughRoutes = *d.PassThroughRoutes
	}
	if d.MTERoutes != nil {
		cfg.MTERoutes = *d.MTERoutes
	}
	cfg.Domains = nil
	return cfg
}

// siteFor returns the site that serves frames, pairing and links arriving
// under host, nil when no DOMAIN_MAP entry names it. Without DOMAIN_MAP it
// is one pointer read.
func (s *Server) siteFor(host []byte) *site {
	if s.sites == nil {
		return s.site
	}
	return s.domainSite(host)
}

// appSite returns the site whose token, CORS origins and headers apply to
// an app request arriving under host: the entry's, else the relay-wide one.
func (s *Server) appSite(host []byte) *site {
	if s.sites == nil {
		return s.site
	}
	if st := s.domainSite(host); st != nil {
		return st
	}
	return s.site
}

// domainSite finds host's entry: the key with host's port first, then the
// key without a port. The lower-case copy is on the stack, and a map index
// by string(b) does not allocate.
func (s *Server) domainSite(host []byte) *site {
	var buf [maxHostKey]byte
	if len(host) > len(buf) {
		return nil
	}
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	h := buf[:len(host)]
	if st := s.sites[string(h)]; st != nil {
		return st
	}
	// The port is after the last colon, unless that colon is inside an
	// IPv6 literal's brackets.
	for i := len(h) - 1; i >= 0 && h[i] != ']'; i-- {
		if h[i] == ':' {
			return s.sites[string(h[:i])]
		}
	}
	return nil
}

// eachStore calls f with every site's store.
func (s *Server) eachStore(f func(session.Store)) {
	for _, st := range s.siteList {
		if st.store != nil {
			f(st.store)
		}
	}
}

// Close closes the session stores New opened. Call it after Shutdown.
func (s *Server) Close() error {
	var first error
	s.eachStore(func(st session.Store) {
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
	})
	return first
}

// StoreDegraded reports whether any site's store reports itself degraded
// (Redis unreachable), for the metrics gauge.
func (s *Server) StoreDegraded() bool {
	degraded := false
	s.eachStore(func(st session.Store) {
		if hr, ok := st.(healthReporter); ok && hr.Health() != nil {
			degraded = true
		}
	})
	return degraded
}
