package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pqrelay/pqrelay/loadtest"
)

const reportHelp = `Usage: pqrelay-loadtest report --users FILE --cost FILE [--html FILE]

Combines two runs' --json files into the demo's report: the reference
product's test shape (a users run, --think) beside the figures it
published, and the cost view (a closed-loop run with --control-pid and
--relay-pid). Prints it to stdout; --html also writes it as one
self-contained page.

Flags:
  --users FILE   JSON of the users run
  --cost FILE    JSON of the cost run
  --html FILE    write the HTML report here
`

func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	users := fs.String("users", "", "")
	cost := fs.String("cost", "", "")
	htmlFile := fs.String("html", "", "")
	if code, ok := parseFlags(fs, args, reportHelp, stdout, stderr); !ok {
		return code
	}
	if *users == "" || *cost == "" {
		return usageError(stderr, "report", "give --users FILE and --cost FILE")
	}
	var d loadtest.Demo
	for _, in := range []struct {
		name string
		dst  *loadtest.Report
	}{{*users, &d.Users}, {*cost, &d.Cost}} {
		f, err := os.Open(in.name)
		if err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest report: %v\n", err)
			return exitFailed
		}
		*in.dst, err = loadtest.ReadJSON(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest report: %s: %v\n", in.name, err)
			return exitFailed
		}
	}
	if !d.Users.Meta.Users() {
		return usageError(stderr, "report", *users+" is not a users run (made without --think)")
	}
	if *htmlFile != "" {
		out, err := openOutput(*htmlFile, func(w io.Writer, _ loadtest.Report) error { return loadtest.WriteDemoHTML(w, d) })
		if err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest report: %v\n", err)
			return exitFailed
		}
		defer out.discard()
		if err := out.commit(loadtest.Report{}); err != nil {
			fmt.Fprintf(stderr, "pqrelay-loadtest report: %v\n", err)
			return exitFailed
		}
	}
	if err := loadtest.WriteDemoText(stdout, d); err != nil {
		fmt.Fprintf(stderr, "pqrelay-loadtest report: %v\n", err)
		return exitFailed
	}
	return exitOK
}
