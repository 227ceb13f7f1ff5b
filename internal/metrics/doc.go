// Package metrics is the relay's Prometheus instrumentation: counters,
// gauges and fixed-bucket histograms whose label values are all known at
// start-up, so every series exists before the first request and recording
// one is an atomic add on a pre-built series. It writes the Prometheus text
// exposition format (version 0.0.4) itself.
//
// It must never allocate while recording (the relay's hot path is
// allocation-free and tests hold it there), never take a lock on the
// recording side, and never put a request's data (paths, headers, ids) into
// a label: label values come from fixed tables. A relay that runs without
// metrics records into Nop, which does nothing.
package metrics
