package session

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RedisConfig is a parsed REDIS_URL (docs/REDIS.md, "Redis URL forms") plus
// the Redis store's knobs. Build it with ParseRedisURL; String redacts the
// password, and the password is kept in an unexported field so that no
// formatting verb prints it.
type RedisConfig struct {
	// TLS is true for rediss:// URLs. The server certificate is checked
	// against the system roots and the host name of the first address,
	// unless TLSConfig says otherwise.
	TLS bool
	// TLSConfig, when set, replaces that default for rediss:// URLs: a
	// private CA (REDIS_CA_FILE) and a client certificate
	// (REDIS_CERT_FILE, REDIS_KEY_FILE). Build it for TLSServerName.
	TLSConfig *tls.Config
	// Addrs are the host:port addresses from the URL, the host part first,
	// then every addr= parameter. One address is a standalone server (or a
	// cluster node: rueidis finds out); several are cluster seed nodes, or
	// sentinels when MasterSet is set.
	Addrs []string
	// Username is the ACL user; empty means the default user.
	Username string
	// DB is the database number from the path; 0 when absent. Redis Cluster
	// has only database 0.
	DB int
	// MasterSet is the Sentinel master name (master_set=); empty means no
	// Sentinel.
	MasterSet string
	// DialTimeout bounds each connection attempt (dial_timeout=); zero
	// means 2 s.
	DialTimeout time.Duration

	// OutageLocalWindow (REDIS_OUTAGE=local-window) keeps sessions shared
	// through Redis usable while Redis is unreachable, each replica checking
	// replays on its own window only. That trades a known weakness for
	// availability: a frame replayed to a second replica during the outage
	// is run twice by the upstream (docs/REDIS.md, "Outages"). The zero
	// value refuses them instead: Get answers ErrUnknownSession, so the
	// outbound relay pairs anew with a session only one replica holds, and
	// Accept answers ErrStoreUnavailable.
	OutageLocalWindow bool

	// Namespace is the DOMAIN_MAP entry whose sessions the store holds:
	// its keys are under pqrelay:d:<Namespace>: instead of pqrelay:
	// (docs/REDIS.md). Empty for a relay without DOMAIN_MAP.
	Namespace string

	password string

	// Back-off between connection attempts and outage probes; zero means
	// the defaults below. Unexported: tests shorten them.
	retryMin, retryMax time.Duration
	// logEvery bounds how often repeated connection failures are logged.
	logEvery time.Duration
	// maxFlushDelay is rueidis's MaxFlushDelay; zero means
	// defaultMaxFlushDelay, negative none.
	maxFlushDelay time.Duration
}

const (
	defaultDialTimeout = 2 * time.Second
	defaultRetryMin    = 100 * time.Millisecond
	defaultRetryMax    = 5 * time.Second
	defaultLogEvery    = 5 * time.Second
	defaultFlushDelay  = 20 * time.Microsecond
	defaultRedisPort   = "6379"
)

// errRedisURL prefixes every ParseRedisURL error. The messages name the part
// that is wrong and never repeat the URL, which may hold a password.
const errRedisURL = "REDIS_URL: "

func redisURLError(msg string) error { return errors.New(errRedisURL + msg) }

// ParseRedisURL validates REDIS_URL:
//
//	redis://[[user]:password@]host[:port][/db][?addr=host:port&...&master_set=name&dial_timeout=2s]
//	rediss://...   the same over TLS
//
// Its errors start with "REDIS_URL: " and say what is wrong without echoing
// the URL.
func ParseRedisURL(raw string) (RedisConfig, error) {
	var c RedisConfig
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return c, redisURLError("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL; its inner error does not.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return c, redisURLError("not a URL (" + err.Error() + "); want redis://[user:password@]host:port[/db] or rediss://...")
	}
	switch u.Scheme {
	case "redis":
	case "rediss":
		c.TLS = true
	case "":
		return c, redisURLError("no scheme; want redis://host:port or rediss://host:port")
	default:
		return c, redisURLError("unsupported scheme " + strconv.Quote(u.Scheme) + "; want redis:// or rediss://")
	}
	if u.Opaque != "" {
		return c, redisURLError("want redis://host:port, with the two slashes")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return c, redisURLError("unexpected #fragment")
	}
	if u.User != nil {
		c.Username = u.User.Username()
		pw, ok := u.User.Password()
		if !ok {
			return c, redisURLError("user name without a password; write user:password@ or :password@")
		}
		if pw == "" {
			return c, redisURLError("empty password")
		}
		c.password = pw
	}
	addr, err := redisAddr(u.Host)
	if err != nil {
		return c, err
	}
	c.Addrs = append(c.Addrs, addr)

	switch p := strings.TrimPrefix(u.Path, "/"); {
	case p == "":
	case strings.Contains(p, "/"):
		return c, redisURLError("path must be /<db number>")
	default:
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 || db > 1<<16 {
			return c, redisURLError("database " + strconv.Quote(p) + " is not a number from 0")
		}
		c.DB = db
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return c, redisURLError("malformed query string")
	}
	for name, values := range q {
		switch name {
		case "addr":
			for _, v := range values {
				a, err := redisAddr(v)
				if err != nil {
					return c, err
				}
				c.Addrs = append(c.Addrs, a)
			}
		case "master_set":
			if len(values) != 1 || values[0] == "" {
				return c, redisURLError("master_set needs exactly one non-empty name")
			}
			c.MasterSet = values[0]
		case "dial_timeout":
			d, err := time.ParseDuration(values[0])
			if len(values) != 1 || err != nil || d <= 0 {
				return c, redisURLError("dial_timeout must be one positive duration such as 2s")
			}
			c.DialTimeout = d
		default:
			return c, redisURLError("unsupported parameter " + strconv.Quote(name) + " (known: addr, master_set, dial_timeout)")
		}
	}
	if len(c.Addrs) > 1 && c.MasterSet == "" && c.DB != 0 {
		return c, redisURLError("several addresses without master_set mean Redis Cluster, which has only database 0")
	}
	return c, nil
}

// redisAddr checks host[:port] and adds the default port.
func redisAddr(hostport string) (string, error) {
	if hostport == "" {
		return "", redisURLError("no host")
	}
	host, port := hostport, defaultRedisPort
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1] // [IPv6] without a port
	} else if strings.Count(hostport, ":") == 1 || strings.ContainsAny(hostport, "[]") {
		return "", redisURLError("address " + strconv.Quote(hostport) + " is not host:port")
	}
	if host == "" {
		return "", redisURLError("address " + strconv.Quote(hostport) + " has no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", redisURLError("port " + strconv.Quote(port) + " is not a number from 1 to 65535")
	}
	return net.JoinHostPort(host, port), nil
}

// String is the URL with the password replaced by "xxxxx".
func (c RedisConfig) String() string {
	u := url.URL{Scheme: "redis"}
	if c.TLS {
		u.Scheme = "rediss"
	}
	if len(c.Addrs) > 0 {
		u.Host = c.Addrs[0]
	}
	if c.password != "" {
		u.User = url.UserPassword(c.Username, "xxxxx")
	} else if c.Username != "" {
		u.User = url.User(c.Username)
	}
	if c.DB != 0 {
		u.Path = "/" + strconv.Itoa(c.DB)
	}
	q := url.Values{}
	if len(c.Addrs) > 1 {
		q["addr"] = c.Addrs[1:]
	}
	if c.MasterSet != "" {
		q.Set("master_set", c.MasterSet)
	}
	if c.DialTimeout != 0 {
		q.Set("dial_timeout", c.DialTimeout.String())
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// GoString is String, so that %#v does not print the password either.
func (c RedisConfig) GoString() string { return "session.RedisConfig(" + c.String() + ")" }

// TLSServerName is the name a rediss:// server's certificate must carry:
// the host of the first address.
func (c RedisConfig) TLSServerName() string {
	if len(c.Addrs) == 0 {
		return ""
	}
	host, _, _ := net.SplitHostPort(c.Addrs[0])
	return host
}

func (c *RedisConfig) tlsConfig() *tls.Config {
	switch {
	case !c.TLS:
		return nil
	case c.TLSConfig != nil:
		return c.TLSConfig
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName()}
}

func (c *RedisConfig) withDefaults() RedisConfig {
	d := *c
	if d.DialTimeout <= 0 {
		d.DialTimeout = defaultDialTimeout
	}
	if d.retryMin <= 0 {
		d.retryMin = defaultRetryMin
	}
	if d.retryMax < d.retryMin {
		d.retryMax = max(defaultRetryMax, d.retryMin)
	}
	if d.logEvery <= 0 {
		d.logEvery = defaultLogEvery
	}
	if d.maxFlushDelay == 0 {
		d.maxFlushDelay = defaultFlushDelay
	}
	return d
}
