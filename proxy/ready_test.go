package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/redistest"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
	"github.com/pqrelay/pqrelay/session"
)

// statusOf GETs path from a relay.
func statusOf(t *testing.T, relayURL, path string) int {
	t.Helper()
	resp, err := http.Get(relayURL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls until GET path answers want, for up to 10 s.
func eventually(t *testing.T, relayURL, path string, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := statusOf(t, relayURL, path)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d, want %d", path, got, want)
		}
	}
}

// TestReadinessFollowsRedis: with sessions in Redis and REDIS_OUTAGE=refuse
// a relay is ready only while Redis is reachable; with local-window it stays
// ready through the outage. Liveness (/api/mte-echo) stays 200 throughout.
func TestReadinessFollowsRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	secrets, err := session.NewSecrets(relaytest.Secret)
	if err != nil {
		t.Fatal(err)
	}
	relays := map[bool]*relaytest.Relay{}
	for _, localWindow := range []bool{false, true} {
		cfg, err := session.ParseRedisURL(srv.URL() + "?dial_timeout=500ms")
		if err != nil {
			t.Fatal(err)
		}
		cfg.OutageLocalWindow = localWindow
		store, err := session.NewRedisStore(cfg, secrets, nil)
		if err != nil {
			t.Fatal(err)
		}
		relays[localWindow] = relaytest.StartRelay(t, relaytest.BaseConfig("http://127.0.0.1:9"), store, "")
	}
	for _, r := range relays {
		eventually(t, r.URL, "/api/mte-ready", 200)
	}
	srv.Kill()
	eventually(t, relays[false].URL, "/api/mte-ready", 503)
	for localWindow, r := range relays {
		if got := statusOf(t, r.URL, "/api/mte-echo"); got != 200 {
			t.Errorf("local-window %v: liveness %d during the outage", localWindow, got)
		}
	}
	if got := statusOf(t, relays[true].URL, "/api/mte-ready"); got != 200 {
		t.Errorf("local-window: readiness %d during the outage, want 200", got)
	}
	srv.Restart()
	eventually(t, relays[false].URL, "/api/mte-ready", 200)
}

// TestReadinessDrain: after Drain the relay still relays and answers
// liveness, but readiness is 503.
func TestReadinessDrain(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	if got := statusOf(t, p.B.URL, "/api/mte-ready"); got != 200 {
		t.Fatalf("before drain: %d", got)
	}
	p.B.Server.Drain()
	if got := statusOf(t, p.B.URL, "/api/mte-ready"); got != 503 {
		t.Errorf("draining: readiness %d, want 503", got)
	}
	if got := statusOf(t, p.B.URL, "/api/mte-echo"); got != 200 {
		t.Errorf("draining: liveness %d, want 200", got)
	}
	if r := do(t, p.Request(t, "POST", "/still", strings.NewReader("served"))); r.status != 200 || string(r.body) != "served" {
		t.Errorf("draining: a request through the pair got %d %q", r.status, r.body)
	}
}

// TestReadinessCoversEveryDomain: with DOMAIN_MAP each entry has its own
// store; here each on its own redis-server. Losing the second entry's Redis
// makes readiness 503 and health degraded, although the first entry's store
// is fine.
func TestReadinessCoversEveryDomain(t *testing.T) {
	t.Parallel()
	redis := map[string]*redistest.Server{"one.example": redistest.Start(t), "two.example": redistest.Start(t)}
	cfg := relaytest.BaseConfig("")
	cfg.Domains = []proxy.Domain{{Host: "one.example", Upstream: "http://127.0.0.1:9"}, {Host: "two.example", Upstream: "http://127.0.0.1:9"}}
	b := relaytest.StartRelayStores(t, cfg, func(namespace string, secrets *session.Secrets) (session.Store, error) {
		rc, err := session.ParseRedisURL(redis[namespace].URL() + "?dial_timeout=500ms")
		if err != nil {
			return nil, err
		}
		rc.Namespace = namespace
		return session.NewRedisStore(rc, secrets, nil)
	}, "")
	eventually(t, b.URL, "/api/mte-ready", 200)
	redis["two.example"].Kill()
	eventually(t, b.URL, "/api/mte-ready", 503)
	resp, err := http.Get(b.URL + "/api/mte-health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"degraded"`) {
		t.Errorf("health with one entry's Redis down: %d %s", resp.StatusCode, body)
	}
}
