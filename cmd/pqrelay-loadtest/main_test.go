package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pqrelay/pqrelay/internal/syncbuf"
	"github.com/pqrelay/pqrelay/loadtest"
	"github.com/valyala/fasthttp"
)

func init() {
	// Commands run in parallel in this process; none may change its
	// GOMAXPROCS under the others.
	setProcs = func(int) {}
}

func TestBadFlagsExit2WithOneLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	headerFile := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return "@" + path
	}
	badLine := headerFile("bad-line", "a: b\n\nx-mte-outbound-token secret-in-file\n")
	noHeader := headerFile("no-header", "# only a comment\n\n")
	crlfInside := headerFile("cr-inside", "a: b\rc: d\n")
	tests := []struct {
		name string
		args []string
		want string // in the error line
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"bench"}, "unknown command"},
		{"unknown flag", []string{"run", "--control", "http://127.0.0.1:1", "--nope"}, "nope"},
		{"no target", []string{"run"}, "--control"},
		{"bad size", []string{"run", "--control", "http://127.0.0.1:1", "--size", "1K"}, "ambiguous"},
		{"long flag spelled as in the usage", []string{"run", "--control", "http://127.0.0.1:1", "--size", "1K"}, "flag --size"},
		{"missing value", []string{"run", "--control"}, "argument: --control"},
		{"unknown long flag", []string{"run", "--control", "http://127.0.0.1:1", "--nope"}, "defined: --nope"},
		{"bad size unit", []string{"run", "--control", "http://127.0.0.1:1", "--size", "1.5KiB"}, "size"},
		{"bad connections", []string{"run", "--control", "http://127.0.0.1:1", "-c", "100,x"}, `"x"`},
		{"zero connections", []string{"run", "--control", "http://127.0.0.1:1", "-c", "0"}, "connection count"},
		{"bad duration", []string{"run", "--control", "http://127.0.0.1:1", "-d", "ten"}, "-d"},
		{"zero duration", []string{"run", "--control", "http://127.0.0.1:1", "-d", "0s"}, "--duration"},
		{"negative warmup", []string{"run", "--control", "http://127.0.0.1:1", "--warmup", "-1s"}, "--warmup"},
		{"zero timeout", []string{"run", "--control", "http://127.0.0.1:1", "--timeout", "0s"}, "--timeout"},
		{"negative rate", []string{"run", "--control", "http://127.0.0.1:1", "--rate", "-5"}, "--rate"},
		{"bad header", []string{"run", "--control", "http://127.0.0.1:1", "--header", "x"}, "Name: value"},
		{"header CRLF", []string{"run", "--control", "http://127.0.0.1:1", "--header", "a: b\r\nc: d"}, "control character"},
		{"header file missing", []string{"run", "--control", "http://127.0.0.1:1", "--header", "@" + filepath.Join(dir, "nope")}, "no such file"},
		{"header file bad line", []string{"run", "--control", "http://127.0.0.1:1", "--relay", "http://127.0.0.1:2", "--relay-header", badLine}, "bad-line line 3"},
		{"header file empty", []string{"run", "--control", "http://127.0.0.1:1", "--header", noHeader}, "holds no header"},
		{"header file CR", []string{"run", "--control", "http://127.0.0.1:1", "--header", crlfInside}, "control character"},
		{"relay header without relay", []string{"run", "--control", "http://127.0.0.1:1", "--relay-header", "a: b"}, "--relay"},
		{"bad verify", []string{"run", "--control", "http://127.0.0.1:1", "--verify", "xyz"}, "checksum"},
		{"verify auto without size", []string{"run", "--control", "http://127.0.0.1:1", "--expect-size", "any", "--verify", "auto"}, "--verify auto"},
		{"expect size zero", []string{"run", "--control", "http://127.0.0.1:1", "--expect-size", "0"}, "any"},
		{"bad control URL", []string{"run", "--control", "127.0.0.1:9000"}, "--control"},
		{"bad relay URL", []string{"run", "--control", "http://127.0.0.1:1", "--relay", "ftp://x"}, "--relay"},
		{"path twice", []string{"run", "--control", "http://127.0.0.1:1/a", "--path", "/b"}, "already has a path"},
		{"relative path", []string{"run", "--control", "http://127.0.0.1:1", "--path", "api"}, "--path"},
		{"bad method", []string{"run", "--control", "http://127.0.0.1:1", "--method", "GE T"}, "method"},
		{"stray argument", []string{"run", "--control", "http://127.0.0.1:1", "extra"}, `"extra"`},
		{"negative procs", []string{"run", "--control", "http://127.0.0.1:1", "--procs", "-1"}, "--procs"},
		{"procs beyond the machine", []string{"run", "--control", "http://127.0.0.1:1", "--procs", "99999"}, "--procs"},
		{"lower-case method", []string{"run", "--control", "http://127.0.0.1:1", "--method", "head"}, "did you mean HEAD?"},
		{"HEAD with a body check", []string{"run", "--control", "http://127.0.0.1:1", "--method", "HEAD", "--expect-size", "1KiB"}, "no body"},
		{"HEAD with verify", []string{"run", "--control", "http://127.0.0.1:1", "--method", "HEAD", "--verify", "auto"}, "--verify auto"},
		{"query twice", []string{"run", "--control", "http://127.0.0.1:1?a=1", "--path", "/p?b=2"}, "both have a query"},
		{"path is a URL", []string{"run", "--control", "http://127.0.0.1:1", "--path", "//evil.example/p"}, "--path"},
		{"negative think", []string{"run", "--control", "http://127.0.0.1:1", "--think", "-1s"}, "--think"},
		{"jitter beyond think", []string{"run", "--control", "http://127.0.0.1:1", "--think", "1s", "--think-jitter", "2s"}, "--think-jitter"},
		{"think and rate", []string{"run", "--control", "http://127.0.0.1:1", "--think", "1s", "--rate", "100"}, "exclude each other"},
		{"negative ramp", []string{"run", "--control", "http://127.0.0.1:1", "--ramp", "-1s"}, "--ramp"},
		{"bad pid", []string{"run", "--control", "http://127.0.0.1:1", "--control-pid", "x"}, "process id"},
		{"relay pid without relay", []string{"run", "--control", "http://127.0.0.1:1", "--relay-pid", "1"}, "--relay-pid needs --relay"},
		{"upstream bad port", []string{"upstream", "--port", "70000"}, "--port"},
		{"upstream bad size", []string{"upstream", "--size", "lots"}, "size"},
		{"upstream negative delay", []string{"upstream", "--delay", "-1ms"}, "--delay"},
		{"upstream bad addr", []string{"upstream", "--addr", "example.com"}, "--addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := realMain(context.Background(), tt.args, &out, &errb)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, errb.String())
			}
			if out.Len() != 0 {
				t.Errorf("stdout not empty: %q", out.String())
			}
			if tt.args == nil {
				return // bare invocation prints the usage
			}
			msg := errb.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
				t.Fatalf("want exactly one error line, got %q", msg)
			}
			if strings.Contains(msg, "secret-in-file") {
				t.Fatalf("error line %q echoes a line of a header file", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("error line %q does not mention %q", msg, tt.want)
			}
		})
	}
}

func TestHelpExits0(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"run", "-h"}, {"upstream", "--help"}} {
		var out, errb bytes.Buffer
		if code := realMain(context.Background(), args, &out, &errb); code != exitOK || out.Len() == 0 || errb.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q", args, code, out.Len(), errb.String())
		}
	}
}

func TestTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, path string
		pathSet    bool
		want       string
		ok         bool
	}{
		{"http://127.0.0.1:9000", "/api/echo", false, "http://127.0.0.1:9000/api/echo", true},
		{"http://127.0.0.1:9000/", "/api/echo", false, "http://127.0.0.1:9000/api/echo", true},
		{"http://127.0.0.1:9000/v1/x?q=1", "/api/echo", false, "http://127.0.0.1:9000/v1/x?q=1", true},
		{"http://127.0.0.1:9000?q=1", "/api/echo", false, "http://127.0.0.1:9000/api/echo?q=1", true},
		{"http://127.0.0.1:9000/?q=1", "/api/echo", false, "http://127.0.0.1:9000/api/echo?q=1", true},
		{"http://127.0.0.1:9000", "/api/echo?q=1", true, "http://127.0.0.1:9000/api/echo?q=1", true},
		{"http://127.0.0.1:9000", "/a%2Fb", true, "http://127.0.0.1:9000/a%2Fb", true},
		{"https://api.example:8443", "/p", true, "https://api.example:8443/p", true},
		{"http://127.0.0.1:9000/v1", "/p", true, "", false},
		{"127.0.0.1:9000", "/p", false, "", false},
		{"http://", "/p", false, "", false},
	}
	for _, tt := range tests {
		got, err := target(tt.base, tt.path, tt.pathSet)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("target(%q, %q, %v) = %q, %v; want %q", tt.base, tt.path, tt.pathSet, got, err, tt.want)
		}
	}
}

func TestUpstreamCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- realMain(ctx, []string{"upstream", "--port", "0", "--size", "512", "--delay", "1ms"}, &out, &errb)
	}()

	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line; stderr %q", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	line := out.String()
	if !strings.HasPrefix(line, "listening on http://127.0.0.1:") || !strings.Contains(line, "body 512 bytes") ||
		!strings.Contains(line, "crc32c "+loadtest.FormatChecksum(loadtest.Checksum(loadtest.Body(512)))) {
		t.Fatalf("listening line %q", line)
	}
	addr := strings.Fields(strings.TrimPrefix(line, "listening on http://"))[0]
	res, err := loadtest.Run(context.Background(), loadtest.Config{
		URL: "http://" + addr + "/anything", Connections: 2, Duration: 200 * time.Millisecond,
		ExpectSize: 512, Verify: true, VerifyChecksum: loadtest.Checksum(loadtest.Body(512)),
	})
	if err != nil || res.Requests == 0 || res.Failed() != 0 {
		t.Fatalf("load against the upstream command: %+v, %v", res, err)
	}

	cancel() // what SIGINT/SIGTERM do through signal.NotifyContext
	select {
	case code := <-done:
		if code != exitOK || errb.String() != "" {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream did not shut down")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("port still open after shutdown")
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("upstream printed %d lines, want 1: %q", n, out.String())
	}
}

func TestRunCommandEndToEnd(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 1024)
	dir := t.TempDir()
	jsonFile, htmlFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out, errb bytes.Buffer
	code := realMain(context.Background(), []string{
		"run", "--control", up.URL(), "--relay", up.URL(),
		"--relay-header", "x-mte-upstream: http://127.0.0.1:1", "--relay-header", "x-mte-outbound-token: secret-token-value",
		"-c", "2,3", "-d", "600ms", "--warmup", "100ms", "--size", "1KiB", "--verify", "auto",
		"--json", jsonFile, "--html", htmlFile,
	}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errb.String())
	}
	md := out.String()
	for _, want := range []string{"### 2 connections\n", "### 3 connections\n", "| | # Requests | Req/second | Median (ms) | p90 | p99 |\n", "| Result | "} {
		if !strings.Contains(md, want) {
			t.Errorf("stdout lacks %q:\n%s", want, md)
		}
	}
	if strings.Count(md, "| Result | ") != 2 {
		t.Errorf("want 2 Result rows:\n%s", md)
	}
	// Progress goes to stderr (plain lines: the test's stderr is no TTY).
	if !strings.Contains(errb.String(), "[2 conns] pqrelay done: ") {
		t.Errorf("stderr lacks the progress summary:\n%s", errb.String())
	}
	rep := readReport(t, jsonFile)
	if len(rep.Tiers) != 2 || rep.Tiers[1].Connections != 3 || rep.Tiers[0].Relay == nil || rep.Tiers[0].Relay.Requests == 0 {
		t.Fatalf("JSON report: %+v", rep)
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range [][]byte{page, []byte(md)} {
		if bytes.Contains(file, []byte("secret-token-value")) {
			t.Fatal("a report leaks the relay header value")
		}
	}
}

func TestRunCommandNoSuccessExits1(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out, errb bytes.Buffer
	code := realMain(context.Background(), []string{"run", "--control", "http://" + addr, "-c", "1", "-d", "200ms", "--warmup", "0s", "--quiet"}, &out, &errb)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(errb.String(), "no successful response from Control API with 1 connection (") {
		t.Fatalf("stderr %q", errb.String())
	}
	if !strings.Contains(out.String(), "| Control API | 0 |") {
		t.Fatalf("the table is still printed: %q", out.String())
	}
}

func TestRunCommandInterrupted(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the first tier is done and the second has started, as
	// the progress on stderr says: a fixed delay would race a busy machine.
	errb := &cancelOn{cancel: cancel, text: "[2 conns] Control API starting"}
	var out bytes.Buffer
	code := realMain(ctx, []string{"run", "--control", up.URL(), "-c", "1,2", "-d", "200ms", "--warmup", "0s", "--expect-size", "any"}, &out, errb)
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitInterrupted, errb.String())
	}
	if !strings.Contains(out.String(), "### 1 connection\n") || strings.Contains(out.String(), "### 2 connections") {
		t.Fatalf("want the finished tier only:\n%s", out.String())
	}
}

// cancelOn is a stderr that calls cancel once text has been written.
type cancelOn struct {
	syncbuf.Buffer
	cancel context.CancelFunc
	text   string
}

func (c *cancelOn) Write(p []byte) (int, error) {
	n, err := c.Buffer.Write(p)
	if strings.Contains(c.Buffer.String(), c.text) {
		c.cancel()
	}
	return n, err
}

func TestProgressOutput(t *testing.T) {
	t.Parallel()
	pr := loadtest.Progress{Elapsed: 1500 * time.Millisecond, Total: 10 * time.Second, Requests: 3000, Failed: 2}
	res := loadtest.Result{Requests: 30000, Duration: 10 * time.Second, Errors: 1}

	var tty bytes.Buffer
	p := newProgress(&tty, true, false)
	p.start("[100 conns] pqrelay")
	p.update(pr)
	p.done(res)
	got := tty.String()
	if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") || strings.Count(got, "\r") != 3 {
		t.Fatalf("TTY output should rewrite one line in place: %q", got)
	}
	if !strings.Contains(got, "\r[100 conns] pqrelay 1.5s/10s 2,000 req/s 2 failed") {
		t.Fatalf("TTY progress line: %q", got)
	}
	if !strings.Contains(got, "done: 30,000 requests, 3,000 req/s, 1 failed") {
		t.Fatalf("TTY summary: %q", got)
	}

	var plain bytes.Buffer
	p = newProgress(&plain, false, false)
	p.start("[100 conns] pqrelay")
	p.update(pr)
	p.done(res)
	if got := plain.String(); strings.Contains(got, "\r") || strings.Count(got, "\n") != 3 {
		t.Fatalf("plain output should be whole lines: %q", got)
	}
	if p.interval() != plainInterval || newProgress(nil, true, false).interval() != ttyInterval {
		t.Fatal("intervals")
	}

	var quiet bytes.Buffer
	p = newProgress(&quiet, true, true)
	p.start("x")
	p.update(pr)
	p.done(res)
	if quiet.Len() != 0 {
		t.Fatalf("quiet printed %q", quiet.String())
	}
}

// startUpstream starts the bundled upstream with a body of size bytes for
// the length of the test.
func startUpstream(t *testing.T, size int) *loadtest.Upstream {
	t.Helper()
	up, err := loadtest.StartUpstream("127.0.0.1:0", size, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	return up
}

// captureServer answers every request with a 2-byte 200 and keeps the
// head (request line and headers) and body length of the first one.
func captureServer(t *testing.T) (url string, first func() (head string, body int)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan [2]any, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					select {
					case got <- [2]any{req.Header.String(), len(req.Body())}:
					default:
					}
					if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String(), func() (string, int) {
		select {
		case r := <-got:
			return r[0].(string), r[1].(int)
		case <-time.After(5 * time.Second):
			t.Fatal("no request reached the capture server")
			return "", 0
		}
	}
}

func TestRunCommandBodyFollowsMethod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, size string // size "" leaves --size at its default
		body         int
	}{
		{"POST", "", 1024},
		{"PUT", "", 1024},
		{"GET", "", 0},
		{"DELETE", "", 0},
		{"GET", "512", 512}, // asked for explicitly
	}
	for _, tt := range tests {
		t.Run(tt.method+"/"+tt.size, func(t *testing.T) {
			t.Parallel()
			url, first := captureServer(t)
			args := []string{"run", "--control", url, "--method", tt.method, "-c", "1", "-d", "500ms",
				"--warmup", "0s", "--quiet", "--expect-size", "any"}
			if tt.size != "" {
				args = append(args, "--size", tt.size)
			}
			var out, errb bytes.Buffer
			if code := realMain(context.Background(), args, &out, &errb); code != exitOK {
				t.Fatalf("exit %d; stderr %q", code, errb.String())
			}
			head, body := first()
			if body != tt.body {
				t.Fatalf("%s sent a %d-byte body, want %d:\n%s", tt.method, body, tt.body, head)
			}
			if tt.body == 0 && strings.Contains(head, "Content-Type") {
				t.Errorf("a request without a body names a Content-Type:\n%s", head)
			}
		})
	}
}

func TestRunCommandHEAD(t *testing.T) {
	t.Parallel()
	// The bundled upstream answers HEAD with the headers of its 1 KiB
	// body and no body: each must count as a success.
	up := startUpstream(t, 1024)
	jsonFile := filepath.Join(t.TempDir(), "r.json")
	var out, errb bytes.Buffer
	code := realMain(context.Background(), []string{"run", "--control", up.URL(), "--method", "HEAD",
		"-c", "2", "-d", "500ms", "--warmup", "0s", "--quiet", "--json", jsonFile}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	c := readReport(t, jsonFile).Tiers[0].Control
	if c.Requests == 0 || c.Failed() != 0 {
		t.Fatalf("HEAD run: %+v", c)
	}
}

func TestRunCommandOutputFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	t.Run("unwritable path fails before the run", func(t *testing.T) {
		t.Parallel()
		var out, errb bytes.Buffer
		// -d 1h: were the run to start, the test would time out.
		code := realMain(context.Background(), []string{"run", "--control", "http://127.0.0.1:1", "-d", "1h",
			"--json", filepath.Join(dir, "no-such-dir", "r.json")}, &out, &errb)
		if code != exitFailed || !strings.Contains(errb.String(), "no such file or directory") {
			t.Fatalf("exit %d; stderr %q", code, errb.String())
		}
	})
	t.Run("a directory is refused", func(t *testing.T) {
		t.Parallel()
		var out, errb bytes.Buffer
		code := realMain(context.Background(), []string{"run", "--control", "http://127.0.0.1:1", "-d", "1h",
			"--html", dir}, &out, &errb)
		if code != exitFailed || !strings.Contains(errb.String(), "is a directory") {
			t.Fatalf("exit %d; stderr %q", code, errb.String())
		}
	})
	t.Run("a failed run keeps the previous file", func(t *testing.T) {
		t.Parallel()
		sub := t.TempDir()
		previous := filepath.Join(sub, "r.json")
		if err := os.WriteFile(previous, []byte("previous"), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // interrupted before the first tier finished
		var out, errb bytes.Buffer
		if code := realMain(ctx, []string{"run", "--control", "http://127.0.0.1:1", "-d", "1h", "--json", previous},
			&out, &errb); code == exitOK {
			t.Fatalf("exit %d", code)
		}
		if b, err := os.ReadFile(previous); err != nil || string(b) != "previous" {
			t.Fatalf("previous file now %q, %v", b, err)
		}
		// And a run that fails creates no file.
		created := filepath.Join(sub, "new.html")
		if code := realMain(ctx, []string{"run", "--control", "http://127.0.0.1:1", "-d", "1h", "--html", created},
			&out, &errb); code == exitOK {
			t.Fatalf("exit %d", code)
		}
		if _, err := os.Stat(created); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a failed run left %s: %v", created, err)
		}
	})
}

// TestRunCommandWarnings: what the table would leave for the reader to
// notice is also said on stderr, naming the tier and the flag to use.
func TestRunCommandWarnings(t *testing.T) {
	t.Parallel()
	slow, err := loadtest.StartUpstream("127.0.0.1:0", 1024, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slow.Close() })
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"shortfall", []string{"--rate", "500", "--expect-size", "any"}, []string{"[1 conns] Control API fell short of --rate by", "scheduled requests"}},
		{"every body bad", []string{"--size", "700"}, []string{"every response failed the body check (expected 700 bytes)", "--expect-size any"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			args := append([]string{"run", "--control", slow.URL(), "-c", "1", "-d", "500ms", "--warmup", "0s", "--quiet"}, tt.args...)
			realMain(context.Background(), args, &out, &errb)
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
		})
	}
}

// TestRunCommandUsersMode: --think makes users, the table says so, and
// --control-pid adds the target's CPU per request.
func TestRunCommandUsersMode(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, 1024)
	var out, errb bytes.Buffer
	code := realMain(context.Background(), []string{"run", "--control", up.URL(), "-c", "5", "-d", "600ms", "--warmup", "0s",
		"--think", "100ms", "--think-jitter", "10ms", "--ramp", "100ms", "--control-pid", strconv.Itoa(os.Getpid()), "--quiet"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{"### 5 users, 100ms think time", "CPU per request: Control API: target ", "loader "} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, out.String())
		}
	}
	if !strings.Contains(errb.String(), "peak RSS") {
		t.Errorf("stderr lacks the loader's peak RSS: %s", errb.String())
	}
}
