// Command pqrelay-loadtest measures what a pqrelay pair costs: it loads a
// control API directly and then through the relay, tier by tier, and
// prints a markdown table per connection (or user) count.
//
//	pqrelay-loadtest run --control URL [--relay URL] [flags]   compare
//	pqrelay-loadtest upstream [--port 9000] [--size 1KiB]       bundled control API
//	pqrelay-loadtest report --users FILE --cost FILE [--html F] the demo's report
//
// Tables go to stdout, progress to stderr. A bad flag prints one line and
// exits 2; a run where a side had no successful response at all exits 1
// after printing what it measured; an interrupted run exits 130.
//
// The work is done by package loadtest; this command parses flags, prints
// progress and writes the reports. It must never measure anything itself:
// what counts as a request is decided in one place, the library.
package main
