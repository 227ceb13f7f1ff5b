package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `pqrelay-loadtest measures a control API and the same API through pqrelay.

Usage:
  pqrelay-loadtest run --control URL [--relay URL] [flags]
  pqrelay-loadtest upstream [--addr 127.0.0.1] [--port 9000] [--size 1KiB] [--delay 0]
  pqrelay-loadtest report --users FILE --cost FILE [--html FILE]

Run "pqrelay-loadtest COMMAND -h" for the flags.
`

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "upstream":
		return cmdUpstream(ctx, args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "pqrelay-loadtest: unknown command %q (want run, upstream or report)\n", args[0])
	return exitUsage
}
