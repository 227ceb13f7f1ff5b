package loadtest

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
)

// Environment is what a reader needs to weigh a run's numbers: the machine,
// the build, and what else used its CPUs.
type Environment struct {
	CPUModel  string // "unknown" where /proc/cpuinfo does not say
	CPUs      int
	GoVersion string
	// Commit is the VCS revision the loader was built from, with
	// "+dirty" for uncommitted changes; "unknown" for a build without VCS
	// information (go test, go run of a file).
	Commit string
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages when the
	// run started, "" where there is none.
	LoadAvg string
}

// ReadEnvironment describes this machine and build.
func ReadEnvironment() Environment {
	e := Environment{CPUModel: "unknown", CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Commit: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				e.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := bytes.Fields(data); len(f) >= 3 {
			e.LoadAvg = string(bytes.Join(f[:3], []byte(" ")))
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) >= 12 {
			e.Commit = rev[:12]
			if modified == "true" {
				e.Commit += "+dirty"
			}
		}
	}
	return e
}
