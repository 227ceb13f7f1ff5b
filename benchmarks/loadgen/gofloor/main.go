// Command gofloor is floor.c's design in Go: a few goroutines, each owning
// many users' non-blocking sockets (outside the runtime's poller), its own
// epoll instance and a FIFO of the users due next; no goroutine and no
// timer per user. It measures what a users engine of that shape would
// spend per request in Go, beside floor.c (no runtime) and
// pqrelay-loadtest (a goroutine and a timer per user); see
// benchmarks/loadgen/README.md. It is a measuring tool, not a loader:
// Linux on amd64 only, plain HTTP/1.1 with Content-Length answers, and
// any failure ends it.
//
//	go build -o gofloor . && ./gofloor PORT USERS THINK_MS RAMP_S WARMUP_S DURATION_S [LOOPS] [TICK_MS]
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// user is one connection: sent is 0 while it thinks, need is the bytes of
// the answer still to come (-1 until its header block is in).
type user struct {
	fd   int
	sent int64
	due  int64
	need int
}

// loop is one goroutine's share of the users. Every user thinks the same
// time, so the ones due next are the ones that finished first: a ring of
// user indexes is the timer queue. lat keeps latencies as a loader
// would, so that the clock reads and the stores are paid for.
type loop struct {
	epfd               int
	users              []user
	fifo               []int
	head, tail, n      int
	done, waits, reads int64
	lat                []int64
}

var (
	req                 []byte
	tStart, tMeas, tEnd int64
	thinkNs, tickNs     int64
	epoch               = time.Now()
)

// sysEpollPwait2 is epoll_pwait2 on amd64 (Linux 5.11): epoll_wait with a
// nanosecond timeout, so that a user is sent when due, not on a
// millisecond tick.
const sysEpollPwait2 = 441

func now() int64 { return int64(time.Since(epoch)) }

func rawIO(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func (l *loop) push(u int) { l.fifo[l.tail] = u; l.tail = (l.tail + 1) % len(l.fifo); l.n++ }

func in(t int64) bool { return t >= tMeas && t < tEnd }

func (l *loop) send(u *user, t int64) {
	u.sent, u.need = t, -1
	if n, e := rawIO(syscall.SYS_WRITE, u.fd, req); e != 0 || n != len(req) {
		panic(fmt.Sprint("write ", n, e))
	}
}

func (l *loop) run(wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 64<<10)
	evs := make([]syscall.EpollEvent, 256)
	for {
		t := now()
		if t >= tEnd {
			return
		}
		for l.n > 0 && l.users[l.fifo[l.head]].due <= t {
			u := &l.users[l.fifo[l.head]]
			l.head = (l.head + 1) % len(l.fifo)
			l.n--
			l.send(u, t)
		}
		wait := tEnd - t
		if l.n > 0 {
			if d := l.users[l.fifo[l.head]].due - t; d < wait {
				wait = d
			}
		}
		if tickNs > 0 && wait > 0 {
			next := ((t-tStart)/tickNs+1)*tickNs + tStart
			if next-t > wait {
				wait = next - t
			}
		}
		ts := syscall.NsecToTimespec(wait)
		r, _, e := syscall.Syscall6(sysEpollPwait2, uintptr(l.epfd), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), uintptr(unsafe.Pointer(&ts)), 0, 0)
		t = now()
		if in(t) {
			l.waits++
		}
		if e != 0 {
			if e == syscall.EINTR {
				continue
			}
			panic(e)
		}
		for i := 0; i < int(r); i++ {
			idx := int(evs[i].Fd)
			u := &l.users[idx]
			if u.sent == 0 {
				continue
			}
			complete := false
			for {
				n, e := rawIO(syscall.SYS_READ, u.fd, buf)
				if in(t) {
					l.reads++
				}
				if e == syscall.EAGAIN {
					break
				}
				if e != 0 || n <= 0 {
					panic(fmt.Sprint("read ", n, e))
				}
				if u.need < 0 {
					end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
					cl := bytes.Index(buf[:n], []byte("Content-Length: "))
					if end < 0 || cl < 0 {
						panic("unparsed")
					}
					j := cl + 16
					k := j
					for buf[k] >= '0' && buf[k] <= '9' {
						k++
					}
					v, _ := strconv.Atoi(string(buf[j:k]))
					u.need = v - (n - end - 4)
				} else {
					u.need -= n
				}
				if u.need <= 0 {
					complete = true
					break
				}
				if n < len(buf) {
					break
				}
			}
			if complete {
				done := now()
				if in(u.sent) {
					l.done++
					if len(l.lat) == cap(l.lat) {
						l.lat = l.lat[:0]
					}
					l.lat = append(l.lat, done-u.sent)
				}
				u.sent = 0
				if thinkNs == 0 {
					l.send(u, done)
				} else {
					u.due = done + thinkNs
					l.push(idx)
				}
			}
		}
	}
}

func main() {
	a := os.Args[1:]
	if len(a) < 6 {
		fmt.Fprintln(os.Stderr, "usage: gofloor PORT USERS THINK_MS RAMP_S WARMUP_S DURATION_S [LOOPS] [TICK_MS]")
		os.Exit(2)
	}
	a = append(a, []string{"1", "0"}[min(len(a), 8)-6:]...) // LOOPS 1, TICK_MS 0 unless given
	port, _ := strconv.Atoi(a[0])
	users, _ := strconv.Atoi(a[1])
	thinkMs, _ := strconv.Atoi(a[2])
	ramp, _ := strconv.ParseFloat(a[3], 64)
	warm, _ := strconv.ParseFloat(a[4], 64)
	dur, _ := strconv.ParseFloat(a[5], 64)
	loops, _ := strconv.Atoi(a[6])
	tickMs, _ := strconv.Atoi(a[7])
	thinkNs, tickNs = int64(thinkMs)*1e6, int64(tickMs)*1e6
	body := bytes.Repeat([]byte("x"), 1024)
	req = append([]byte(fmt.Sprintf("POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n", port)), body...)
	ls := make([]*loop, loops)
	for k := range ls {
		n := users / loops
		if k < users%loops {
			n++
		}
		l := &loop{users: make([]user, n), fifo: make([]int, n), lat: make([]int64, 0, 256)}
		l.epfd, _ = syscall.EpollCreate1(0)
		for i := range l.users {
			fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
			if err != nil {
				panic(err)
			}
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				panic(err)
			}
			syscall.SetNonblock(fd, true)
			l.users[i].fd = fd
			// syscall declares EPOLLET negative (it is bit 31 of a uint32).
			ev := syscall.EpollEvent{Events: syscall.EPOLLIN | -syscall.EPOLLET, Fd: int32(i)}
			syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
		}
		ls[k] = l
	}
	tStart = now()
	tMeas = tStart + int64((ramp+warm)*1e9)
	tEnd = tMeas + int64(dur*1e9)
	for k, l := range ls {
		for i := range l.users {
			g := i*loops + k
			l.users[i].due = tStart + int64(ramp*1e9)*int64(g)/int64(users)
			l.push(i)
		}
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go l.run(&wg)
	}
	time.Sleep(time.Duration(tMeas - now()))
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	time.Sleep(time.Duration(tEnd - now()))
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	wg.Wait()
	var done, waits, reads int64
	for _, l := range ls {
		done += l.done
		waits += l.waits
		reads += l.reads
	}
	u := float64(r1.Utime.Nano()-r0.Utime.Nano()) / 1e3 / float64(done)
	s := float64(r1.Stime.Nano()-r0.Stime.Nano()) / 1e3 / float64(done)
	fmt.Printf("gofloor users=%d think_ms=%d loops=%d tick_ms=%d procs=%d requests=%d user_us=%.2f sys_us=%.2f cpu_us=%.2f epoll_waits=%.2f reads=%.2f\n",
		users, thinkMs, loops, tickMs, runtime.GOMAXPROCS(0), done, u, s, u+s, float64(waits)/float64(done), float64(reads)/float64(done))
}
