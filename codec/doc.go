// Package codec is pqrelay's wire format between two relays: the sealed frame
// (a 20-byte clear header and an AES-256-GCM ciphertext) and the envelope
// inside it (method, URI, headers and body of a request, or status, headers
// and body of a response). docs/PROTOCOL.md specifies every byte. It also
// holds the scanners of message protection, ScanJSON and ScanXML, which
// check a body's well-formedness and limits in one pass.
//
// Byte-crunching kernels have amd64 assembly (codec_amd64.s, AVX2, chosen
// once with cpuid) beside a pure-Go twin (codec_generic.go) that the purego
// build tag forces; the two must give identical results, which the fuzz
// targets check.
//
// The package knows nothing about sessions, HTTP servers or clocks: callers
// hand it keys, counters and timestamps. It must never return plaintext from a
// frame that did not authenticate, and every decoder checks lengths before it
// reads, so hostile input yields ErrFrame or ErrEnvelope, never a panic. The
// scanners never allocate or recurse, whatever the body. Programmer mistakes (a key of the wrong length) do panic.
package codec
