package main

import (
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const goodSecret = "0123456789abcdef0123456789abcdef"

func env(kv ...string) func(string) string {
	m := map[string]string{
		"UPSTREAM":         "http://127.0.0.1:9000",
		"CLIENT_ID_SECRET": goodSecret,
		"OUTBOUND_TOKEN":   "token",
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
		{[]string{"OUTBOUND_TOKEN", ""}, "OUTBOUND_TOKEN"},
		{[]string{"PORT", "0"}, "PORT"},
		{[]string{"PORT", "http"}, "PORT"},
		{[]string{"DEBUG", "yes please"}, "DEBUG"},
		{[]string{"HEADERS", `["a"]`}, "HEADERS"},
		{[]string{"HEADERS", `{"Bad Name":"v"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"X-A":"line\nbreak"}`}, "HEADERS"},
		{[]string{"HEADERS", `{"x-mte-upstream":"v"}`}, "HEADERS"},
		{[]string{"CORS_METHODS", "get"}, "CORS_METHODS"},
		{[]string{"ALLOWED_PEERS", "relay-b:8081"}, "ALLOWED_PEERS"},
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
		{[]string{"REDIS_URL", "redis://127.0.0.1:6379", "REDIS_OUTAGE", "serve"}, "REDIS_OUTAGE"},
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
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, goodSecret) {
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
	st, err = loadSettings(env("REDIS_URL", "redis://127.0.0.1:6379", "REDIS_OUTAGE", "local-window"))
	if err != nil || !st.redis.OutageLocalWindow {
		t.Errorf("REDIS_OUTAGE=local-window: %v %+v", err, st.redis)
	}
}

// TestBadConfigExits runs the real binary: a bad variable exits 2 with one
// line on stderr that names it.
func TestBadConfigExits(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "UPSTREAM=http://127.0.0.1:9", "CLIENT_ID_SECRET=short", "OUTBOUND_TOKEN=t"}
	out, err := cmd.CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 2 {
		t.Fatalf("exit: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "CLIENT_ID_SECRET") {
		t.Fatalf("output %q: want one line naming CLIENT_ID_SECRET", out)
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
		cmd.Env = []string{"GODEBUG=" + c.godebug, "UPSTREAM=http://127.0.0.1:9", "CLIENT_ID_SECRET=" + goodSecret, "OUTBOUND_TOKEN=t", "PORT=0"}
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), c.want) {
			t.Errorf("%s: output %q, want %q", c.godebug, out, c.want)
		}
	}
}
