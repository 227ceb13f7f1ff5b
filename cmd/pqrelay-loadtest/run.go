package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/pqrelay/pqrelay/loadtest"
)

const runHelp = `Usage: pqrelay-loadtest run --control URL [--relay URL] [flags]

For each connection count in -c, loads the control API and then the relay
with the same requests for the same time (after an uncounted warm-up), and
prints one markdown table per count to stdout. Progress goes to stderr.

Targets:
  --control URL         the API itself, e.g. http://127.0.0.1:9000
  --relay URL           relay A, e.g. http://127.0.0.1:8080
  --path PATH           request path appended to both URLs (default /api/echo);
                        a URL that already has a path is used as it is
  --header 'N: V'       header for both sides (repeatable)
  --relay-header 'N: V' header for the relay only, e.g. x-mte-upstream (repeatable)
                        Either takes @FILE too: one header per line, which
                        keeps a token such as x-mte-outbound-token out of ps

Load:
  -c, --connections LIST  connection counts, one tier each (default 100)
  -d, --duration DUR      measured time per side and tier (default 10s)
  --warmup DUR            uncounted warm-up before each measurement (default 2s)
  --rate R                open loop: R requests/s in total, latency from the
                          intended send time (default 0: closed loop)
  --think DUR             users mode: each connection is a user who sends,
                          reads the whole answer, waits DUR and sends again
                          (default 0: closed loop, no wait)
  --think-jitter DUR      users mode: think DUR ± this, uniformly (default 0)
  --ramp DUR              start the users (connections) evenly over DUR,
                          before the warm-up; not measured (default 0)
  --method M              request method, case-sensitive (default POST)
  --size SIZE             request body: 512, 1KiB, 10KiB, 1MiB (binary) or
                          KB/MB (1000-based); 0 sends no body (default 1KiB
                          for POST, PUT and PATCH, 0 for other methods)
  --timeout DUR           per request (default 5s)

CPU (Linux, read from /proc for the measured phase of each side):
  --control-pid LIST      process ids of the control API, e.g. 4242
  --relay-pid LIST        process ids behind the relay URL, e.g. both relays
                          The tables then show each side's CPU per request,
                          and the loader's own.

Checks (a response counts only if 2xx and these hold):
  --expect-size SIZE|any  response body length (default: --size, which is what
                          the bundled upstream answers; any for HEAD or when
                          --size is 0)
  --verify HEX|auto       response body CRC-32C; auto = the bundled upstream's
                          body of --expect-size bytes (default: not checked)

Output:
  --json FILE             results in the schema documented in package loadtest
  --html FILE             self-contained report with charts
                          (both checked before the run, written after it)
  --procs N               CPUs the loader may use, up to this machine's
                          (default 0: all, or GOMAXPROCS from the
                          environment); lower it to leave CPUs to a target
                          on the same machine
  --commit REV            the pqrelay commit to name in the reports (default:
                          the loader's own, from its build information)
  --quiet                 no progress on stderr
  --cpuprofile FILE       write a Go CPU profile of the loader itself, to check
                          that it is not the bottleneck
`

type runFlags struct {
	control, relay, path, method string
	headers, relayHeaders        headerList
	conns                        connList
	duration, warmup, timeout    time.Duration
	rate                         float64
	size                         sizeValue
	expect                       expectValue
	verify                       verifyValue
	jsonFile, htmlFile           string
	quiet                        bool
	pathSet                      bool
	cpuProfile                   string
	procs                        int
	think, thinkJitter, ramp     time.Duration
	controlPIDs, relayPIDs       pidList
	commit                       string
}

func parseRunFlags(args []string, stdout, stderr io.Writer) (*runFlags, int, bool) {
	f := &runFlags{conns: connList{100}, size: sizeValue{n: 1 << 10}}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&f.control, "control", "", "")
	fs.StringVar(&f.relay, "relay", "", "")
	fs.StringVar(&f.path, "path", "/api/echo", "")
	fs.StringVar(&f.method, "method", loadtest.DefaultMethod, "")
	fs.Var(&f.headers, "header", "")
	fs.Var(&f.relayHeaders, "relay-header", "")
	fs.Var(&f.conns, "c", "")
	fs.Var(&f.conns, "connections", "")
	fs.DurationVar(&f.duration, "d", 10*time.Second, "")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "")
	fs.DurationVar(&f.timeout, "timeout", loadtest.DefaultTimeout, "")
	fs.Float64Var(&f.rate, "rate", 0, "")
	fs.Var(&f.size, "size", "")
	fs.Var(&f.expect, "expect-size", "")
	fs.Var(&f.verify, "verify", "")
	fs.StringVar(&f.jsonFile, "json", "", "")
	fs.StringVar(&f.htmlFile, "html", "", "")
	fs.BoolVar(&f.quiet, "quiet", false, "")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "")
	fs.IntVar(&f.procs, "procs", 0, "")
	fs.DurationVar(&f.think, "think", 0, "")
	fs.DurationVar(&f.thinkJitter, "think-jitter", 0, "")
	fs.DurationVar(&f.ramp, "ramp", 0, "")
	fs.Var(&f.controlPIDs, "control-pid", "")
	fs.Var(&f.relayPIDs, "relay-pid", "")
	fs.StringVar(&f.commit, "commit", "", "")
	if code, ok := parseFlags(fs, args, runHelp, stdout, stderr); !ok {
		return nil, code, false
	}
	sizeSet := false
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "path":
			f.pathSet = true
		case "size":
			sizeSet = true
		}
	})
	bad := func(msg string) (*runFlags, int, bool) { return nil, usageError(stderr, "run", msg), false }
	switch {
	case f.control == "" && f.relay == "":
		return bad("give --control URL, --relay URL or both")
	case f.duration <= 0:
		return bad("--duration must be positive")
	case f.warmup < 0:
		return bad("--warmup must not be negative")
	case f.timeout <= 0:
		return bad("--timeout must be positive")
	case f.rate < 0 || f.rate > 1e8 || f.rate != f.rate:
		return bad("--rate must be from 0 (closed loop) to 1e8 req/s")
	case f.think < 0 || f.thinkJitter < 0 || f.ramp < 0:
		return bad("--think, --think-jitter and --ramp must not be negative")
	case f.thinkJitter > f.think:
		return bad("--think-jitter must not exceed --think")
	case f.think > 0 && f.rate > 0:
		return bad("--think (users) and --rate (open loop) exclude each other; give one")
	case len(f.controlPIDs) > 0 && f.control == "":
		return bad("--control-pid needs --control")
	case len(f.relayPIDs) > 0 && f.relay == "":
		return bad("--relay-pid needs --relay")
	case f.path == "" || f.path[0] != '/':
		return bad("--path must start with /")
	case len(f.relayHeaders) > 0 && f.relay == "":
		return bad("--relay-header needs --relay")
	case f.procs < 0 || f.procs > runtime.NumCPU():
		return bad("--procs must be 0 (auto) or a CPU count up to " + strconv.Itoa(runtime.NumCPU()) + ", this machine's")
	}
	if !sizeSet && !loadtest.MethodHasBody(f.method) {
		f.size.n = 0 // GET, DELETE…: no body unless asked for
	}
	if !f.expect.set && f.method != "HEAD" {
		f.expect.n = f.size.n
	}
	if f.verify.auto && f.expect.n == 0 {
		return bad("--verify auto needs a response size (--expect-size or --size)")
	}
	return f, exitOK, true
}

// target joins a base URL and --path. A base that already names a path is
// used as given; --path set explicitly on top of it is a contradiction.
func target(base, path string, pathSet bool) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", base)
	}
	if u.Path != "" && u.Path != "/" {
		if pathSet {
			return "", fmt.Errorf("%q already has a path; drop --path or the path in the URL", base)
		}
		return u.String(), nil
	}
	p, err := url.Parse(path)
	if err != nil || p.Scheme != "" || p.Host != "" {
		return "", fmt.Errorf("--path %q is not a path", path)
	}
	if p.RawQuery != "" && u.RawQuery != "" {
		return "", fmt.Errorf("%q and --path %q both have a query; give it once", base, path)
	}
	u.Path, u.RawPath = p.Path, p.RawPath
	if p.RawQuery != "" {
		u.RawQuery = p.RawQuery
	}
	return u.String(), nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, code, ok := parseRunFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	var controlURL, relayURL string
	var err error
	if f.control != "" {
		if controlURL, err = target(f.control, f.path, f.pathSet); err != nil {
			return usageError(stderr, "run", "--control "+err.Error())
		}
	}
	if f.relay != "" {
		if relayURL, err = target(f.relay, f.path, f.pathSet); err != nil {
			return usageError(stderr, "run", "--relay "+err.Error())
		}
	}

	var body []byte
	if f.size.n > 0 {
		body = loadtest.Body(f.size.n)
	}
	base := loadtest.Config{
		Method:      f.method,
		Body:        body,
		Duration:    f.duration,
		Warmup:      f.warmup,
		Timeout:     f.timeout,
		Rate:        f.rate,
		Think:       f.think,
		ThinkJitter: f.thinkJitter,
		Ramp:        f.ramp,
		ExpectSize:  f.expect.n,
		Verify:      f.verify.set,
	}
	if f.verify.auto {
		base.VerifyChecksum = loadtest.Checksum(loadtest.Body(f.expect.n))
	} else {
		base.VerifyChecksum = f.verify.sum
	}
	relayHeaders := append(append([]loadtest.Header(nil), f.headers...), f.relayHeaders...)

	report := loadtest.Report{Meta: loadtest.Meta{
		Generated:   time.Now(),
		ControlURL:  controlURL,
		RelayURL:    relayURL,
		Method:      f.method,
		Size:        f.size.n,
		ExpectSize:  f.expect.n,
		Warmup:      f.warmup,
		Duration:    f.duration,
		Timeout:     f.timeout,
		Rate:        f.rate,
		Think:       f.think,
		ThinkJitter: f.thinkJitter,
		Ramp:        f.ramp,
		Env:         loadtest.ReadEnvironment(),
	}}
	if f.commit != "" {
		report.Meta.Env.Commit = f.commit
	}

	// Open the output files now: a path that cannot be written should
	// fail before the run, not after minutes of load.
	var outputs []*output
	for _, o := range []struct {
		name  string
		write func(io.Writer, loadtest.Report) error
	}{{f.jsonFile, loadtest.WriteJSON}, {f.htmlFile, loadtest.WriteHTML}} {
		if o.name == "" {
			continue
		}
		out, err := openOutput(o.name, o.write)
		if err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest run: %v\n", err)
			return exitFailed
		}
		defer out.discard()
		outputs = append(outputs, out)
	}

	if f.procs > 0 {
		// Default: every CPU, as wrk uses a thread per core. One P
		// looked cheaper per request on a box crowded by other jobs, but
		// on a quiet 2-core box it capped the loader at ~85k req/s where
		// two reached the upstream's ~105k, and a capped control row
		// would flatter the relay.
		setProcs(f.procs)
	}

	if f.cpuProfile != "" {
		stopProfile, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest run: %v\n", err)
			return exitFailed
		}
		defer stopProfile()
	}

	prog := newProgress(stderr, isTerminal(os.Stderr), f.quiet)
	config := func(u string, headers []loadtest.Header, pids []int, conns int) loadtest.Config {
		cfg := base
		cfg.URL = u
		cfg.Headers = headers
		cfg.CPUPIDs = pids
		cfg.Connections = conns
		cfg.Progress = prog.update
		cfg.ProgressInterval = prog.interval()
		return cfg
	}
	// Refuse a bad configuration before the first tier spends minutes on
	// the control side.
	for _, side := range []struct {
		u       string
		headers []loadtest.Header
		pids    []int
	}{{controlURL, f.headers, f.controlPIDs}, {relayURL, relayHeaders, f.relayPIDs}} {
		if side.u == "" {
			continue
		}
		cfg := config(side.u, side.headers, side.pids, f.conns[0])
		if err := cfg.Validate(); err != nil {
			return usageError(stderr, "run", err.Error())
		}
	}
	unit := "conns"
	if f.think > 0 {
		unit = "users"
	}
	measure := func(label, u string, headers []loadtest.Header, pids []int, conns int) (*loadtest.Result, error) {
		if u == "" {
			return nil, nil
		}
		cfg := config(u, headers, pids, conns)
		prog.start("[" + strconv.Itoa(conns) + " " + unit + "] " + label)
		res, err := loadtest.Run(ctx, cfg)
		if err != nil {
			return nil, err
		}
		prog.done(res)
		warn(stderr, label, conns, unit, &res, f.expect.n)
		return &res, nil
	}

	interrupted := false
	for _, n := range f.conns {
		tier := loadtest.Tier{Connections: n}
		if tier.Control, err = measure(loadtest.LabelControl, controlURL, f.headers, f.controlPIDs, n); err == nil {
			tier.Relay, err = measure(loadtest.LabelRelay, relayURL, relayHeaders, f.relayPIDs, n)
		}
		if errors.Is(err, context.Canceled) {
			prog.abort()
			interrupted = true
			break
		}
		if err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest run: %v\n", err)
			return exitFailed
		}
		report.Tiers = append(report.Tiers, tier)
	}

	if len(report.Tiers) > 0 {
		if err := loadtest.WriteMarkdown(stdout, report); err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest run: %v\n", err)
			return exitFailed
		}
		for _, out := range outputs {
			if err := out.commit(report); err != nil {
				fmt.Fprintf(stderr, "pqrelay-loadtest run: %v\n", err)
				return exitFailed
			}
		}
	}
	if rss := loadtest.PeakRSS(); rss > 0 {
		fmt.Fprintf(stderr, "pqrelay-loadtest run: the loader's peak RSS was %s MiB\n", loadtest.FormatCount(rss>>20))
	}
	if interrupted {
		fmt.Fprintln(stderr, "pqrelay-loadtest run: interrupted; tables show the tiers that finished")
		return exitInterrupted
	}
	code = exitOK
	one, many := "connection", "connections"
	if f.think > 0 {
		one, many = "user", "users"
	}
	for _, t := range report.Tiers {
		for _, s := range []struct {
			label string
			r     *loadtest.Result
		}{{loadtest.LabelControl, t.Control}, {loadtest.LabelRelay, t.Relay}} {
			if s.r != nil && s.r.Requests == 0 {
				fmt.Fprintf(stderr, "pqrelay-loadtest run: no successful response from %s with %s %s (%s errors, %s timeouts, %s non-2xx, %s bad body)\n",
					s.label, loadtest.FormatCount(int64(t.Connections)), plural(t.Connections, one, many),
					loadtest.FormatCount(s.r.Errors), loadtest.FormatCount(s.r.Timeouts),
					loadtest.FormatCount(s.r.Non2xx), loadtest.FormatCount(s.r.BadBody))
				code = exitFailed
			}
		}
	}
	return code
}

// warn says on stderr what a side's table would otherwise leave for the
// reader to notice: an open-loop side that did not keep up with --rate,
// and a side whose every response failed the body-size check.
func warn(stderr io.Writer, label string, n int, unit string, r *loadtest.Result, expectSize int) {
	where := "[" + strconv.Itoa(n) + " " + unit + "] " + label
	if pct := r.ShortfallPct(); pct > loadtest.ShortfallWarnPct {
		fmt.Fprintf(stderr, "pqrelay-loadtest run: %s fell short of --rate by %.1f%%: %s of %s scheduled requests were answered in time\n",
			where, pct, loadtest.FormatCount(r.Requests), loadtest.FormatCount(r.Scheduled))
	}
	if r.Requests == 0 && r.BadBody > 0 && r.Errors+r.Timeouts+r.Non2xx == 0 {
		fmt.Fprintf(stderr, "pqrelay-loadtest run: %s: every response failed the body check (expected %s bytes); if the API's bodies vary, pass --expect-size any\n",
			where, loadtest.FormatCount(int64(expectSize)))
	}
}

// pidList is "--relay-pid 4242,4243".
type pidList []int

func (l *pidList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (l *pidList) Set(s string) error {
	var out pidList
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a process id", f)
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(n)); err != nil {
			return fmt.Errorf("no process %d (CPU is read from /proc, Linux only)", n)
		}
		out = append(out, n)
	}
	*l = append(*l, out...)
	return nil
}

// output is a --json or --html file. It is opened at the start of a run,
// so that a path that cannot be written fails before minutes of load, and
// truncated and written at the end, so that a failed or interrupted run
// leaves a previous file as it was.
type output struct {
	name    string
	file    *os.File
	created bool // by openOutput: removed again if nothing is written
	write   func(io.Writer, loadtest.Report) error
}

func openOutput(name string, write func(io.Writer, loadtest.Report) error) (*output, error) {
	_, statErr := os.Stat(name)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	return &output{name: name, file: f, created: errors.Is(statErr, fs.ErrNotExist), write: write}, nil
}

// commit replaces the file's contents with r.
func (o *output) commit(r loadtest.Report) error {
	err := o.file.Truncate(0)
	if err == nil {
		bw := bufio.NewWriter(o.file)
		err = o.write(bw, r)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
	}
	if cerr := o.file.Close(); err == nil {
		err = cerr
	}
	o.file = nil
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.name, err)
	}
	return nil
}

// discard closes an output that was not committed, and removes it if the
// run created it.
func (o *output) discard() {
	if o.file == nil {
		return
	}
	o.file.Close()
	if o.created {
		os.Remove(o.name)
	}
}

func startCPUProfile(name string) (stop func(), err error) {
	fh, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		fh.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); fh.Close() }, nil
}

// setProcs applies the loader's GOMAXPROCS; tests, which run commands in
// parallel inside one process, replace it.
var setProcs = func(n int) { runtime.GOMAXPROCS(n) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
