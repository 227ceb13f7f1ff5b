package main

import (
	"crypto/fips140"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/session"
)

// settings is everything main reads from the environment.
type settings struct {
	proxy       proxy.Config
	port        int
	addr        string
	metricsPort int                  // 0: no metrics listener
	redis       *session.RedisConfig // nil: sessions in process memory
	tls         *tlsconf.Set         // files checked; Listener nil: plain HTTP
	logFormat   string               // "text" or "json"
	logLevel    slog.Level
	// shutdownDelay is how long the relay keeps accepting after SIGTERM
	// with readiness at 503, before it closes its listener and drains.
	shutdownDelay time.Duration
}

// variable is one environment variable: the parser and `pqrelay -h` both
// read this table, so the help cannot list a variable the parser ignores or
// miss one it reads.
type variable struct {
	name    string
	def     string // as -h shows it; "required" for the three without one
	meaning string
	// set parses a non-empty value into st; its error says what is
	// expected, without the variable's name, which loadSettings adds.
	set func(st *settings, v string) error
}

var variables = []variable{
	{"RELAY_ROLE", proxy.RoleBoth.String(), "both, outbound (app requests only) or inbound (pairing and frames only)",
		func(st *settings, v string) (err error) { st.proxy.Role, err = proxy.ParseRole(v); return err }},
	{"UPSTREAM", "required unless RELAY_ROLE=outbound or DOMAIN_MAP", "the API the inbound relay proxies to: http(s)://host[:port][/base-path]",
		func(st *settings, v string) error { st.proxy.Upstream = v; return nil }},
	{"DOMAIN_MAP", "unset: one API, UPSTREAM", `instead of UPSTREAM, several APIs chosen by Host: {"api.example.com":{"upstream":"http://10.0.0.5:9000",...}} (README)`,
		func(st *settings, v string) (err error) {
			st.proxy.Domains, err = proxy.ParseDomainMap(v)
			if err != nil {
				// ParseDomainMap names DOMAIN_MAP itself; loadSettings adds it.
				return errors.New(strings.TrimPrefix(err.Error(), "DOMAIN_MAP: "))
			}
			return nil
		}},
	{"CLIENT_ID_SECRET", "required", "at least 32 characters, the same on both relays of a pair",
		func(st *settings, v string) error { st.proxy.ClientIDSecret = v; return nil }},
	{"OUTBOUND_TOKEN", "required unless RELAY_ROLE=inbound", "what apps send in x-mte-outbound-token: 16+ visible ASCII characters",
		func(st *settings, v string) error { st.proxy.OutboundToken = v; return nil }},
	{"REDIS_URL", "unset: sessions in memory", "redis://[user:pass@]host:port[/db] or rediss://… (docs/REDIS.md)",
		func(st *settings, v string) error {
			rc, err := session.ParseRedisURL(v)
			if err != nil {
				// ParseRedisURL names REDIS_URL itself and never echoes a password.
				return errors.New(strings.TrimPrefix(err.Error(), "REDIS_URL: "))
			}
			st.redis = &rc
			return nil
		}},
	{"REDIS_OUTAGE", "refuse", "refuse or local-window: shared sessions while Redis is down (docs/REDIS.md)",
		func(st *settings, v string) error {
			switch {
			case v == "refuse":
			case st.redis == nil:
				return errors.New("applies only with REDIS_URL")
			case v == "local-window":
				// docs/REDIS.md "Outages": availability over cross-replica
				// replay protection while Redis is down.
				st.redis.OutageLocalWindow = true
			default:
				return errors.New("must be refuse (the default) or local-window, got " + strconv.Quote(v))
			}
			return nil
		}},
	{"PORT", "8080", "the relay's listening port", portInto(func(st *settings) *int { return &st.port }, false)},
	{"LISTEN_ADDR", "all interfaces", "the listening address of the relay and metrics ports",
		func(st *settings, v string) error { st.addr = v; return nil }},
	{"METRICS_PORT", "9090", "Prometheus metrics at GET /metrics on this port; 0 turns them off",
		portInto(func(st *settings) *int { return &st.metricsPort }, true)},
	{"LOG_FORMAT", "text", "text or json", func(st *settings, v string) error {
		if v != "text" && v != "json" {
			return errors.New("must be text or json, got " + strconv.Quote(v))
		}
		st.logFormat = v
		return nil
	}},
	{"LOG_LEVEL", "info", "debug, info, warn or error", func(st *settings, v string) error {
		if err := st.logLevel.UnmarshalText([]byte(v)); err != nil || strings.ContainsAny(v, "+-") {
			return errors.New("must be debug, info, warn or error, got " + strconv.Quote(v))
		}
		return nil
	}},
	{"DEBUG", "false", "true: LOG_LEVEL=debug, and each refused request is logged; secrets never are",
		func(st *settings, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false, got " + strconv.Quote(v))
			}
			if b {
				st.logLevel = slog.LevelDebug
			}
			return nil
		}},
	{"ACCESS_LOG", "false", "true: one log line per request (role, method, path without query, status, code, duration, sizes, request id)",
		boolInto(func(st *settings) *bool { return &st.proxy.AccessLog })},
	{"PEER_LINKS", "true", "false: the outbound relay sends each request to its peer over HTTP, without relay links",
		func(st *settings, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false, got " + strconv.Quote(v))
			}
			st.proxy.NoPeerLinks = !b
			return nil
		}},
	{"HEADERS", "none", `JSON object of headers set on every upstream request and app response, e.g. {"X-Env":"prod"}`,
		func(st *settings, v string) error {
			var m map[string]string
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				return errors.New(`must be a JSON object of strings, e.g. {"X-Env":"prod"}`)
			}
			st.proxy.Headers = proxy.HeadersFromMap(m)
			return nil
		}},
	{"CORS_ORIGINS", "none", "comma-separated origins (or *) the outbound relay answers with CORS headers",
		func(st *settings, v string) error { st.proxy.CORSOrigins = splitList(v); return nil }},
	{"CORS_CREDENTIALS", "false", "true: allow credentials for listed CORS origins (not with * or null)",
		boolInto(func(st *settings) *bool { return &st.proxy.CORSCredentials })},
	{"CORS_EXPOSE_HEADERS", "none", "comma-separated response headers browser scripts may read",
		func(st *settings, v string) error { st.proxy.CORSExposeHeaders = splitList(v); return nil }},
	{"CORS_METHODS", "GET,POST,PUT,DELETE", "methods announced in preflight answers", func(st *settings, v string) error {
		st.proxy.CORSMethods = splitList(v)
		for _, m := range st.proxy.CORSMethods {
			if strings.ToUpper(m) != m || strings.ContainsAny(m, " \t\"") {
				return errors.New("must be a comma-separated list of upper-case methods, e.g. GET,POST")
			}
		}
		return nil
	}},
	{"PASS_THROUGH_ROUTES", "none", "comma-separated RE2 patterns over the path: plain requests the inbound relay proxies unsealed",
		func(st *settings, v string) error { st.proxy.PassThroughRoutes = v; return nil }},
	{"MTE_ROUTES", "any path", "comma-separated RE2 patterns over the path: the only paths sealed requests may reach",
		func(st *settings, v string) error { st.proxy.MTERoutes = v; return nil }},
	{"ALLOWED_PEERS", "any", "comma-separated origins x-mte-upstream may name; set it in production",
		func(st *settings, v string) error { st.proxy.AllowedPeers = splitList(v); return nil }},
	{"MAX_BODY_BYTES", strconv.Itoa(proxy.DefaultMaxBodyBytes), "largest request or response body",
		intInto(func(st *settings) *int { return &st.proxy.MaxBodyBytes })},
	{"MAX_HEADER_BYTES", strconv.Itoa(proxy.DefaultMaxHeaderBytes), "largest header block",
		intInto(func(st *settings) *int { return &st.proxy.MaxHeaderBytes })},
	{"PEER_TIMEOUT", durationText(proxy.DefaultTimeout), "how long the outbound relay waits for the inbound relay",
		durationInto(func(st *settings) *time.Duration { return &st.proxy.PeerTimeout })},
	{"UPSTREAM_TIMEOUT", durationText(proxy.DefaultUpstreamTimeout), "how long the inbound relay waits for the upstream",
		durationInto(func(st *settings) *time.Duration { return &st.proxy.UpstreamTimeout })},
	{"READ_TIMEOUT", durationText(proxy.DefaultTimeout), "how long a client may take to send a request",
		durationInto(func(st *settings) *time.Duration { return &st.proxy.ReadTimeout })},
	{"IDLE_TIMEOUT", durationText(proxy.DefaultIdleTimeout), "how long an idle keep-alive connection is kept (over 30s)",
		durationInto(func(st *settings) *time.Duration { return &st.proxy.IdleTimeout })},
	// Message protection: limits on JSON and XML request bodies, checked by
	// the inbound relay (and on responses by the outbound relay with
	// JSON_RESPONSES, XML_RESPONSES); 0 is no limit.
	{"JSON_MAX_DEPTH", "0: none", "nesting of JSON arrays and objects (at most 1024)",
		limitInto(func(st *settings) *int { return &st.proxy.JSONLimits.MaxDepth })},
	{"JSON_MAX_ARRAY_ELEMENTS", "0: none", "elements of one JSON array",
		limitInto(func(st *settings) *int { return &st.proxy.JSONLimits.MaxArrayElements })},
	{"JSON_MAX_OBJECT_ENTRIES", "0: none", "entries of one JSON object",
		limitInto(func(st *settings) *int { return &st.proxy.JSONLimits.MaxObjectEntries })},
	{"JSON_MAX_NAME_LENGTH", "0: none", "a JSON entry's name, bytes after unescaping",
		limitInto(func(st *settings) *int { return &st.proxy.JSONLimits.MaxNameLength })},
	{"JSON_MAX_STRING_LENGTH", "0: none", "a JSON string value, bytes after unescaping",
		limitInto(func(st *settings) *int { return &st.proxy.JSONLimits.MaxStringLength })},
	{"XML_MAX_DEPTH", "0: none", "nesting of XML elements (at most 1024)",
		limitInto(func(st *settings) *int { return &st.proxy.XMLLimits.MaxDepth })},
	{"XML_MAX_CHILDREN", "0: none", "child nodes of one XML element",
		limitInto(func(st *settings) *int { return &st.proxy.XMLLimits.MaxChildren })},
	{"XML_MAX_ATTRIBUTES", "0: none", "attributes of one XML element",
		limitInto(func(st *settings) *int { return &st.proxy.XMLLimits.MaxAttributes })},
	{"XML_MAX_NAME_LENGTH", "0: none", "XML element and attribute names, bytes",
		limitInto(func(st *settings) *int { return &st.proxy.XMLLimits.MaxNameLength })},
	{"XML_MAX_TEXT_LENGTH", "0: none", "one XML text run or CDATA section, bytes",
		limitInto(func(st *settings) *int { return &st.proxy.XMLLimits.MaxTextLength })},
	{"XML_MAX_ATTRIBUTE_LENGTH", "0: none", "one XML attribute value, bytes",
		limitInto(func(st *settings) *int { return &st.proxy.XMLLimits.MaxAttributeLength })},
	{"JSON_RESPONSES", "false", "true: the outbound relay also checks JSON responses against the JSON limits",
		boolInto(func(st *settings) *bool { return &st.proxy.JSONResponses })},
	{"XML_RESPONSES", "false", "true: the outbound relay also checks XML responses against the XML limits",
		boolInto(func(st *settings) *bool { return &st.proxy.XMLResponses })},
	// Upstream request signing; proxy.Config.Validate checks these (package
	// upsign names the variable in each error).
	{"UPSTREAM_SIGNING", "unset: off", "cavage or rfc9421: the inbound relay signs every request it sends to UPSTREAM",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.Scheme })},
	{"SIGNING_ALGORITHM", "required with signing", "e.g. hmac-sha256, rsa-sha256 (cavage); hmac-sha256, ed25519, ecdsa-p256-sha256, rsa-pss-sha512 (rfc9421)",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.Algorithm })},
	{"SIGNING_KEY_ID", "required with signing", "the key id the upstream looks the key up by",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.KeyID })},
	{"SIGNING_SECRET", "none", "the HMAC key, 16 bytes or more",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.Secret })},
	{"SIGNING_KEY_FILE", "none", "PEM private key for the asymmetric algorithms",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.KeyFile })},
	{"SIGNING_HEADERS", "per scheme", "what the signature covers: header names or rfc9421 component identifiers",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.Headers })},
	{"SIGNING_HEADER", "Authorization", "cavage only: Authorization or Signature",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.Header })},
	{"SIGNING_SIGNATURE_ENCODING", "base64", "cavage only: base64 or tyk",
		stringInto(func(st *settings) *string { return &st.proxy.Signing.Encoding })},
	{"SIGNING_MAX_AGE", "none", "rfc9421 only: expires = created + this duration",
		durationInto(func(st *settings) *time.Duration { return &st.proxy.Signing.MaxAge })},
	{"SHUTDOWN_DELAY", "0s", "after SIGTERM: how long GET /api/mte-ready answers 503 while the relay still accepts, before it drains",
		func(st *settings, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > 5*time.Minute {
				return errors.New("must be a duration from 0s to 5m, got " + strconv.Quote(v))
			}
			st.shutdownDelay = d
			return nil
		}},
	{"SESSION_LIFETIME", durationText(session.DefaultLifetime), "how long the inbound relay keeps a session (1m to 24h)",
		durationInto(func(st *settings) *time.Duration { return &st.proxy.SessionLifetime })},
	tlsVariable("TLS_CERT_FILE", "none", "PEM certificate (chain); with TLS_KEY_FILE the relay serves HTTPS on PORT"),
	tlsVariable("TLS_KEY_FILE", "none", "PEM private key of TLS_CERT_FILE"),
	tlsVariable("TLS_CLIENT_CA_FILE", "none", "require client certificates signed by this CA (mutual TLS)"),
	tlsVariable("TLS_CLIENT_NAMES", "any", "comma-separated DNS/URI SANs or CNs a client certificate must carry"),
	tlsVariable("TLS_MIN_VERSION", "1.2", "1.2 or 1.3"),
	tlsVariable("PEER_CA_FILE", "system roots", "trust for relay B's certificate (https:// peers)"),
	tlsVariable("PEER_CERT_FILE", "none", "relay A's client certificate for B's mutual TLS"),
	tlsVariable("PEER_KEY_FILE", "none", "private key of PEER_CERT_FILE"),
	tlsVariable("PEER_SERVER_NAME", "the peer's host", "name to verify B's certificate against, and SNI"),
	tlsVariable("UPSTREAM_CA_FILE", "system roots", "trust for the API's certificate (https:// UPSTREAM)"),
	tlsVariable("UPSTREAM_CERT_FILE", "none", "relay B's client certificate for the API's mutual TLS"),
	tlsVariable("UPSTREAM_KEY_FILE", "none", "private key of UPSTREAM_CERT_FILE"),
	tlsVariable("UPSTREAM_SERVER_NAME", "UPSTREAM's host", "name to verify the API's certificate against, and SNI"),
	tlsVariable("REDIS_CA_FILE", "system roots", "trust for Redis's certificate (rediss://)"),
	tlsVariable("REDIS_CERT_FILE", "none", "client certificate for Redis"),
	tlsVariable("REDIS_KEY_FILE", "none", "private key of REDIS_CERT_FILE"),
}

// tlsVariable is a row for a TLS variable: internal/tlsconf reads and checks
// it (loadTLS), as a group, since the files of one hop only mean something
// together; the row gives -h its line.
func tlsVariable(name, def, what string) variable {
	return variable{name, def, what, func(*settings, string) error { return nil }}
}

// loadSettings reads every variable of the table. Each error is one line
// naming the variable and saying what it expects.
func loadSettings(getenv func(string) string) (settings, error) {
	st := settings{port: 8080, metricsPort: 9090, logFormat: "text", logLevel: slog.LevelInfo}
	if fips140.Enforced() {
		// In fips140=only mode crypto/cipher refuses GCM with caller-chosen
		// nonces, which the frame format uses (counter nonces); fips140=on
		// keeps every primitive in the FIPS module and works.
		return st, errors.New("GODEBUG: fips140=only is not supported; use GODEBUG=fips140=on")
	}
	for _, v := range variables {
		if val := getenv(v.name); val != "" {
			if err := v.set(&st, val); err != nil {
				return st, errors.New(v.name + ": " + err.Error())
			}
		}
	}
	if st.proxy.Signing.Scheme == "" {
		for _, name := range signingVariables {
			if getenv(name) != "" {
				return st, errors.New(name + ": set, but UPSTREAM_SIGNING is not; set UPSTREAM_SIGNING=cavage or rfc9421 to sign upstream requests")
			}
		}
	}
	st.proxy.Debug = st.logLevel <= slog.LevelDebug
	if err := st.proxy.Validate(); err != nil {
		return st, err
	}
	var err error
	st.tls, err = loadTLS(getenv, st.redis, st.proxy.Domains)
	st.proxy.TLS = st.tls
	return st, err
}

// loadTLS reads the TLS variables, refuses those that cannot apply, and
// opens and checks every file they name.
func loadTLS(getenv func(string) string, redis *session.RedisConfig, domains []proxy.Domain) (*tlsconf.Set, error) {
	ts, err := tlsconf.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if ts.Upstream.Configured() && !httpsUpstream(getenv("UPSTREAM"), domains) {
		return nil, errors.New(firstSet(getenv, "UPSTREAM") + ": applies only with an https:// UPSTREAM (or DOMAIN_MAP upstream)")
	}
	if ts.Redis.Configured() && (redis == nil || !redis.TLS) {
		return nil, errors.New(firstSet(getenv, "REDIS") + ": applies only with a rediss:// REDIS_URL")
	}
	set, err := tlsconf.Load(ts)
	if err != nil {
		return nil, err
	}
	if ts.Redis.Configured() {
		redis.TLSConfig = set.Redis.Config(redis.TLSServerName())
	}
	return set, nil
}

// httpsUpstream reports whether the relay dials an upstream over TLS: UPSTREAM
// or a DOMAIN_MAP entry's upstream is https://.
func httpsUpstream(upstream string, domains []proxy.Domain) bool {
	if strings.HasPrefix(upstream, "https://") {
		return true
	}
	for _, d := range domains {
		if strings.HasPrefix(d.Upstream, "https://") {
			return true
		}
	}
	return false
}

// firstSet names the first of a client side's file variables that is set.
func firstSet(getenv func(string) string, prefix string) string {
	for _, v := range []string{"_CA_FILE", "_CERT_FILE", "_KEY_FILE", "_SERVER_NAME"} {
		if getenv(prefix+v) != "" {
			return prefix + v
		}
	}
	return prefix + "_CA_FILE"
}

// signingVariables are the variables that only mean something with
// UPSTREAM_SIGNING set.
var signingVariables = []string{
	"SIGNING_ALGORITHM", "SIGNING_KEY_ID", "SIGNING_SECRET", "SIGNING_KEY_FILE",
	"SIGNING_HEADERS", "SIGNING_HEADER", "SIGNING_SIGNATURE_ENCODING", "SIGNING_MAX_AGE",
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func portInto(field func(*settings) *int, zeroAllowed bool) func(*settings, string) error {
	low, want := 1, "a port number from 1 to 65535"
	if zeroAllowed {
		low, want = 0, "0 (off) or a port number from 1 to 65535"
	}
	return func(st *settings, v string) error {
		p, err := strconv.Atoi(v)
		if err != nil || p < low || p > 65535 {
			return errors.New("must be " + want + ", got " + strconv.Quote(v))
		}
		*field(st) = p
		return nil
	}
}

func stringInto(field func(*settings) *string) func(*settings, string) error {
	return func(st *settings, v string) error { *field(st) = v; return nil }
}

func boolInto(field func(*settings) *bool) func(*settings, string) error {
	return func(st *settings, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false, got " + strconv.Quote(v))
		}
		*field(st) = b
		return nil
	}
}

func intInto(field func(*settings) *int) func(*settings, string) error {
	return func(st *settings, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errors.New("must be a positive number of bytes, got " + strconv.Quote(v))
		}
		*field(st) = n
		return nil
	}
}

// limitInto parses a message-protection limit: 0 means none.
func limitInto(field func(*settings) *int) func(*settings, string) error {
	return func(st *settings, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errors.New("must be 0 (no limit) or a positive number, got " + strconv.Quote(v))
		}
		*field(st) = n
		return nil
	}
}

func durationInto(field func(*settings) *time.Duration) func(*settings, string) error {
	return func(st *settings, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a positive duration like 30s or 2m, got " + strconv.Quote(v))
		}
		*field(st) = d
		return nil
	}
}

// durationText writes d as people set it: 1h rather than 1h0m0s.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
