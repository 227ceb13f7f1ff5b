//go:build !linux

package loadtest

// cpuSample is empty where /proc does not exist: CPU is not measured.
type cpuSample struct{}

func sampleCPU([]int) cpuSample { return cpuSample{} }

func (cpuSample) usage(cpuSample) CPUUsage { return CPUUsage{} }

// PeakRSS is this process's largest resident set; unknown (0) here.
func PeakRSS() int64 { return 0 }
