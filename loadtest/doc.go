// Package loadtest is pqrelay's bundled load tester: it measures a control
// API and the same API through a relay pair under the same load, and
// reports the relay's cost as a table people can decide on.
//
// # Pieces
//
//   - Run drives one target (Config) with N keep-alive connections for a
//     warm-up and a measured phase, in closed loop (each connection sends
//     when its last answer is in) or open loop (Config.Rate requests per
//     second in total, latency counted from the intended send time, which
//     corrects coordinated omission), or in users mode (Config.Think: each
//     connection is a user who sends, reads the answer, thinks and sends
//     again, users arriving over Config.Ramp). Latencies go into HDR
//     histograms (1 µs resolution, 3 significant digits) shared by a few
//     connections each, merged when the run ends.
//   - StartUpstream is the bundled control API: every request gets 200 and
//     the same deterministic Body(size), so a response can be checked for
//     length (Config.ExpectSize) and CRC-32C (Config.Verify) without the
//     loader having seen it produced.
//   - WriteMarkdown, WriteJSON and WriteHTML render a Report (one Tier per
//     connection count, control and relay side by side); ReadJSON reads the
//     JSON back.
//   - ParseSize, ParseHeader and ParseChecksum decode command-line input.
//
// # What counts
//
// A request belongs to the phase it was due (scheduled or sent) in: only
// requests due in the measured phase count, so an open-loop side never
// reports more than was scheduled. A response counts as a request (and
// enters the latency percentiles) only if it is complete, its status is 2xx and its body has the expected length
// and checksum. Everything else is counted in exactly one of errors
// (connect, write, read or parse failures), timeouts, non-2xx and bad body.
// Requests cut off by the end of the run or by cancellation are dropped,
// not counted as timeouts.
//
// # What it must never do
//
// The loader must not be the bottleneck: the per-request path writes a
// request serialized once at start-up, reads into a per-connection
// fasthttp.Response and bufio.Reader (a thinking user lends its reader
// back to a pool), buffers latencies and records them in bursts, and
// allocates nothing (alloc_test.go). Every
// loop is bounded by the clock and by Config.MaxRequests and ends by
// itself. Reports never contain header values: the relay's headers carry
// its outbound token.
//
// # Sizes
//
// ParseSize reads "512", "512B", "1KiB", "10KiB", "1MiB" (binary,
// 1024-based) and "1KB", "1MB" (decimal, 1000-based), case-insensitive.
// A bare "K" or "M" is rejected as ambiguous; so are fractions and sizes
// above MaxSize (256 MiB).
//
// # JSON schema (version 1)
//
// WriteJSON writes one object. Fields are only ever added under version 1;
// a removal or change of meaning bumps "version".
//
//	{
//	  "version": 1,                       // SchemaVersion
//	  "generated": "2025-01-02T15:04:05Z", // RFC 3339, UTC; absent if unknown
//	  "config": {
//	    "control_url": "http://127.0.0.1:9000/api/echo", // absent if not given
//	    "relay_url":   "http://127.0.0.1:8080/api/echo", // absent if not given
//	    "method": "POST",                 // absent if not given
//	    "size_bytes": 1024,               // request body
//	    "expect_size_bytes": 1024,        // 0 = any length accepted
//	    "warmup_s": 2, "duration_s": 10, "timeout_s": 5,
//	    "rate": 0,                        // req/s in total; 0 = closed loop
//	    "think_s": 1, "think_jitter_s": 0.1, "ramp_s": 2, // users mode; absent otherwise
//	    "environment": {                  // absent if unknown
//	      "cpu_model": "AMD EPYC 7B13", "cpus": 2, "go_version": "go1.26.0",
//	      "commit": "60a70cb1a2b3+dirty", "loadavg": "1.02 0.88 0.75"
//	    }
//	  },
//	  "tiers": [
//	    {
//	      "connections": 300,
//	      "control": SIDE,                // absent if not measured
//	      "relay":   SIDE,                // absent if not measured
//	      "result": {                     // present when both sides are
//	        "requests_pct": 98.9,         // relay / control × 100; null if control had none
//	        "rps_pct": 98.5,
//	        "p50_delta_ms": 0.4,          // relay − control, signed
//	        "p90_delta_ms": 0.6,
//	        "p99_delta_ms": 1.1
//	      }
//	    }
//	  ]
//	}
//
// where SIDE is
//
//	{
//	  "requests": 123456,                 // successful responses in the measured phase
//	  "rps": 12345.6,                     // requests / duration_s
//	  "errors": 0, "timeouts": 0, "non_2xx": 0, "bad_body": 0,
//	  "min_ms": 0.05, "p50_ms": 0.8, "p90_ms": 1.2, "p99_ms": 2.5,
//	  "p999_ms": 4.1, "max_ms": 9.7,      // latency of successes; 0 when there were none
//	  "duration_s": 10,                   // measured phase
//	  "scheduled": 95000,                 // open loop: requests due in the phase; absent otherwise
//	  "cpu": {                            // CPU seconds spent in the phase; absent if not measured
//	    "target_s": 1.9,                  // the processes given with --control-pid / --relay-pid
//	    "loader_s": 0.7, "machine_s": 9.8, // the loader; every CPU's busy time
//	    "wall_s": 10.01, "cpus": 2        // between the two readings
//	  }
//	}
package loadtest
