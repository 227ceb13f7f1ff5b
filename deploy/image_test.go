package deploy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// podmanRun is how containers start on this machine and on CI. runc, since
// crun fails on some cgroup layouts; ulimits no higher than the sandbox
// grants (podman otherwise asks to raise them and is refused); the host's
// network, so the pair and the upstream meet on loopback and no firewall
// chains are left behind.
var podmanRun = []string{"run", "--detach", "--runtime", "runc",
	"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000", "--network", "host",
	"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"}

func podman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("podman", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// buildImage runs make image with the given tag and version; the image is
// removed (by that tag) at cleanup.
func buildImage(t *testing.T, tag, version string) {
	t.Helper()
	cmd := exec.Command("make", "-C", repoRoot, "--no-print-directory", "image", "IMAGE="+tag, "VERSION="+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", tag).Run() })
}

// container is a running relay container.
type container struct{ id string }

// runRelayContainer starts the image with env and removes the container,
// by id, at cleanup.
func runRelayContainer(t *testing.T, image string, env ...string) *container {
	t.Helper()
	args := append([]string{}, podmanRun...)
	for _, e := range append([]string{"CLIENT_ID_SECRET=" + testSecret, "OUTBOUND_TOKEN=" + testToken, "LISTEN_ADDR=127.0.0.1"}, env...) {
		args = append(args, "--env", e)
	}
	c := &container{id: podman(t, append(args, image)...)}
	t.Cleanup(func() { exec.Command("podman", "rm", "--force", "--time", "0", c.id).Run() })
	return c
}

func (c *container) logs() string {
	out, _ := exec.Command("podman", "logs", c.id).CombinedOutput()
	return string(out)
}

// procStatus reads the container's main process from the host's /proc.
func (c *container) proc(t *testing.T, file string) string {
	t.Helper()
	pid := podman(t, "inspect", "--format", "{{.State.Pid}}", c.id)
	b, err := os.ReadFile("/proc/" + pid + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImage builds the image twice (same inputs, same digest), checks its
// configuration, then runs relay B and relay A as containers in front of an
// upstream on the host and sends a request through them: the answer comes
// back, both relays run as uid 65532 on a read-only root filesystem and are
// ready, relay B logs JSON with its version, the metrics listener reports
// the build, and SIGTERM (podman stop) ends each relay with exit status 0.
func TestImage(t *testing.T) {
	t.Parallel()
	tag := fmt.Sprintf("localhost/pqrelay:test-%d", os.Getpid())
	const version = "v0.0.0-image-test"
	buildImage(t, tag, version)
	buildImage(t, tag+"-again", version)
	id := podman(t, "image", "inspect", "--format", "{{.Id}}", tag)
	if again := podman(t, "image", "inspect", "--format", "{{.Id}}", tag+"-again"); again != id {
		t.Errorf("the same inputs gave two images: %s and %s", id, again)
	}
	t.Logf("image %s, %s bytes", id, podman(t, "image", "inspect", "--format", "{{.Size}}", tag))

	for _, c := range []struct{ format, want string }{
		{"{{.Config.User}}", "65532:65532"},
		{"{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}", "8080/tcp 9090/tcp"},
		{"{{.Config.Entrypoint}}", "[/pqrelay]"},
		{"{{index .Config.Labels \"org.opencontainers.image.version\"}}", version},
	} {
		if got := podman(t, "image", "inspect", "--format", c.format, tag); got != c.want {
			t.Errorf("image %s = %q, want %q", c.format, got, c.want)
		}
	}
	noShell := exec.Command("podman", append(append([]string{}, podmanRun[1:]...), "--rm", "--entrypoint", "/bin/sh", tag, "-c", "true")...)
	if out, err := noShell.CombinedOutput(); err == nil {
		t.Errorf("the image runs /bin/sh: %s", out)
	}

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream-Saw", r.Method+" "+r.URL.RequestURI())
		w.Write(body)
	}))
	defer upstream.Close()

	bPort, bMetrics, aPort := freePort(t), freePort(t), freePort(t)
	bURL := fmt.Sprintf("http://127.0.0.1:%d", bPort)
	aURL := fmt.Sprintf("http://127.0.0.1:%d", aPort)
	b := runRelayContainer(t, tag, "UPSTREAM="+upstream.URL, fmt.Sprintf("PORT=%d", bPort), fmt.Sprintf("METRICS_PORT=%d", bMetrics),
		"LOG_FORMAT=json")
	a := runRelayContainer(t, tag, "UPSTREAM=http://127.0.0.1:9", fmt.Sprintf("PORT=%d", aPort), "METRICS_PORT=0", "ALLOWED_PEERS="+bURL)
	waitHTTP(t, bURL+"/api/mte-echo", b.logs)
	waitHTTP(t, aURL+"/api/mte-echo", a.logs)

	req, _ := http.NewRequest("POST", aURL+"/api/items?id=7", strings.NewReader(`{"through":"containers"}`))
	req.Header.Set("x-mte-outbound-token", testToken)
	req.Header.Set("x-mte-upstream", bURL)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request through the pair: %v\nA: %s\nB: %s", err, a.logs(), b.logs())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"through":"containers"}` || resp.Header.Get("X-Upstream-Saw") != "POST /api/items?id=7" {
		t.Errorf("through the pair: %d %q %q\nA: %s\nB: %s", resp.StatusCode, body, resp.Header.Get("X-Upstream-Saw"), a.logs(), b.logs())
	}

	for name, c := range map[string]*container{"A": a, "B": b} {
		if uid := statusField(c.proc(t, "status"), "Uid:"); uid != "65532 65532 65532 65532" {
			t.Errorf("relay %s runs as uid %q, want 65532", name, uid)
		}
		if opts := rootMountOptions(c.proc(t, "mountinfo")); !strings.HasPrefix(opts, "ro,") && opts != "ro" {
			t.Errorf("relay %s: root filesystem mounted %q, want read-only", name, opts)
		}
	}

	for name, url := range map[string]string{"A": aURL, "B": bURL} {
		resp, err := http.Get(url + "/api/mte-ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("relay %s: readiness %d", name, resp.StatusCode)
		}
	}
	if logs := b.logs(); !strings.Contains(logs, `"msg":"listening"`) || !strings.Contains(logs, `"version":"`+version+`"`) {
		t.Errorf("relay B's JSON start-up log lacks the version:\n%s", logs)
	}

	metrics, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", bMetrics))
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(mbody), `pqrelay_build_info{version="`+version+`"`) {
		t.Errorf("metrics of B without its version:\n%s", mbody)
	}

	for name, c := range map[string]*container{"A": a, "B": b} {
		podman(t, "stop", "--time", "20", c.id)
		if code := podman(t, "inspect", "--format", "{{.State.ExitCode}}", c.id); code != "0" {
			t.Errorf("relay %s exited %s after SIGTERM\n%s", name, code, c.logs())
		}
	}
}

// statusField returns the whitespace-normalised value of a /proc status line.
func statusField(status, key string) string {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && f[0] == key {
			return strings.Join(f[1:], " ")
		}
	}
	return ""
}

// rootMountOptions returns the per-mount options of "/" in a mountinfo.
func rootMountOptions(mountinfo string) string {
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 5 && f[4] == "/" {
			return f[5]
		}
	}
	return ""
}
