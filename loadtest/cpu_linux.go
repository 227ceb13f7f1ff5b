package loadtest

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// clockTick is the unit of /proc's CPU times (USER_HZ). The kernel exports
// 100 to user space on every architecture Go supports, whatever its own
// HZ, and reading sysconf(_SC_CLK_TCK) would need cgo.
const clockTick = 10 * time.Millisecond

// cpuSample is one reading of every clock a CPUUsage is made of.
type cpuSample struct {
	at                      time.Time
	target, loader, machine time.Duration
	ok                      bool
}

func sampleCPU(pids []int) cpuSample {
	s := cpuSample{at: time.Now()}
	var err error
	if s.target, err = processCPU(pids); err != nil {
		return s
	}
	if s.machine, err = machineBusy(); err != nil {
		return s
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return s
	}
	s.loader = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	s.ok = true
	return s
}

// usage is what was spent between s and a later sample.
func (s cpuSample) usage(later cpuSample) CPUUsage {
	if !s.ok || !later.ok {
		return CPUUsage{}
	}
	return CPUUsage{
		Measured: true,
		Target:   later.target - s.target,
		Loader:   later.loader - s.loader,
		Machine:  later.machine - s.machine,
		Wall:     later.at.Sub(s.at),
		CPUs:     runtime.NumCPU(),
	}
}

// processCPU sums utime and stime of /proc/PID/stat (fields 14 and 15),
// which count every thread of the process.
func processCPU(pids []int) (time.Duration, error) {
	var total time.Duration
	for _, pid := range pids {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, err
		}
		// The command name (field 2) is in parentheses and may hold
		// spaces; the fields after its closing parenthesis start at 3.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			return 0, errors.New("loadtest: unreadable /proc stat")
		}
		fields := bytes.Fields(data[i+1:])
		if len(fields) < 13 {
			return 0, errors.New("loadtest: short /proc stat")
		}
		for _, f := range fields[11:13] { // utime, stime
			n, err := strconv.ParseInt(string(f), 10, 64)
			if err != nil {
				return 0, err
			}
			total += time.Duration(n) * clockTick
		}
	}
	return total, nil
}

// machineBusy is the time all CPUs together spent on anything but idling
// or waiting for I/O, from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 9 || string(fields[0]) != "cpu" {
		return 0, errors.New("loadtest: unreadable /proc/stat")
	}
	var busy time.Duration
	// user nice system idle iowait irq softirq steal: idle (4) and
	// iowait (5) are not busy; steal is time another guest had the CPU.
	for i, f := range fields[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, err
		}
		busy += time.Duration(n) * clockTick
	}
	return busy, nil
}

// PeakRSS is this process's largest resident set so far, in bytes; 0 if
// unknown.
func PeakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss << 10 // Linux reports KiB
}
