package tlsconf

import (
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
)

// Settings are the TLS variables as read from the environment, before any
// file is opened. FromEnv fills them; Load opens and checks the files.
type Settings struct {
	Listener ListenerSettings
	// Peer is PEER_*: this relay as a client of the inbound relay named by
	// x-mte-upstream https://…
	Peer ClientSettings
	// Upstream is UPSTREAM_*: this relay as a client of an https UPSTREAM.
	Upstream ClientSettings
	// Redis is REDIS_*: this relay as a client of a rediss:// REDIS_URL.
	Redis ClientSettings
}

// ListenerSettings are the TLS_* variables of the relay's own listener.
type ListenerSettings struct {
	// CertFile and KeyFile are TLS_CERT_FILE and TLS_KEY_FILE (PEM). Both
	// set: the relay serves HTTPS. Default: both empty, plain HTTP.
	CertFile, KeyFile string
	// ClientCAFile is TLS_CLIENT_CA_FILE: with it, every client must
	// present a certificate this CA signed (mutual TLS). Default: none
	// asked.
	ClientCAFile string
	// ClientNames is TLS_CLIENT_NAMES: a client certificate must carry one
	// of these as a DNS or URI SAN or as its common name (DNS names and
	// common names compared without regard to case). Default: any
	// certificate ClientCAFile signed.
	ClientNames []string
	// MinVersion is TLS_MIN_VERSION. Default TLS 1.2, for load balancers
	// that do not speak 1.3 yet; 1.3 is preferred whenever both sides can.
	MinVersion uint16
}

// Enabled reports whether the listener serves TLS.
func (l ListenerSettings) Enabled() bool { return l.CertFile != "" }

// ClientSettings are one client side's variables, named Prefix_CA_FILE,
// Prefix_CERT_FILE, Prefix_KEY_FILE and (not for Redis) Prefix_SERVER_NAME.
type ClientSettings struct {
	// Prefix is PEER, UPSTREAM or REDIS; errors name variables with it.
	Prefix string
	// CAFile is the PEM bundle the server's certificate must chain to.
	// Default: the system roots.
	CAFile string
	// CertFile and KeyFile are this relay's client certificate, for a
	// server that asks for one. Default: none sent.
	CertFile, KeyFile string
	// ServerName, when set, replaces the dialled host name both in SNI and
	// in the check of the server's certificate. Default: the host dialled.
	ServerName string
}

// Configured reports whether any of the side's variables is set.
func (c ClientSettings) Configured() bool {
	return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.ServerName != ""
}

// FromEnv reads the TLS variables. It checks their syntax and that files
// come in pairs; Load checks the files themselves.
func FromEnv(getenv func(string) string) (Settings, error) {
	s := Settings{
		Listener: ListenerSettings{
			CertFile:     getenv("TLS_CERT_FILE"),
			KeyFile:      getenv("TLS_KEY_FILE"),
			ClientCAFile: getenv("TLS_CLIENT_CA_FILE"),
			ClientNames:  splitList(getenv("TLS_CLIENT_NAMES")),
			MinVersion:   tls.VersionTLS12,
		},
	}
	l := &s.Listener
	switch v := getenv("TLS_MIN_VERSION"); v {
	case "", "1.2":
	case "1.3":
		l.MinVersion = tls.VersionTLS13
	default:
		return s, errors.New("TLS_MIN_VERSION: must be 1.2 or 1.3, got " + strconv.Quote(v))
	}
	switch {
	case l.CertFile == "" && l.KeyFile != "":
		return s, errors.New("TLS_CERT_FILE: required with TLS_KEY_FILE; set both to serve HTTPS")
	case l.CertFile != "" && l.KeyFile == "":
		return s, errors.New("TLS_KEY_FILE: required with TLS_CERT_FILE; set both to serve HTTPS")
	case l.CertFile == "" && l.ClientCAFile != "":
		return s, errors.New("TLS_CLIENT_CA_FILE: applies only with TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS needs TLS)")
	case l.ClientCAFile == "" && len(l.ClientNames) > 0:
		return s, errors.New("TLS_CLIENT_NAMES: applies only with TLS_CLIENT_CA_FILE")
	case l.CertFile == "" && getenv("TLS_MIN_VERSION") != "":
		return s, errors.New("TLS_MIN_VERSION: applies only with TLS_CERT_FILE and TLS_KEY_FILE")
	}
	for i, prefix := range []string{"PEER", "UPSTREAM", "REDIS"} {
		c := ClientSettings{
			Prefix:   prefix,
			CAFile:   getenv(prefix + "_CA_FILE"),
			CertFile: getenv(prefix + "_CERT_FILE"),
			KeyFile:  getenv(prefix + "_KEY_FILE"),
		}
		if prefix != "REDIS" { // Redis is checked against the REDIS_URL host
			c.ServerName = getenv(prefix + "_SERVER_NAME")
		}
		switch {
		case c.CertFile == "" && c.KeyFile != "":
			return s, errors.New(prefix + "_CERT_FILE: required with " + prefix + "_KEY_FILE")
		case c.CertFile != "" && c.KeyFile == "":
			return s, errors.New(prefix + "_KEY_FILE: required with " + prefix + "_CERT_FILE")
		case strings.ContainsAny(c.ServerName, " /:,"):
			return s, errors.New(prefix + "_SERVER_NAME: must be a host name, got " + strconv.Quote(c.ServerName))
		}
		*[]*ClientSettings{&s.Peer, &s.Upstream, &s.Redis}[i] = c
	}
	return s, nil
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
