// Package scan compares codec.ScanJSON with other JSON validators on the
// same bodies. It is its own module so that the relay's go.mod does not
// gain the comparison's dependencies.
package scan

import (
	"encoding/json"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/minio/simdjson-go"
	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/internal/jsonshape"
	"github.com/valyala/fastjson"
)

var sizes = []struct {
	name string
	n    int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// BenchmarkScan: Impl/Shape-Size, bytes per second of each validator, and
// the CPU time per op. ScanJSON runs with limits set, as the relay runs it;
// built with -tags purego it runs on the pure-Go twin of its kernel.
func BenchmarkScan(b *testing.B) {
	lim := codec.JSONLimits{MaxDepth: 20, MaxArrayElements: 1 << 20, MaxObjectEntries: 100, MaxNameLength: 100, MaxStringLength: 1 << 16}
	impls := []struct {
		name string
		ok   func([]byte) bool
	}{
		{"ScanJSON", func(body []byte) bool { return codec.ScanJSON(body, lim).Verdict == codec.Accepted }},
		{"encoding-json-Valid", json.Valid},
		{"fastjson-Validate", func(body []byte) bool { return fastjson.ValidateBytes(body) == nil }},
	}
	if simdjson.SupportedCPU() {
		var pj *simdjson.ParsedJson
		impls = append(impls, struct {
			name string
			ok   func([]byte) bool
		}{"simdjson-go-Parse", func(body []byte) bool {
			var err error
			pj, err = simdjson.Parse(body, pj)
			return err == nil
		}})
	}
	for _, impl := range impls {
		for _, shape := range jsonshape.Shapes {
			for _, size := range sizes {
				body := jsonshape.Build(shape, size.n)
				b.Run(impl.name+"/"+shape+"-"+size.name, func(b *testing.B) {
					if !impl.ok(body) {
						b.Fatal("refused a valid body")
					}
					b.SetBytes(int64(len(body)))
					before := cpuTime()
					for b.Loop() {
						impl.ok(body)
					}
					// The machine is shared: wall time per op counts the
					// time other processes held the core, CPU time does not.
					b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestWriteBody writes the api-shape body of SCAN_BODY_SIZE bytes (default
// 64 KiB) to SCAN_BODY_OUT, for pair.sh; skipped without SCAN_BODY_OUT.
func TestWriteBody(t *testing.T) {
	out := os.Getenv("SCAN_BODY_OUT")
	if out == "" {
		t.Skip("set SCAN_BODY_OUT to write the body")
	}
	size := 64 << 10
	if s := os.Getenv("SCAN_BODY_SIZE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		size = n
	}
	if err := os.WriteFile(out, jsonshape.Build("api", size), 0o644); err != nil {
		t.Fatal(err)
	}
}
