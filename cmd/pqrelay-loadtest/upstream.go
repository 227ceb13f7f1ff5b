package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/pqrelay/pqrelay/loadtest"
)

const upstreamHelp = `Usage: pqrelay-loadtest upstream [flags]

Serves the bundled control API: every request, whatever its method and
path, gets 200 and the same deterministic body of --size bytes after its
own body has been read and --delay has passed. Prints one line
"listening on http://ADDR:PORT (...)" and stops on SIGINT or SIGTERM.

Flags:
  --addr IP      address to bind (default 127.0.0.1)
  --port N       port (default 9000; 0 picks a free one)
  --size SIZE    response body: 512, 1KiB, 10KiB, 1MiB; KB/MB are 1000-based (default 1KiB)
  --delay DUR    sleep before each answer, e.g. 5ms (default 0)
`

func cmdUpstream(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1", "")
	port := fs.Int("port", 9000, "")
	size := &sizeValue{n: 1 << 10}
	fs.Var(size, "size", "")
	delay := fs.Duration("delay", 0, "")
	if code, ok := parseFlags(fs, args, upstreamHelp, stdout, stderr); !ok {
		return code
	}
	switch {
	case *port < 0 || *port > 65535:
		return usageError(stderr, "upstream", "--port "+strconv.Itoa(*port)+" is not a TCP port")
	case *delay < 0:
		return usageError(stderr, "upstream", "--delay must not be negative")
	case net.ParseIP(*addr) == nil && *addr != "localhost":
		return usageError(stderr, "upstream", "--addr "+strconv.Quote(*addr)+" is not an IP address")
	}

	up, err := loadtest.StartUpstream(net.JoinHostPort(*addr, strconv.Itoa(*port)), size.n, *delay)
	if err != nil {
		fmt.Fprintf(stderr, "pqrelay-loadtest upstream: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "listening on %s (body %d bytes, crc32c %s, delay %s)\n",
		up.URL(), up.Size(), loadtest.FormatChecksum(up.Checksum()), delay.String())
	<-ctx.Done()
	start := time.Now()
	if err := up.Close(); err != nil {
		fmt.Fprintf(stderr, "pqrelay-loadtest upstream: shutdown after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
		return exitFailed
	}
	return exitOK
}
