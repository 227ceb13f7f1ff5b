package proxy

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/session"
)

// TestFresh pins the frame clock bound (docs/PROTOCOL.md §6.1) at its edges.
func TestFresh(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_800_000_000_000)
	s := &Server{now: func() time.Time { return now }}
	skew := session.MaxClockSkew
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{now, true},
		{now.Add(-skew), true},
		{now.Add(skew), true},
		{now.Add(-skew - time.Millisecond), false},
		{now.Add(skew + time.Millisecond), false},
		{time.UnixMilli(0), false},
	} {
		if got := s.fresh(c.at.UnixMilli()); got != c.want {
			t.Errorf("frame from %v at %v: fresh = %v, want %v", c.at, now, got, c.want)
		}
	}
}

// TestErrorTableDocumented keeps docs/PROTOCOL.md §8 and errorTable in step.
func TestErrorTableDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(MTE_[A-Z_]+)` \\| (\\d{3}) \\|").FindAllSubmatch(doc, -1) {
		status, _ := strconv.Atoi(string(m[2]))
		rows[string(m[1])] = status
	}
	for _, e := range errorTable {
		if status, ok := rows[e.code]; !ok || status != e.status {
			t.Errorf("%s (%d) is not in docs/PROTOCOL.md §8 with that status", e.code, e.status)
		}
		delete(rows, e.code)
	}
	for code := range rows {
		t.Errorf("docs/PROTOCOL.md §8 lists %s, which proxy/errors.go does not define", code)
	}
}

// TestMigratingGuideCodes keeps docs/MIGRATING.md true to the error table:
// every relay error code it gives a status, and every code in its error
// statuses section, is one a relay answers, with that status.
func TestMigratingGuideCodes(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/MIGRATING.md")
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]int{}
	for _, e := range errorTable {
		status[e.code] = e.status
	}
	checked := 0
	for _, re := range []string{"(\\d{3}) `(MTE_[A-Z_]+)`", "`(MTE_[A-Z_]+)` \\((\\d{3})\\)"} {
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(doc), -1) {
			code, n := m[2], m[1]
			if strings.HasPrefix(m[1], "MTE_") {
				code, n = m[1], m[2]
			}
			if want, _ := strconv.Atoi(n); status[code] != want {
				t.Errorf("docs/MIGRATING.md gives %s the status %s; the relay answers %d", code, n, status[code])
			}
			checked++
		}
	}
	_, section, _ := strings.Cut(string(doc), "\n## Error statuses\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, m := range regexp.MustCompile("`(MTE_[A-Z_]+)`").FindAllStringSubmatch(section, -1) {
		if _, ok := status[m[1]]; !ok {
			t.Errorf("docs/MIGRATING.md's error statuses name %s, which proxy/errors.go does not define", m[1])
		}
		checked++
	}
	if checked < 20 {
		t.Fatalf("only %d codes found in docs/MIGRATING.md: has its layout changed?", checked)
	}
}

// TestPeerTableEvictsIdle: with ALLOWED_PEERS unset, a table filled with
// origins named once (junk from a token holder, typos) no longer locks real
// peers out: once those have gone unnamed for peerEvictIdle, a new peer
// takes their place, and a peer still in use stays.
func TestPeerTableEvictsIdle(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Upstream: "http://127.0.0.1:9", ClientIDSecret: "peer-table-test-secret-8f3a91c07d2e4b65", OutboundToken: "peer-table-test-token-5521"},
		func(string, *session.Secrets) (session.Store, error) { return session.NewMemoryStore(0), nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	start := time.Now().UnixNano()
	for i := range maxPeers {
		if _, e := s.peers.lookup(s, fmt.Appendf(nil, "http://junk-%d.example", i), start); e != nil {
			t.Fatalf("peer %d: %s", i, e.code)
		}
	}
	inUse := []byte("http://junk-7.example")
	later := start + int64(peerEvictIdle)
	if _, e := s.peers.lookup(s, []byte("http://real.example"), later-int64(time.Second)); e != errUpstreamNotAllowed {
		t.Fatalf("a full table of peers named %v ago took a new one: %v", peerEvictIdle-time.Second, e)
	}
	s.peers.lookup(s, inUse, later-int64(time.Second))
	if _, e := s.peers.lookup(s, []byte("http://real.example"), later); e != nil {
		t.Fatalf("a table of idle peers refused a real one: %s", e.code)
	}
	if n := len(s.peers.byOrig); n != 2 {
		t.Errorf("%d peers after eviction, want 2 (the one in use and the new one)", n)
	}
	if s.peers.byValue[string(inUse)] == nil || len(s.peers.byValue) != 2 {
		t.Errorf("values after eviction: %d, the one in use kept: %v", len(s.peers.byValue), s.peers.byValue[string(inUse)] != nil)
	}
}

// TestDomainSiteChoice: an entry is chosen by the Host field in any case,
// the key with the request's port before the key without one; IPv6
// literals keep their colons; anything else is in no entry.
func TestDomainSiteChoice(t *testing.T) {
	t.Parallel()
	cfg := Config{ClientIDSecret: "site-choice-test-secret-8f3a91c07d2e4b65", OutboundToken: "site-choice-test-token-5521"}
	for _, host := range []string{"api.example.com", "api.example.com:8443", "[::1]", "10.0.0.1:9000"} {
		cfg.Domains = append(cfg.Domains, Domain{Host: host, Upstream: "http://127.0.0.1:9"})
	}
	s, err := New(cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for host, want := range map[string]string{
		"api.example.com": "api.example.com", "API.Example.COM": "api.example.com", "api.example.com:80": "api.example.com",
		"api.example.com:8443": "api.example.com:8443", "API.EXAMPLE.COM:8443": "api.example.com:8443",
		"[::1]": "[::1]", "[::1]:8080": "[::1]", "10.0.0.1:9000": "10.0.0.1:9000", "10.0.0.1": "", "10.0.0.1:9001": "",
		"example.com": "", "": "", ":8443": "", "api.example.com.": "", strings.Repeat("a", 300): "",
	} {
		got := ""
		if st := s.siteFor([]byte(host)); st != nil {
			got = st.host
		}
		if got != want {
			t.Errorf("Host %q: entry %q, want %q", host, got, want)
		}
		if app := s.appSite([]byte(host)); (want == "") != (app == s.site) {
			t.Errorf("Host %q: app requests use the relay-wide site: %v", host, app == s.site)
		}
	}
}
