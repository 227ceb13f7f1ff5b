package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

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
