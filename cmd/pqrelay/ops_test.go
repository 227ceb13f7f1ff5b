package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelpListsEveryVariable runs `pqrelay -h`: it exits 0 and has one line
// per variable of the table with the variable's default on it.
func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help"} {
		out, err := exec.Command(binary(t), arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		lines := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				lines[f[0]] = line
			}
		}
		for _, v := range variables {
			if line, ok := lines[v.name]; !ok || !strings.Contains(line, " "+v.def+" ") {
				t.Errorf("%s: no line for %s with default %q in\n%s", arg, v.name, v.def, out)
			}
		}
	}
}

// TestSettingsReadOnlyTheTable: loadSettings asks the environment for the
// table's variables and nothing else, so -h and the parser cannot drift.
func TestSettingsReadOnlyTheTable(t *testing.T) {
	t.Parallel()
	var asked []string
	good := env()
	if _, err := loadSettings(func(k string) string { asked = append(asked, k); return good(k) }); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range variables {
		names = append(names, v.name)
	}
	slices.Sort(asked)
	slices.Sort(names)
	if !slices.Equal(slices.Compact(asked), names) {
		t.Errorf("read %v, table has %v", asked, names)
	}
}

// TestREADMEListsEveryVariable: the README has a table row for each
// variable (one row may name several).
func TestREADMEListsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string // the first cell of every table row
	for _, line := range strings.Split(string(readme), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 2 && cells[0] == "" {
			rows = append(rows, cells[1])
		}
	}
	for _, v := range variables {
		if !slices.ContainsFunc(rows, func(cell string) bool { return strings.Contains(cell, "`"+v.name+"`") }) {
			t.Errorf("README.md has no table row for %s", v.name)
		}
	}
}

// TestVersion builds the binary as make does, with version and commit set
// by the linker, and without: -version prints them (or "unknown"), and the
// start-up log carries them.
func TestVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "pqrelay")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=v9.8.7 -X main.commit=c0ffee", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		bin, want string
	}{
		{bin, "pqrelay v9.8.7 commit c0ffee go1."},
		{binary(t), "pqrelay unknown commit unknown go1."},
	} {
		out, err := exec.Command(c.bin, "-version").Output()
		if err != nil || !strings.HasPrefix(string(out), c.want) {
			t.Errorf("-version: %q %v, want %q…", out, err, c.want)
		}
	}
	out, err := exec.Command(bin, "-bogus").CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "pqrelay -h") {
		t.Errorf("-bogus: exit %v, %q", err, out)
	}

	r := startRelay(t, "http://127.0.0.1:9")
	if !strings.Contains(r.logs.String(), "version=unknown") {
		t.Errorf("start-up log without the version: %s", r.logs)
	}
}

// TestJSONLogsAndMetricsListener starts the binary with LOG_FORMAT=json and
// METRICS_PORT set: every log line is a JSON object, and /metrics on the
// metrics port answers the exposition with the build-info series, while the
// relay's own port does not serve it.
func TestJSONLogsAndMetricsListener(t *testing.T) {
	t.Parallel()
	metricsPort := freePort(t)
	r := startRelay(t, "http://127.0.0.1:9", "LOG_FORMAT=json", "LOG_LEVEL=debug", fmt.Sprintf("METRICS_PORT=%d", metricsPort))
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(metricsURL)
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metrics listener: %v\n%s", err, r.logs)
		}
	}
	if !strings.Contains(string(body), `pqrelay_build_info{version="unknown",commit="unknown",goversion="go1.`) {
		t.Errorf("metrics without build info:\n%s", body)
	}
	// The relay records into the recorder the listener serves.
	refused, _ := http.NewRequest("GET", r.url+"/api/items", nil)
	refused.Header.Set("x-mte-outbound-token", "wrong")
	if resp, err := http.DefaultClient.Do(refused); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `pqrelay_requests_total{role="outbound",code="MTE_TOKEN_INVALID"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("metrics after a refused request lack %s", want)
	}
	resp, err = http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 && resp.Header.Get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8" {
		t.Error("the relay's own port serves /metrics")
	}

	sc := bufio.NewScanner(strings.NewReader(r.logs.String()))
	lines := 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("log line %q is not a JSON record: %v", sc.Text(), err)
		}
		lines++
	}
	if lines == 0 {
		t.Error("no log lines")
	}
}

// TestSIGTERMTurnsReadinessOff: from SIGTERM on, /api/mte-ready answers 503
// while the relay keeps accepting for SHUTDOWN_DELAY (liveness and new
// connections still served), then it exits 0.
func TestSIGTERMTurnsReadinessOff(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "http://127.0.0.1:9", "SHUTDOWN_DELAY=2s")
	get := func(path string) int {
		resp, err := http.Get(r.url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/api/mte-ready"); got != 200 {
		t.Fatalf("ready before SIGTERM: %d", got)
	}
	sent := time.Now()
	r.cmd.Process.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(time.Second); get("/api/mte-ready") != 503; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("readiness still 200 a second after SIGTERM")
		}
	}
	if got := get("/api/mte-echo"); got != 200 {
		t.Errorf("liveness during the delay: %d", got)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, r.logs)
		}
		if waited := time.Since(sent); waited < 2*time.Second {
			t.Errorf("exited %v after SIGTERM, before SHUTDOWN_DELAY", waited)
		}
		r.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGTERM")
	}
}

// TestMetricsOfAPairOfBinaries: relay B's /metrics, after a request from
// relay A, counts it as an inbound request and shows the relay link A
// opened, the gauge main wires to the server.
func TestMetricsOfAPairOfBinaries(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	metricsPort := freePort(t)
	b := startRelay(t, upstream.URL, fmt.Sprintf("METRICS_PORT=%d", metricsPort))
	a := startRelay(t, upstream.URL)
	req, _ := http.NewRequest("GET", a.url+"/items", nil)
	req.Header.Set("x-mte-outbound-token", goodToken)
	req.Header.Set("x-mte-upstream", b.url)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("through the pair: %d %q\nA: %s\nB: %s", resp.StatusCode, body, a.logs, b.logs)
	}
	var exposition string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(m.Body)
		m.Body.Close()
		exposition = string(text)
		// A opens its link in the background, after the first request.
		if !strings.Contains(exposition, "\npqrelay_link_connections 0\n") || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{`pqrelay_requests_total{role="inbound",code="ok"} 1`, `pqrelay_pairings_total{role="inbound",result="ok"} 1`} {
		if !strings.Contains(exposition, want) {
			t.Errorf("B's metrics lack %s", want)
		}
	}
	if strings.Contains(exposition, "\npqrelay_link_connections 0\n") {
		t.Errorf("B's metrics show no relay link:\n%s", exposition)
	}
}
