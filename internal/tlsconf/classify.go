package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
)

// Failure is why a TLS connection to a server failed, in terms of which
// side must act.
type Failure int

const (
	// NotTLS: the error is not a TLS failure (refused connection, timeout).
	NotTLS Failure = iota
	// Untrusted: the server's certificate does not chain to this side's
	// CA file (or the system roots), or has expired. Fix the CA file here
	// or the server's certificate.
	Untrusted
	// WrongName: the server's certificate does not carry the name dialled
	// (or the SERVER_NAME variable). Fix the name here or the server's
	// certificate.
	WrongName
	// Refused: the server ended the handshake with an alert, usually
	// because it wants a client certificate this side did not send or does
	// not trust the one it did. Fix the server's client CA and names, or
	// this side's certificate.
	Refused
	// NoTLS: the server does not speak TLS on that port.
	NoTLS
	// Other: another TLS failure (no common version or group).
	Other
)

var failureNames = [...]string{"not TLS", "untrusted", "wrong name", "refused", "no TLS", "other"}

func (f Failure) String() string {
	if int(f) < len(failureNames) {
		return failureNames[f]
	}
	return "unknown"
}

// Classify says why err, returned by a TLS client, failed.
func Classify(err error) Failure {
	if err == nil {
		return NotTLS
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		var he x509.HostnameError
		if errors.As(cve.Err, &he) {
			return WrongName
		}
		return Untrusted
	}
	if errors.Is(err, errNoServerCertificate) {
		return Untrusted
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) {
		return NoTLS
	}
	// crypto/tls reports an alert from the server as this OpError; its
	// alert type is unexported.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return Refused
	}
	// The remaining handshake failures (no common version, group or
	// suite) are plain errors from crypto/tls, all worded "tls: …".
	if strings.Contains(err.Error(), "tls: ") {
		return Other
	}
	return NotTLS
}
