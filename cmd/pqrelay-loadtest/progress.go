package main

import (
	"io"
	"os"
	"time"

	"github.com/pqrelay/pqrelay/loadtest"
)

// Progress cadence: a terminal line is cheap to rewrite, while a log file
// or CI console gets one line per interval and should stay short.
const (
	ttyInterval   = 250 * time.Millisecond
	plainInterval = 5 * time.Second
)

// progress prints run progress to stderr: on a terminal one line rewritten
// in place with \r, elsewhere plain lines every plainInterval.
type progress struct {
	w     io.Writer
	tty   bool
	quiet bool
	label string
	// width of the last in-place line, so a shorter one clears its tail
	// even on terminals without the erase-line escape.
	width int
}

func newProgress(w io.Writer, tty, quiet bool) *progress {
	return &progress{w: w, tty: tty, quiet: quiet}
}

// isTerminal reports whether f is a character device (a terminal rather
// than a file or pipe).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) interval() time.Duration {
	if p.tty {
		return ttyInterval
	}
	return plainInterval
}

// start begins a new side of a tier.
func (p *progress) start(label string) {
	p.label = label
	if p.quiet {
		return
	}
	p.line(label + " starting")
}

// update is the loadtest.Config.Progress callback.
func (p *progress) update(pr loadtest.Progress) {
	if p.quiet {
		return
	}
	p.line(p.label + " " + pr.String())
}

// done replaces the progress line with the side's summary.
func (p *progress) done(r loadtest.Result) {
	if p.quiet {
		return
	}
	p.line(p.label + " done: " + loadtest.FormatCount(r.Requests) + " requests, " +
		loadtest.FormatCount(int64(r.RPS()+0.5)) + " req/s, " + loadtest.FormatCount(r.Failed()) + " failed")
	if p.tty {
		io.WriteString(p.w, "\n")
		p.width = 0
	}
}

// abort ends an in-place line that will not get its summary.
func (p *progress) abort() {
	if p.tty && p.width > 0 {
		io.WriteString(p.w, "\n")
		p.width = 0
	}
}

func (p *progress) line(s string) {
	if !p.tty {
		io.WriteString(p.w, s+"\n")
		return
	}
	pad := ""
	for i := len(s); i < p.width; i++ {
		pad += " "
	}
	p.width = len(s)
	io.WriteString(p.w, "\r"+s+pad)
}
