package loadtest

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error from a parser or from Config validation wraps
// one of these, so callers can branch with errors.Is and still print a
// message that names the offending input.
var (
	ErrBadSize     = errors.New("loadtest: bad size")
	ErrBadHeader   = errors.New("loadtest: bad header")
	ErrBadChecksum = errors.New("loadtest: bad checksum")
	ErrBadConfig   = errors.New("loadtest: bad config")
	ErrBadReport   = errors.New("loadtest: bad report") // from ReadJSON
)

// inputError names the rejected input and why, and unwraps to the package
// sentinel in kind.
type inputError struct {
	kind  error
	input string
	why   string
}

func (e *inputError) Error() string {
	return e.kind.Error() + " " + strconv.Quote(e.input) + ": " + e.why
}

func (e *inputError) Unwrap() error { return e.kind }

// Why is the reason alone, without the input, for a caller whose input may
// be a secret (a header read from a file can hold a token).
func (e *inputError) Why() string { return e.why }
