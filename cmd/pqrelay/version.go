package main

import (
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// version and commit are set at build time by make (-ldflags -X); a plain
// `go build` or `go install` leaves them empty and buildVersion falls back
// on what the Go toolchain recorded.
var (
	version string
	commit  string
)

// buildVersion returns the relay's version and commit, "unknown" where
// neither the linker nor the toolchain recorded one.
func buildVersion() (v, c string) {
	v, c = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" {
		v = "unknown"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

func writeVersion(w io.Writer) {
	v, c := buildVersion()
	io.WriteString(w, "pqrelay "+v+" commit "+c+" "+runtime.Version()+"\n")
}

// writeUsage prints every variable of the table with its default.
func writeUsage(w io.Writer) {
	io.WriteString(w, `pqrelay: one relay of a pqrelay pair, configured by environment variables.

Usage: pqrelay            run the relay
       pqrelay -version   print version and commit
       pqrelay -h         this help

`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	io.WriteString(tw, "VARIABLE\tDEFAULT\tMEANING\n")
	for _, v := range variables {
		io.WriteString(tw, strings.Join([]string{v.name, v.def, v.meaning}, "\t")+"\n")
	}
	tw.Flush()
}
