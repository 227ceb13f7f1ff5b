package main

import (
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/proxy"
)

// goodSecret and goodToken are random (openssl rand -hex), as production
// values should be.
const (
	goodSecret = "9f1c3a7e52d84b06e1a9c4f27b3d8e50"
	goodToken  = "4b7e19c2a05fd386"
)

const (
	goodSigningSecret = "signing-secret-0123456789abcdef-0123456789abcdef"
	ed25519KeyFile    = "../../upsign/testdata/rfc9421-test-key-ed25519.pem"
)

func env(kv ...string) func(string) string {
	m := map[string]string{
		"UPSTREAM":         "http://127.0.0.1:9000",
		"CLIENT_ID_SECRET": goodSecret,
		"OUTBOUND_TOKEN":   goodToken,
	}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoadSettingsErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kv      []string
		wantVar string
	}{
		{[]string{"UPSTREAM", ""}, "UPSTREAM"},
		{[]string{"UPSTREAM", "127.0.0.1:9000"}, "UPSTREAM"},
		{[]string{"UPSTREAM", "ftp://h"}, "UPSTREAM"},
		{[]string{"UPSTREAM", "http://h/?q=1"}, "UPSTREAM"},
		{[]string{"CLIENT_ID_SECRET", ""}, "CLIENT_ID_SECRET"},
		{[]string{"CLIENT_ID_SECRET", goodSecret[:31]}, "CLIENT_ID_SECRET"},
		{[]string{"UPSTREAM", "http://h:99999"}, "UPSTREAM"},
		{[]string{"UPSTREAM", "http://h:"}, "UPSTREAM"},
		{[]string{"UPSTREAM", "http://h:0/base"}, "UPSTREAM"},
		{[]string{"UPSTREAM", "http://:9000"}, "UPSTREAM"},
		{[]string{"UPSTREAM", "https://[::1]:"}, "UPSTREAM"},
		{[]string{"CLIENT_ID_SECRET", strings.Repeat(" ", 32)}, "CLIENT_ID_SECRET"},
		{[]string{"CLIENT_ID_SECRET", strings.Repeat("x", 40)}, "CLIENT_ID_SECRET"},
		{[]string{"CLIENT_ID_SECRET", strings.Repeat("ab", 16)}, "CLIENT_ID_SECRET"},
		{[]string{"CLIENT_ID_SECRET", strings.Repeat("password", 4)}, "CLIENT_ID_SECRET"},
		{[]string{"CLIENT_ID_SECRET", "0123456789abcdef0123456789abcdef"}, "CLIENT_ID_SECRET"},
		{[]string{"CLIENT_ID_SECRET", strings.Repeat("a", 30) + "bc"}, "CLIENT_ID_SECRET"},
		{[]string{"CLIENT_ID_SECRET", "aabbaabbaabbaabbaabbaabbaabbaabX"}, "CLIENT_ID_SECRET"},
		{[]string{"OUTBOUND_TOKEN", ""}, "OUTBOUND_TOKEN"},
		{[]string{"OUTBOUND_TOKEN", "t"}, "OUTBOUND_TOKEN"},
		{[]string{"OUTBOUND_TOKEN", goodToken[:15]}, "OUTBOUND_TOKEN"},
		{[]string{"OUTBOUND_TOKEN", strings.Repeat("z", 20)}, "OUTBOUND_TOKEN"},
		{[]string{"OUTBOUND_TOKEN", "correct horse battery staple"}, "OUTBOUND_TOKEN"},
		{[]string{"OUTBOUND_TOKEN", goodToken + "\u00e9"}, "OUTBOUND_TOKEN"},
		{[]string{"RELAY_ROLE", "edge"}, "RELAY_ROLE"},
		{[]string{"RELAY_ROLE", "Inbound"}, "RELAY_ROLE"},
		{[]string{"RELAY_ROLE", "inbound", "UPSTREAM", ""}, "UPSTREAM"},
		{[]string{"RELAY_ROLE", "outbound", "OUTBOUND_TOKEN", ""}, "OUTBOUND_TOKEN"},
		{[]string{"RELAY_ROLE", "outbound", "CLIENT_ID_SECRET", ""}, "CLIENT_ID_SECRET"},
		{[]string{"HEADERS", `{"Connection":"close"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"content-length":"0"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"Transfer-Encoding":"chunked"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"Host":"evil.example"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"TE":"trailers"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"Upgrade":"websocket"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"Keep-Alive":"timeout=5"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"Proxy-Connection":"keep-alive"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"Trailer":"X-A"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"Access-Control-Allow-Origin":"*"}`}, "HEADERS"},
		{[]string{"CORS_ORIGINS", "app.example.com"}, "CORS_ORIGINS"},
		{[]string{"CORS_ORIGINS", "https://app.example.com/path"}, "CORS_ORIGINS"},
		{[]string{"CORS_ORIGINS", "https://app.example.com:70000"}, "CORS_ORIGINS"},
		{[]string{"CORS_CREDENTIALS", "sometimes"}, "CORS_CREDENTIALS"},
		{[]string{"CORS_ORIGINS", "*", "CORS_CREDENTIALS", "true"}, "CORS_CREDENTIALS"},
		{[]string{"CORS_ORIGINS", "https://a.example,*", "CORS_CREDENTIALS", "true"}, "CORS_CREDENTIALS"},
		{[]string{"CORS_ORIGINS", "null", "CORS_CREDENTIALS", "true"}, "CORS_CREDENTIALS"},
		{[]string{"CORS_EXPOSE_HEADERS", "x-request-id, bad header"}, "CORS_EXPOSE_HEADERS"},
		{[]string{"PORT", "0"}, "PORT"},
		{[]string{"PORT", "http"}, "PORT"},
		{[]string{"DEBUG", "yes please"}, "DEBUG"},
		{[]string{"HEADERS", `["a"]`}, "HEADERS"},
		{[]string{"HEADERS", `{"Bad Name":"v"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"X-A":"line\nbreak"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"x-mte-upstream":"v"}`}, "HEADERS"},
		{[]string{"CORS_METHODS", "get"}, "CORS_METHODS"},
		{[]string{"ALLOWED_PEERS", "relay-b:8081"}, "ALLOWED_PEERS"},
		{[]string{"PASS_THROUGH_ROUTES", "^/health$,^/public/(x"}, "PASS_THROUGH_ROUTES"},
		{[]string{"MTE_ROUTES", "^/api/,"}, "MTE_ROUTES"},
		{[]string{"RELAY_ROLE", "outbound", "MTE_ROUTES", "[b-a]"}, "MTE_ROUTES"},
		{[]string{"MAX_BODY_BYTES", "-1"}, "MAX_BODY_BYTES"},
		{[]string{"MAX_HEADER_BYTES", "10"}, "MAX_HEADER_BYTES"},
		{[]string{"PEER_TIMEOUT", "30"}, "PEER_TIMEOUT"},
		{[]string{"IDLE_TIMEOUT", "10s"}, "IDLE_TIMEOUT"},
		{[]string{"SESSION_LIFETIME", "30s"}, "SESSION_LIFETIME"},
		{[]string{"REDIS_URL", "http://localhost:6379"}, "REDIS_URL"},
		{[]string{"REDIS_URL", "redis://:hunter2@h:port"}, "REDIS_URL"},
		{[]string{"REDIS_OUTAGE", "local-window"}, "REDIS_OUTAGE"},
		{[]string{"METRICS_PORT", "-1"}, "METRICS_PORT"},
		{[]string{"METRICS_PORT", "65536"}, "METRICS_PORT"},
		{[]string{"LOG_FORMAT", "logfmt"}, "LOG_FORMAT"},
		{[]string{"LOG_LEVEL", "verbose"}, "LOG_LEVEL"},
		{[]string{"LOG_LEVEL", "info+2"}, "LOG_LEVEL"},
		{[]string{"SHUTDOWN_DELAY", "-1s"}, "SHUTDOWN_DELAY"},
		{[]string{"ACCESS_LOG", "on"}, "ACCESS_LOG"},
		{[]string{"SHUTDOWN_DELAY", "1h"}, "SHUTDOWN_DELAY"},
		{[]string{"JSON_MAX_DEPTH", "-1"}, "JSON_MAX_DEPTH"},
		{[]string{"JSON_MAX_DEPTH", "1025"}, "JSON_MAX_DEPTH"},
		{[]string{"JSON_MAX_STRING_LENGTH", "1MiB"}, "JSON_MAX_STRING_LENGTH"},
		{[]string{"XML_MAX_DEPTH", "100000"}, "XML_MAX_DEPTH"},
		{[]string{"XML_MAX_ATTRIBUTES", "1025"}, "XML_MAX_ATTRIBUTES"},
		{[]string{"XML_MAX_ATTRIBUTE_LENGTH", "x"}, "XML_MAX_ATTRIBUTE_LENGTH"},
		{[]string{"JSON_RESPONSES", "true"}, "JSON_RESPONSES"},
		{[]string{"XML_MAX_CHILDREN", "10", "XML_RESPONSES", "yes"}, "XML_RESPONSES"},
		{[]string{"XML_MAX_CHILDREN", "10", "JSON_RESPONSES", "true"}, "JSON_RESPONSES"},
		{[]string{"REDIS_URL", "redis://127.0.0.1:6379", "REDIS_OUTAGE", "serve"}, "REDIS_OUTAGE"},
		{[]string{"TLS_CERT_FILE", "/nonexistent/tls.crt", "TLS_KEY_FILE", "/nonexistent/tls.key"}, "TLS_CERT_FILE"},
		{[]string{"TLS_MIN_VERSION", "1.3"}, "TLS_MIN_VERSION"},
		{[]string{"PEER_CA_FILE", "/nonexistent/ca.crt"}, "PEER_CA_FILE"},
		{[]string{"UPSTREAM_CA_FILE", "/nonexistent/ca.crt"}, "UPSTREAM_CA_FILE"}, // UPSTREAM is http://
		{[]string{"UPSTREAM", "https://api.example", "UPSTREAM_KEY_FILE", "k"}, "UPSTREAM_CERT_FILE"},
		{[]string{"REDIS_CA_FILE", "/nonexistent/ca.crt"}, "REDIS_CA_FILE"},
		{[]string{"REDIS_URL", "redis://127.0.0.1:6379", "REDIS_CERT_FILE", "c", "REDIS_KEY_FILE", "k"}, "REDIS_CERT_FILE"},
		{[]string{"REDIS_URL", "rediss://127.0.0.1:6379", "REDIS_CA_FILE", "/nonexistent/ca.crt"}, "REDIS_CA_FILE"},
		{[]string{"UPSTREAM_SIGNING", "jws"}, "UPSTREAM_SIGNING"},
		{[]string{"RELAY_ROLE", "outbound", "UPSTREAM_SIGNING", "cavage", "SIGNING_ALGORITHM", "hmac-sha256", "SIGNING_KEY_ID", "k",
			"SIGNING_SECRET", goodSigningSecret}, "UPSTREAM_SIGNING"},
		{[]string{"SIGNING_ALGORITHM", "hmac-sha256"}, "SIGNING_ALGORITHM"},
		{[]string{"SIGNING_SECRET", goodSigningSecret}, "SIGNING_SECRET"},
		{[]string{"UPSTREAM_SIGNING", "cavage"}, "SIGNING_ALGORITHM"},
		{[]string{"UPSTREAM_SIGNING", "cavage", "SIGNING_ALGORITHM", "ed25519"}, "SIGNING_ALGORITHM"},
		{[]string{"UPSTREAM_SIGNING", "cavage", "SIGNING_ALGORITHM", "hmac-sha256", "SIGNING_SECRET", goodSigningSecret}, "SIGNING_KEY_ID"},
		{[]string{"UPSTREAM_SIGNING", "cavage", "SIGNING_ALGORITHM", "hmac-sha256", "SIGNING_KEY_ID", "k", "SIGNING_SECRET", "short"}, "SIGNING_SECRET"},
		{[]string{"UPSTREAM_SIGNING", "rfc9421", "SIGNING_ALGORITHM", "hmac-sha256", "SIGNING_KEY_ID", "k", "SIGNING_SECRET", goodSigningSecret,
			"SIGNING_KEY_FILE", ed25519KeyFile}, "SIGNING_KEY_FILE"},
		{[]string{"UPSTREAM_SIGNING", "rfc9421", "SIGNING_ALGORITHM", "rsa-pss-sha512", "SIGNING_KEY_ID", "k", "SIGNING_KEY_FILE", ed25519KeyFile}, "SIGNING_KEY_FILE"},
		{[]string{"UPSTREAM_SIGNING", "rfc9421", "SIGNING_ALGORITHM", "ed25519", "SIGNING_KEY_ID", "k", "SIGNING_KEY_FILE", ed25519KeyFile,
			"SIGNING_HEADERS", `"@method" "@status"`}, "SIGNING_HEADERS"},
		{[]string{"UPSTREAM_SIGNING", "rfc9421", "SIGNING_ALGORITHM", "ed25519", "SIGNING_KEY_ID", "k", "SIGNING_KEY_FILE", ed25519KeyFile,
			"SIGNING_HEADER", "Signature"}, "SIGNING_HEADER"},
		{[]string{"UPSTREAM_SIGNING", "rfc9421", "SIGNING_ALGORITHM", "ed25519", "SIGNING_KEY_ID", "k", "SIGNING_KEY_FILE", ed25519KeyFile,
			"SIGNING_MAX_AGE", "soon"}, "SIGNING_MAX_AGE"},
		{[]string{"UPSTREAM_SIGNING", "cavage", "SIGNING_ALGORITHM", "hmac-sha256", "SIGNING_KEY_ID", "k", "SIGNING_SECRET", goodSigningSecret,
			"SIGNING_MAX_AGE", "1m"}, "SIGNING_MAX_AGE"},
		{[]string{"UPSTREAM_SIGNING", "cavage", "SIGNING_ALGORITHM", "hmac-sha256", "SIGNING_KEY_ID", "k", "SIGNING_SECRET", goodSigningSecret,
			"HEADERS", `{"Authorization":"Bearer x"}`}, "HEADERS"},
		{[]string{"UPSTREAM_SIGNING", "rfc9421", "SIGNING_ALGORITHM", "hmac-sha256", "SIGNING_KEY_ID", "k", "SIGNING_SECRET", goodSigningSecret,
			"HEADERS", `{"content-digest":"x"}`}, "HEADERS"},
	}
	for _, c := range cases {
		_, err := loadSettings(env(c.kv...))
		if err == nil {
			t.Errorf("%v: accepted", c.kv)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, c.wantVar+": ") || strings.Contains(msg, "\n") {
			t.Errorf("%v: error %q should be one line starting with %s", c.kv, msg, c.wantVar)
		}
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, goodSecret) || strings.Contains(msg, goodSigningSecret) {
			t.Errorf("%v: error %q echoes a secret", c.kv, msg)
		}
	}
}

func TestLoadSettingsDefaultsAndValues(t *testing.T) {
	t.Parallel()
	st, err := loadSettings(env())
	if err != nil {
		t.Fatal(err)
	}
	if st.port != 8080 || st.metricsPort != 9090 || st.logFormat != "text" || st.logLevel != slog.LevelInfo ||
		st.redis != nil || st.proxy.Debug {
		t.Errorf("defaults: %+v", st)
	}
	for _, c := range []struct {
		kv        []string
		wantLevel slog.Level
	}{
		{[]string{"LOG_LEVEL", "WARN"}, slog.LevelWarn},
		{[]string{"LOG_LEVEL", "error", "DEBUG", "true"}, slog.LevelDebug}, // DEBUG=true is LOG_LEVEL=debug
		{[]string{"LOG_LEVEL", "debug"}, slog.LevelDebug},
		{[]string{"DEBUG", "false"}, slog.LevelInfo},
	} {
		st, err := loadSettings(env(c.kv...))
		if err != nil || st.logLevel != c.wantLevel || st.proxy.Debug != (c.wantLevel == slog.LevelDebug) {
			t.Errorf("%v: level %v, proxy debug %v, %v", c.kv, st.logLevel, st.proxy.Debug, err)
		}
	}
	if st, err := loadSettings(env("METRICS_PORT", "0", "LOG_FORMAT", "json", "ACCESS_LOG", "true")); err != nil ||
		st.metricsPort != 0 || st.logFormat != "json" || !st.proxy.AccessLog {
		t.Errorf("METRICS_PORT=0 LOG_FORMAT=json: %+v %v", st, err)
	}
	st, err = loadSettings(env("PORT", "9090", "DEBUG", "true", "HEADERS", `{"X-Env":"prod"}`,
		"CORS_ORIGINS", "https://a.example, https://b.example", "CORS_METHODS", "GET,POST",
		"ALLOWED_PEERS", "https://relay-b.example:8443", "MAX_BODY_BYTES", "1048576",
		"PEER_TIMEOUT", "5s", "SESSION_LIFETIME", "10m", "REDIS_URL", "redis://127.0.0.1:6379/2"))
	if err != nil {
		t.Fatal(err)
	}
	c := st.proxy
	if st.port != 9090 || !c.Debug || len(c.Headers) != 1 || c.Headers[0].Name != "X-Env" ||
		len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" || len(c.CORSMethods) != 2 ||
		c.MaxBodyBytes != 1<<20 || c.PeerTimeout != 5*time.Second || c.SessionLifetime != 10*time.Minute ||
		st.redis == nil || st.redis.DB != 2 || st.redis.OutageLocalWindow {
		t.Errorf("values not applied: %+v %+v", st, c)
	}
	st, err = loadSettings(env("JSON_MAX_DEPTH", "20", "JSON_MAX_ARRAY_ELEMENTS", "1000", "JSON_MAX_OBJECT_ENTRIES", "100",
		"JSON_MAX_NAME_LENGTH", "64", "JSON_MAX_STRING_LENGTH", "0", "JSON_RESPONSES", "true",
		"XML_MAX_DEPTH", "1", "XML_MAX_CHILDREN", "2", "XML_MAX_ATTRIBUTES", "3", "XML_MAX_NAME_LENGTH", "4",
		"XML_MAX_TEXT_LENGTH", "5", "XML_MAX_ATTRIBUTE_LENGTH", "6"))
	j, x := st.proxy.JSONLimits, st.proxy.XMLLimits
	if err != nil || j.MaxDepth != 20 || j.MaxArrayElements != 1000 || j.MaxObjectEntries != 100 || j.MaxNameLength != 64 ||
		j.MaxStringLength != 0 || !st.proxy.JSONResponses || st.proxy.XMLResponses || x.MaxDepth != 1 || x.MaxChildren != 2 ||
		x.MaxAttributes != 3 || x.MaxNameLength != 4 || x.MaxTextLength != 5 || x.MaxAttributeLength != 6 {
		t.Errorf("message protection: %v %+v %+v", err, j, x)
	}
	st, err = loadSettings(env("REDIS_URL", "redis://127.0.0.1:6379", "REDIS_OUTAGE", "local-window"))
	if err != nil || !st.redis.OutageLocalWindow {
		t.Errorf("REDIS_OUTAGE=local-window: %v %+v", err, st.redis)
	}
}

// TestLoadSettingsSigning: the signing variables reach proxy.Config as
// given.
func TestLoadSettingsSigning(t *testing.T) {
	t.Parallel()
	st, err := loadSettings(env("UPSTREAM_SIGNING", "rfc9421", "SIGNING_ALGORITHM", "ed25519", "SIGNING_KEY_ID", "relay-b",
		"SIGNING_KEY_FILE", ed25519KeyFile, "SIGNING_HEADERS", `"@method" "@path" "date"`, "SIGNING_MAX_AGE", "90s",
		"HEADERS", `{"Authorization":"Bearer x"}`)) // rfc9421 leaves Authorization alone
	if err != nil {
		t.Fatal(err)
	}
	c := st.proxy.Signing
	if c.Scheme != "rfc9421" || c.Algorithm != "ed25519" || c.KeyID != "relay-b" || c.KeyFile != ed25519KeyFile ||
		c.Headers != `"@method" "@path" "date"` || c.MaxAge != 90*time.Second {
		t.Errorf("rfc9421 values not applied: %+v", c)
	}
	st, err = loadSettings(env("UPSTREAM_SIGNING", "cavage", "SIGNING_ALGORITHM", "hmac-sha512", "SIGNING_KEY_ID", "relay-b",
		"SIGNING_SECRET", goodSigningSecret, "SIGNING_HEADER", "Signature", "SIGNING_SIGNATURE_ENCODING", "tyk"))
	if err != nil {
		t.Fatal(err)
	}
	if c := st.proxy.Signing; c.Scheme != "cavage" || c.Secret != goodSigningSecret || c.Header != "Signature" || c.Encoding != "tyk" {
		t.Errorf("cavage values not applied: %+v", c)
	}
}

// TestLoadSettingsRolesAndCORS: each role starts without the variable it
// does not use, and the CORS variables reach the proxy's config.
func TestLoadSettingsRolesAndCORS(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kv   []string
		want proxy.Role
	}{
		{nil, proxy.RoleBoth},
		{[]string{"RELAY_ROLE", "both"}, proxy.RoleBoth},
		{[]string{"RELAY_ROLE", "inbound", "OUTBOUND_TOKEN", ""}, proxy.RoleInbound},
		{[]string{"RELAY_ROLE", "inbound", "OUTBOUND_TOKEN", "t"}, proxy.RoleInbound}, // unused: not checked
		{[]string{"RELAY_ROLE", "outbound", "UPSTREAM", ""}, proxy.RoleOutbound},
	}
	for _, c := range cases {
		st, err := loadSettings(env(c.kv...))
		if err != nil || st.proxy.Role != c.want {
			t.Errorf("%v: role %v, error %v; want %v", c.kv, st.proxy.Role, err, c.want)
		}
	}
	st, err := loadSettings(env("CORS_ORIGINS", "https://app.example, null", "CORS_EXPOSE_HEADERS", "x-request-id, etag"))
	if c := st.proxy; err != nil || len(c.CORSOrigins) != 2 || c.CORSCredentials || len(c.CORSExposeHeaders) != 2 || c.CORSExposeHeaders[1] != "etag" {
		t.Errorf("CORS: %v %+v", err, c)
	}
	st, err = loadSettings(env("CORS_ORIGINS", "https://app.example", "CORS_CREDENTIALS", "true"))
	if err != nil || !st.proxy.CORSCredentials {
		t.Errorf("CORS_CREDENTIALS=true with a listed origin: %v %+v", err, st.proxy)
	}
}

// TestWarnings: with the defaults, UPSTREAM_TIMEOUT is under PEER_TIMEOUT
// and only the empty ALLOWED_PEERS is worth a line; an UPSTREAM_TIMEOUT
// that is not shorter gets one line naming both, in the role that has both;
// message-protection settings on a relay whose role never applies them get
// a line saying where they belong.
func TestWarnings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kv   []string
		want []string // one substring per expected line
	}{
		{[]string{"ALLOWED_PEERS", "https://relay-b.example"}, nil},
		{nil, []string{"ALLOWED_PEERS"}},
		{[]string{"RELAY_ROLE", "inbound"}, nil},
		{[]string{"UPSTREAM_TIMEOUT", "30s", "ALLOWED_PEERS", "https://relay-b.example"}, []string{"UPSTREAM_TIMEOUT (30s) is not shorter than PEER_TIMEOUT (30s)"}},
		{[]string{"PEER_TIMEOUT", "10s", "ALLOWED_PEERS", "https://relay-b.example"}, []string{"UPSTREAM_TIMEOUT (25s) is not shorter than PEER_TIMEOUT (10s)"}},
		{[]string{"PEER_TIMEOUT", "10s", "RELAY_ROLE", "inbound"}, nil},
		{[]string{"UPSTREAM_TIMEOUT", "1m", "RELAY_ROLE", "outbound", "ALLOWED_PEERS", "https://relay-b.example"}, nil},
		{[]string{"RELAY_ROLE", "inbound", "JSON_MAX_DEPTH", "20"}, nil},
		{[]string{"RELAY_ROLE", "inbound", "JSON_MAX_DEPTH", "20", "JSON_RESPONSES", "true"}, []string{"JSON_RESPONSES/XML_RESPONSES act on the outbound relay"}},
		{[]string{"RELAY_ROLE", "outbound", "ALLOWED_PEERS", "https://relay-b.example", "XML_MAX_DEPTH", "20"}, []string{"set them on relay B"}},
		{[]string{"RELAY_ROLE", "outbound", "ALLOWED_PEERS", "https://relay-b.example", "XML_MAX_DEPTH", "20", "XML_RESPONSES", "true"}, nil},
		{[]string{"RELAY_ROLE", "inbound", "UPSTREAM", "", "DOMAIN_MAP", `{"a.example":{"upstream":"http://h","outbound_token":"c0ffee1234567890abcd"},"b.example":{"upstream":"http://h"}}`},
			[]string{`DOMAIN_MAP: "a.example": outbound_token and cors_origins act on app requests`}},
		{[]string{"RELAY_ROLE", "inbound", "UPSTREAM", "", "DOMAIN_MAP", `{"a.example":{"upstream":"http://h","cors_origins":""}}`},
			[]string{`DOMAIN_MAP: "a.example": outbound_token and cors_origins`}},
	}
	for _, c := range cases {
		st, err := loadSettings(env(c.kv...))
		if err != nil {
			t.Fatalf("%v: %v", c.kv, err)
		}
		got := st.proxy.Warnings()
		if len(got) != len(c.want) {
			t.Errorf("%v: warnings %q, want %d", c.kv, got, len(c.want))
			continue
		}
		for i, w := range c.want {
			if !strings.Contains(got[i], w) || strings.Contains(got[i], "\n") {
				t.Errorf("%v: warning %q, want one line with %q", c.kv, got[i], w)
			}
		}
	}
}

// TestBadConfigExits runs the real binary: a bad variable exits 2 with one
// line on stderr that names it, before anything listens.
func TestBadConfigExits(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	cases := []struct{ name, value, wantVar string }{
		{"CLIENT_ID_SECRET", "short", "CLIENT_ID_SECRET"},
		{"CLIENT_ID_SECRET", strings.Repeat(" ", 32), "CLIENT_ID_SECRET"},
		{"OUTBOUND_TOKEN", "t", "OUTBOUND_TOKEN"},
		{"UPSTREAM", "http://h:99999", "UPSTREAM"},
		{"UPSTREAM", "http://h:", "UPSTREAM"},
		{"HEADERS", `{"Connection":"close"}`, "HEADERS"},
		{"RELAY_ROLE", "edge", "RELAY_ROLE"},
		{"CORS_CREDENTIALS", "true", "CORS_CREDENTIALS"}, // with CORS_ORIGINS=*
		{"DOMAIN_MAP", `{"api.example.com":{"upstream":"http://h","upstrem":"http://x"}}`, "DOMAIN_MAP"},
	}
	// A port already taken: a relay that wrongly accepted its config exits
	// at once (status 1) instead of serving.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	for _, c := range cases {
		vars := map[string]string{"UPSTREAM": "http://127.0.0.1:9", "CLIENT_ID_SECRET": goodSecret,
			"OUTBOUND_TOKEN": goodToken, "CORS_ORIGINS": "*", "PORT": port, "LISTEN_ADDR": "127.0.0.1"}
		vars[c.name] = c.value
		cmd := exec.Command(bin)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		exit, ok := err.(*exec.ExitError)
		if !ok || exit.ExitCode() != 2 {
			t.Errorf("%s=%q: exit %v, output %q", c.name, c.value, err, out)
			continue
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "pqrelay: "+c.wantVar+": ") {
			t.Errorf("%s=%q: output %q, want one line naming %s", c.name, c.value, out, c.wantVar)
		}
	}
}

// TestFIPSModes runs the real binary: fips140=only is refused with one line;
// fips140=on starts (and is stopped at once by its bad PORT, which comes
// later in the checks than GODEBUG).
func TestFIPSModes(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	for _, c := range []struct{ godebug, want string }{
		{"fips140=only", "GODEBUG: fips140=only is not supported"},
		{"fips140=on", "PORT:"},
	} {
		cmd := exec.Command(bin)
		cmd.Env = []string{"GODEBUG=" + c.godebug, "UPSTREAM=http://127.0.0.1:9", "CLIENT_ID_SECRET=" + goodSecret, "OUTBOUND_TOKEN=" + goodToken, "PORT=0"}
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), c.want) {
			t.Errorf("%s: output %q, want %q", c.godebug, out, c.want)
		}
	}
}

// TestDomainMapSettings: DOMAIN_MAP replaces UPSTREAM; a malformed map, and
// each invalid field of an entry, stops the relay with one line naming
// DOMAIN_MAP, the entry and the field, never echoing a secret.
func TestDomainMapSettings(t *testing.T) {
	t.Parallel()
	const entry = `"api.example.com"`
	cases := []struct {
		upstream, domainMap string
		want                string // the error's start; "" for accepted
	}{
		{"", `{"api.example.com":{"upstream":"http://127.0.0.1:9000"},"API.example.com:8443":{"upstream":"https://10.0.0.5/v1",` +
			`"client_id_secret":"5e0b9d3f71a24c68b8e1f0a7c3d95b2e4f6a1c08","outbound_token":"c0ffee1234567890abcd",` +
			`"cors_origins":"https://app.example.com","headers":{"X-Tenant":"a"}}}`, ""},
		{"http://127.0.0.1:9000", `{"api.example.com":{"upstream":"http://127.0.0.1:9000"}}`, "DOMAIN_MAP: set either UPSTREAM or DOMAIN_MAP"},
		{"", `api.example.com=http://127.0.0.1:9000`, "DOMAIN_MAP: must be a JSON object"},
		{"", `{}`, "DOMAIN_MAP: no entries"},
		{"", `{"api.example.com":{"upstream":"http://h"}`, "DOMAIN_MAP: not valid JSON"},
		{"", `{"api.example.com":"http://h"}`, "DOMAIN_MAP: " + entry + ": must be an object"},
		{"", `{"api.example.com":{"upstream":"http://h"},"API.EXAMPLE.COM":{"upstream":"http://h"}}`, `DOMAIN_MAP: "API.EXAMPLE.COM": the host is listed twice`},
		{"", `{"https://api.example.com":{"upstream":"http://h"}}`, `DOMAIN_MAP: "https://api.example.com": `},
		{"", `{"api.example.com:0":{"upstream":"http://h"}}`, `DOMAIN_MAP: "api.example.com:0": the port`},
		{"", `{"api.example.com":{}}`, "DOMAIN_MAP: " + entry + ": upstream: required"},
		{"", `{"api.example.com":{"upstream":"127.0.0.1:9000"}}`, "DOMAIN_MAP: " + entry + ": upstream: must be an http:// or https:// URL"},
		{"", `{"api.example.com":{"upstream":"http://h","upstrem":"http://x"}}`, "DOMAIN_MAP: " + entry + `: unknown field "upstrem"`},
		{"", `{"api.example.com":{"upstream":"http://h","mte_route":"^/x$"}}`, "DOMAIN_MAP: " + entry + `: unknown field "mte_route"`},
		{"", `{"api.example.com":{"upstream":"http://h","mte_routes":"^/x$,(unclosed"}}`, "DOMAIN_MAP: " + entry + `: mte_routes: "(unclosed" is not an RE2`},
		{"", `{"api.example.com":{"upstream":"http://h","pass_through_routes":"^/a,,^/b"}}`, "DOMAIN_MAP: " + entry + `: pass_through_routes: an empty pattern`},
		{"", `{"api.example.com":{"upstream":9000}}`, "DOMAIN_MAP: " + entry + ": upstream: wrong type"},
		{"", `{"api.example.com":{"upstream":"http://h","client_id_secret":"hunter2hunter2hunter2hunter2hunter2"}}`,
			"DOMAIN_MAP: " + entry + ": client_id_secret: too predictable"},
		{"", `{"api.example.com":{"upstream":"http://h","client_id_secret":"short"}}`, "DOMAIN_MAP: " + entry + ": client_id_secret: must be at least 32"},
		{"", `{"api.example.com":{"upstream":"http://h","client_id_secret":""}}`, "DOMAIN_MAP: " + entry + ": client_id_secret: empty"},
		{"", `{"api.example.com":{"upstream":"http://h","outbound_token":"hunter2"}}`, "DOMAIN_MAP: " + entry + ": outbound_token: must be at least 16"},
		{"", `{"api.example.com":{"upstream":"http://h","cors_origins":"app.example.com"}}`, "DOMAIN_MAP: " + entry + `: cors_origins: "app.example.com" is not an origin`},
		{"", `{"api.example.com":{"upstream":"http://h","headers":{"Host":"evil.example"}}}`, "DOMAIN_MAP: " + entry + `: headers: "Host" describes the connection`},
		{"", `{"api.example.com":{"upstream":"http://h","headers":{"X-A":1}}}`, "DOMAIN_MAP: " + entry + ": headers: wrong type"},
		{"", `{"api.example.com":{"upstream":"http://h","headers":["X-A"]}}`, "DOMAIN_MAP: " + entry + ": headers: wrong type"},
	}
	for _, c := range cases {
		st, err := loadSettings(env("UPSTREAM", c.upstream, "DOMAIN_MAP", c.domainMap))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.domainMap, err)
		case c.want == "" && len(st.proxy.Domains) != 2:
			t.Errorf("%s: %d entries", c.domainMap, len(st.proxy.Domains))
		case c.want == "":
		case err == nil:
			t.Errorf("%s: accepted", c.domainMap)
		case !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%s: error %q, want one line starting %q, no secret", c.domainMap, err, c.want)
		}
	}
	// An outbound-only relay serves no upstream.
	if _, err := loadSettings(env("UPSTREAM", "", "RELAY_ROLE", "outbound", "DOMAIN_MAP", `{"a.example":{"upstream":"http://h"}}`)); err == nil ||
		!strings.HasPrefix(err.Error(), "DOMAIN_MAP: ") {
		t.Errorf("DOMAIN_MAP with RELAY_ROLE=outbound: %v", err)
	}
}
