package main

import (
	"crypto/fips140"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/pqrelay/pqrelay/internal/tlsconf"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/session"
	"github.com/pqrelay/pqrelay/upsign"
)

// settings is everything main reads from the environment.
type settings struct {
	proxy proxy.Config
	port  int
	addr  string
	redis *session.RedisConfig // nil: sessions in process memory
	tls   *tlsconf.Set         // files checked; Listener nil: plain HTTP
}

// loadSettings reads the environment variables of docs/ARCHITECTURE.md §6 and the ones
// pqrelay adds. Each error is one line naming the variable and saying what
// it expects.
func loadSettings(getenv func(string) string) (settings, error) {
	st := settings{port: 8080, addr: getenv("LISTEN_ADDR")}
	if fips140.Enforced() {
		// In fips140=only mode crypto/cipher refuses GCM with caller-chosen
		// nonces, which the frame format uses (counter nonces); fips140=on
		// keeps every primitive in the FIPS module and works.
		return st, errors.New("GODEBUG: fips140=only is not supported; use GODEBUG=fips140=on")
	}
	c := &st.proxy
	c.Upstream = getenv("UPSTREAM")
	c.ClientIDSecret = getenv("CLIENT_ID_SECRET")
	c.OutboundToken = getenv("OUTBOUND_TOKEN")
	var err error
	parse := func(name string, f func(string) error) {
		if v := getenv(name); v != "" && err == nil {
			if e := f(v); e != nil {
				err = errors.New(name + ": " + e.Error())
			}
		}
	}
	parse("PORT", func(v string) error {
		p, e := strconv.Atoi(v)
		if e != nil || p < 1 || p > 65535 {
			return errors.New("must be a port number from 1 to 65535, got " + strconv.Quote(v))
		}
		st.port = p
		return nil
	})
	parse("DEBUG", boolInto(&c.Debug))
	var peerLinks bool
	parse("PEER_LINKS", boolInto(&peerLinks))
	c.NoPeerLinks = getenv("PEER_LINKS") != "" && !peerLinks
	parse("HEADERS", func(v string) error {
		var m map[string]string
		if e := json.Unmarshal([]byte(v), &m); e != nil {
			return errors.New(`must be a JSON object of strings, e.g. {"X-Env":"prod"}`)
		}
		for k, val := range m {
			c.Headers = append(c.Headers, proxy.Header{Name: k, Value: val})
		}
		return nil
	})
	parse("RELAY_ROLE", func(v string) (e error) { c.Role, e = proxy.ParseRole(v); return e })
	parse("CORS_ORIGINS", func(v string) error { c.CORSOrigins = splitList(v); return nil })
	parse("CORS_CREDENTIALS", boolInto(&c.CORSCredentials))
	parse("CORS_EXPOSE_HEADERS", func(v string) error { c.CORSExposeHeaders = splitList(v); return nil })
	parse("CORS_METHODS", func(v string) error {
		c.CORSMethods = splitList(v)
		for _, m := range c.CORSMethods {
			if strings.ToUpper(m) != m || strings.ContainsAny(m, " \t\"") {
				return errors.New("must be a comma-separated list of upper-case methods, e.g. GET,POST")
			}
		}
		return nil
	})
	parse("ALLOWED_PEERS", func(v string) error { c.AllowedPeers = splitList(v); return nil })
	parse("MAX_BODY_BYTES", intInto(&c.MaxBodyBytes))
	parse("MAX_HEADER_BYTES", intInto(&c.MaxHeaderBytes))
	parse("PEER_TIMEOUT", durationInto(&c.PeerTimeout))
	parse("UPSTREAM_TIMEOUT", durationInto(&c.UpstreamTimeout))
	parse("READ_TIMEOUT", durationInto(&c.ReadTimeout))
	parse("IDLE_TIMEOUT", durationInto(&c.IdleTimeout))
	parse("SESSION_LIFETIME", durationInto(&c.SessionLifetime))
	for _, l := range []struct {
		name string
		dst  *int
	}{
		{"JSON_MAX_DEPTH", &c.JSONLimits.MaxDepth},
		{"JSON_MAX_ARRAY_ELEMENTS", &c.JSONLimits.MaxArrayElements},
		{"JSON_MAX_OBJECT_ENTRIES", &c.JSONLimits.MaxObjectEntries},
		{"JSON_MAX_NAME_LENGTH", &c.JSONLimits.MaxNameLength},
		{"JSON_MAX_STRING_LENGTH", &c.JSONLimits.MaxStringLength},
		{"XML_MAX_DEPTH", &c.XMLLimits.MaxDepth},
		{"XML_MAX_CHILDREN", &c.XMLLimits.MaxChildren},
		{"XML_MAX_ATTRIBUTES", &c.XMLLimits.MaxAttributes},
		{"XML_MAX_NAME_LENGTH", &c.XMLLimits.MaxNameLength},
		{"XML_MAX_TEXT_LENGTH", &c.XMLLimits.MaxTextLength},
		{"XML_MAX_ATTRIBUTE_LENGTH", &c.XMLLimits.MaxAttributeLength},
	} {
		parse(l.name, limitInto(l.dst))
	}
	parse("JSON_RESPONSES", boolInto(&c.JSONResponses))
	parse("XML_RESPONSES", boolInto(&c.XMLResponses))
	loadSigning(getenv, &c.Signing)
	parse("SIGNING_MAX_AGE", durationInto(&c.Signing.MaxAge))
	if c.Signing.Scheme == "" && err == nil {
		for _, name := range signingVariables {
			if getenv(name) != "" {
				return st, errors.New(name + ": set, but UPSTREAM_SIGNING is not; set UPSTREAM_SIGNING=cavage or rfc9421 to sign upstream requests")
			}
		}
	}
	if v := getenv("REDIS_URL"); v != "" && err == nil {
		rc, e := session.ParseRedisURL(v)
		if e != nil {
			return st, e // names REDIS_URL itself, never echoes a password
		}
		st.redis = &rc
	}
	switch v := getenv("REDIS_OUTAGE"); {
	case err != nil, v == "", v == "refuse":
	case st.redis == nil:
		return st, errors.New("REDIS_OUTAGE: applies only with REDIS_URL")
	case v == "local-window":
		// docs/REDIS.md "Outages": availability over cross-replica replay
		// protection while Redis is down.
		st.redis.OutageLocalWindow = true
	default:
		return st, errors.New("REDIS_OUTAGE: must be refuse (the default) or local-window, got " + strconv.Quote(v))
	}
	if err != nil {
		return st, err
	}
	if err := c.Validate(); err != nil {
		return st, err
	}
	st.tls, err = loadTLS(getenv, st.redis)
	c.TLS = st.tls
	return st, err
}

// loadTLS reads the TLS variables, refuses those that cannot apply, and
// opens and checks every file they name.
func loadTLS(getenv func(string) string, redis *session.RedisConfig) (*tlsconf.Set, error) {
	ts, err := tlsconf.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if ts.Upstream.Configured() && !strings.HasPrefix(getenv("UPSTREAM"), "https://") {
		return nil, errors.New(firstSet(getenv, "UPSTREAM") + ": applies only with an https:// UPSTREAM")
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

// loadSigning reads the upstream signing variables; proxy.Config.Validate
// checks them (package upsign names the variable in each error).
func loadSigning(getenv func(string) string, c *upsign.Config) {
	c.Scheme = getenv("UPSTREAM_SIGNING")
	c.Algorithm = getenv("SIGNING_ALGORITHM")
	c.KeyID = getenv("SIGNING_KEY_ID")
	c.Secret = getenv("SIGNING_SECRET")
	c.KeyFile = getenv("SIGNING_KEY_FILE")
	c.Headers = getenv("SIGNING_HEADERS")
	c.Header = getenv("SIGNING_HEADER")
	c.Encoding = getenv("SIGNING_SIGNATURE_ENCODING")
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

func boolInto(dst *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false, got " + strconv.Quote(v))
		}
		*dst = b
		return nil
	}
}

func intInto(dst *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errors.New("must be a positive number of bytes, got " + strconv.Quote(v))
		}
		*dst = n
		return nil
	}
}

// limitInto parses a message-protection limit: 0 means none.
func limitInto(dst *int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errors.New("must be 0 (no limit) or a positive number, got " + strconv.Quote(v))
		}
		*dst = n
		return nil
	}
}

func durationInto(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a positive duration like 30s or 2m, got " + strconv.Quote(v))
		}
		*dst = d
		return nil
	}
}
