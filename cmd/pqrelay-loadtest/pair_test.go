package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/loadtest"
	"github.com/pqrelay/pqrelay/relaytest"
)

// TestRunThroughARealPair is the tiny end-to-end run: the bundled
// upstream, a real relay pair in front of it (relaytest), and the command
// loading both sides with 10 connections for about a second each. Every
// relayed response must be complete, 2xx, of the right size and checksum.
func TestRunThroughARealPair(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 1024)
	b := relaytest.StartRelay(t, relaytest.BaseConfig(up.URL()), nil, "")
	a := relaytest.StartRelay(t, relaytest.BaseConfig(up.URL()), nil, "")

	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "r.json")
	// The token comes from a file, as it should outside tests: on the
	// command line every user of the machine could read it in ps. A
	// missing token would fail every relay request with 401.
	tokenFile := filepath.Join(dir, "relay-headers")
	if err := os.WriteFile(tokenFile, []byte("# the relay's token\nx-mte-outbound-token: "+relaytest.Token+"\r\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := realMain(context.Background(), []string{
		"run", "--control", up.URL(), "--relay", a.URL,
		"--relay-header", "x-mte-upstream: " + b.URL,
		"--relay-header", "@" + tokenFile,
		"-c", "10", "-d", "1s", "--warmup", "300ms", "--size", "1KiB", "--verify", "auto",
		"--json", jsonFile,
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	rep := readReport(t, jsonFile)
	if len(rep.Tiers) != 1 || rep.Tiers[0].Relay == nil || rep.Tiers[0].Control == nil {
		t.Fatalf("report: %+v", rep)
	}
	relay, control := rep.Tiers[0].Relay, rep.Tiers[0].Control
	if relay.Requests < 100 || relay.Failed() != 0 || control.Failed() != 0 {
		t.Fatalf("relay %d requests, %d failed; control %d failed\n%s", relay.Requests, relay.Failed(), control.Failed(), out.String())
	}
	if relay.Latency.P50 <= 0 || relay.Latency.P99 < relay.Latency.P50 {
		t.Fatalf("relay latency percentiles: %+v", relay.Latency)
	}
}

// readReport reads a --json report the command wrote.
func readReport(t *testing.T, path string) loadtest.Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := loadtest.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestDemoReportThroughARealPair is make demo in small: a users run
// against an API that takes 20 ms and a closed-loop cost run, both
// straight and through a real pair, with CPU read from /proc, combined by
// the report command into the text and the HTML page. Not parallel: its
// pair and users would take the CPU from the other tests' short windows.
func TestDemoReportThroughARealPair(t *testing.T) {
	slow, err := loadtest.StartUpstream("127.0.0.1:0", 1024, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	fast := startUpstream(t, 1024)
	bSlow := relaytest.StartRelay(t, relaytest.BaseConfig(slow.URL()), nil, "")
	bFast := relaytest.StartRelay(t, relaytest.BaseConfig(fast.URL()), nil, "")
	a := relaytest.StartRelay(t, relaytest.BaseConfig(slow.URL()), nil, "")
	pid := strconv.Itoa(os.Getpid()) // everything runs in this process

	dir := t.TempDir()
	users, cost, page := filepath.Join(dir, "users.json"), filepath.Join(dir, "cost.json"), filepath.Join(dir, "demo.html")
	run := func(args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		base := []string{"run", "--relay", a.URL, "--relay-header", "x-mte-outbound-token: " + relaytest.Token,
			"--verify", "auto", "--warmup", "100ms", "--quiet", "--commit", "test-commit-1234",
			"--control-pid", pid, "--relay-pid", pid}
		if code := realMain(context.Background(), append(base, args...), &out, &errb); code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
		}
	}
	run("--control", slow.URL(), "--relay-header", "x-mte-upstream: "+bSlow.URL,
		"-c", "5,20", "--think", "100ms", "--ramp", "200ms", "-d", "800ms", "--json", users)
	// A pairs with B' in this run's warm-up. Seen once in ~20 runs under
	// load: after a 100 ms warm-up, every request through the new pair
	// stalled past the end of a 500 ms window; a longer warm-up keeps this
	// test about the report.
	run("--control", fast.URL(), "--relay-header", "x-mte-upstream: "+bFast.URL, "-c", "5", "--warmup", "500ms", "-d", "500ms", "--json", cost)

	u := readReport(t, users)
	for _, tier := range u.Tiers {
		if tier.Relay.Failed() != 0 || tier.Relay.Requests == 0 {
			t.Fatalf("%d users through the pair: %+v", tier.Connections, tier.Relay)
		}
		// 20 ms answers and 100 ms think: no user sends more than 10/s.
		if most := int64(tier.Connections) * 10; tier.Relay.Requests > most {
			t.Fatalf("%d users sent %d requests in 0.8 s, above what thinking users can", tier.Connections, tier.Relay.Requests)
		}
	}

	var out, errb bytes.Buffer
	if code := realMain(context.Background(), []string{"report", "--users", users, "--cost", cost, "--html", page}, &out, &errb); code != exitOK {
		t.Fatalf("report exit %d: %s", code, errb.String())
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{"text": out.String(), "html": string(html)} {
		for _, want := range []string{"28,050", "84.3%", "+202", "test-commit-1234", "CPU µs/req", "of CPU per request", "20 users"} {
			if name == "text" && want == "20 users" {
				want = "20 Control API" // a table row, once spaces are collapsed
			}
			if !strings.Contains(strings.Join(strings.Fields(doc), " "), want) {
				t.Errorf("%s report lacks %q", name, want)
			}
		}
	}
}
