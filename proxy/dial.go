package proxy

import (
	"crypto/tls"
	"net"
	"time"
)

// dialer opens the relay's connections to a peer relay or to the upstream
// within the time the request has left, TLS handshake included. fasthttp
// bounds a handshake only by its write deadline when it does it itself, so a
// server that accepts and then stays silent would hold the handshake, and
// every request waiting for that connection, for as long as it liked.
type dialer struct {
	tls *tls.Config // nil for plain TCP
}

func newDialer(host string, useTLS bool) dialer {
	if !useTLS {
		return dialer{}
	}
	return dialer{tls: &tls.Config{ServerName: trimBrackets(hostOnly(host)), MinVersion: tls.VersionTLS12}}
}

// hostOnly drops a port from host[:port].
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// dial is a fasthttp.DialFuncWithTimeout. fasthttp passes the request's
// remaining time; a zero timeout (a connection opened ahead of any request)
// gets fallbackDialTimeout.
func (d dialer) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = fallbackDialTimeout
	}
	deadline := time.Now().Add(timeout)
	conn, err := (&net.Dialer{Deadline: deadline}).Dial("tcp", addr)
	if err != nil || d.tls == nil {
		return conn, err
	}
	tc := tls.Client(conn, d.tls)
	if err := tc.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

const fallbackDialTimeout = 10 * time.Second
