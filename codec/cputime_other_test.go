//go:build !unix

package codec

// cpuTime is 0 where getrusage is not there: benchmarks report 0 CPU time.
func cpuTime() int64 { return 0 }
