package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/pqrelay/pqrelay/loadtest"
)

// parseFlags parses args into fs and turns every failure into one line
// "pqrelay-loadtest CMD: ..." on stderr. It returns the exit code to use
// and whether to go on.
func parseFlags(fs *flag.FlagSet, args []string, help string, stdout, stderr io.Writer) (int, bool) {
	// The flag package would print its own message and the whole usage on
	// error; one line naming the flag is easier to act on.
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, help)
		return exitOK, false
	case err != nil:
		return usageError(stderr, fs.Name(), longFlagNames.ReplaceAllString(err.Error(), "$1--$2")), false
	case fs.NArg() > 0:
		return usageError(stderr, fs.Name(), "unexpected argument "+strconv.Quote(fs.Arg(0))), false
	}
	return exitOK, true
}

// longFlagNames finds the flag package's "-size" in its messages ("invalid
// value … for flag -size", "flag needs an argument: -size"), to spell it
// "--size" as the usage text does. One-letter flags (-c, -d) keep one dash.
var longFlagNames = regexp.MustCompile(`(flag |: )-([a-z][a-z0-9-]+)`)

func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "pqrelay-loadtest %s: %s (see pqrelay-loadtest %s -h)\n", cmd, msg, cmd)
	return exitUsage
}

// sizeValue is a byte count flag read by loadtest.ParseSize.
type sizeValue struct{ n int }

func (v *sizeValue) String() string { return loadtest.FormatSize(v.n) }
func (v *sizeValue) Set(s string) error {
	n, err := loadtest.ParseSize(s)
	if err != nil {
		return err
	}
	v.n = n
	return nil
}

// expectValue is --expect-size: a size, or "any" to accept every length.
type expectValue struct {
	n   int
	set bool
}

func (v *expectValue) String() string {
	if v.set && v.n == 0 {
		return "any"
	}
	return loadtest.FormatSize(v.n)
}

func (v *expectValue) Set(s string) error {
	v.set = true
	if strings.EqualFold(s, "any") {
		v.n = 0
		return nil
	}
	n, err := loadtest.ParseSize(s)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New(`0 is not checkable; use "any" to accept every length`)
	}
	v.n = n
	return nil
}

// headerList is a repeatable "Name: value" flag.
type headerList []loadtest.Header

func (l *headerList) String() string {
	// Never echo values: they can hold the relay's outbound token.
	names := make([]string, len(*l))
	for i, h := range *l {
		names[i] = h.Name
	}
	return strings.Join(names, ", ")
}

// Set takes one "Name: value", or "@FILE": the headers in FILE, one per
// line (empty lines and lines starting with # are skipped), as curl's -H
// @FILE reads them. A file keeps a secret such as the outbound token off
// the command line, where every user of the machine can read it in ps.
func (l *headerList) Set(s string) error {
	path, fromFile := strings.CutPrefix(s, "@")
	if !fromFile {
		h, err := loadtest.ParseHeader(s)
		if err != nil {
			return err
		}
		*l = append(*l, h)
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err // names the file
	}
	n := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		h, err := loadtest.ParseHeader(line)
		if err != nil {
			// Say why but not what: the line may hold a token.
			var reason interface{ Why() string }
			if errors.As(err, &reason) {
				return fmt.Errorf("%s line %d: bad header: %s", path, i+1, reason.Why())
			}
			return fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		*l = append(*l, h)
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no header", path)
	}
	return nil
}

// maxConnections guards against a typo like "-c 1000000": every
// connection is a socket here and at the target, and a goroutine with its
// buffers here (benchmarks/loadgen measures 10,000 users).
const maxConnections = 10_000

// connList is "-c 100,200,250,300": connection counts, one tier each.
type connList []int

func (l *connList) String() string {
	parts := make([]string, len(*l))
	for i, n := range *l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func (l *connList) Set(s string) error {
	var out connList
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxConnections {
			return fmt.Errorf("%q is not a connection count from 1 to %d", f, maxConnections)
		}
		out = append(out, n)
	}
	*l = out
	return nil
}

// verifyValue is --verify: a CRC-32C in hex, or "auto" for the checksum of
// the bundled upstream's body of the expected size.
type verifyValue struct {
	auto bool
	sum  uint32
	set  bool
}

func (v *verifyValue) String() string {
	switch {
	case v.auto:
		return "auto"
	case v.set:
		return loadtest.FormatChecksum(v.sum)
	}
	return ""
}

func (v *verifyValue) Set(s string) error {
	if strings.EqualFold(s, "auto") {
		v.auto, v.set = true, true
		return nil
	}
	sum, err := loadtest.ParseChecksum(s)
	if err != nil {
		return err
	}
	v.sum, v.set, v.auto = sum, true, false
	return nil
}
