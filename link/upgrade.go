package link

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// How a link starts (docs/PROTOCOL.md §10.1): A sends one HTTP/1.1 request
// on B's own port,
//
//	POST /api/mte-link HTTP/1.1
//	Host: <B's host>
//	Connection: Upgrade
//	Upgrade: pqrelay-link/1
//	x-mte-link: <client id>
//	Content-Type: application/x-mte-frame
//	Content-Length: <n>
//
//	<a sealed request frame of the session>
//
// and B, once the frame opened under that session, answers
//
//	HTTP/1.1 101 Switching Protocols
//	Upgrade: pqrelay-link/1
//	Connection: Upgrade
//
// after which both sides speak link frames. Any other answer means no link:
// A keeps to per-request HTTP.

// ErrRefused: the peer, or something between, did not upgrade.
var ErrRefused = errors.New("link: upgrade refused")

// Dialer opens A's connections to one peer.
type Dialer struct {
	// Addr is the host:port to dial.
	Addr string
	// Host is the upgrade request's Host header.
	Host string
	// TLS, when not nil, wraps each connection in TLS before the upgrade.
	// It is the peer's one TLS configuration, shared with its HTTP client.
	TLS *tls.Config
	// Timeout bounds the dial, TLS handshake and upgrade together
	// (DefaultDialTimeout).
	Timeout time.Duration
	// Config tunes the connections.
	Config ClientConfig
}

// Dial opens a connection and asks for a link for the session named by
// clientID (its header form), proven by auth: a sealed request frame of
// that session, which B must open before it upgrades.
func (d *Dialer) Dial(clientID, auth []byte) (*Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	deadline := time.Now().Add(timeout)
	nd := net.Dialer{Deadline: deadline}
	raw, err := nd.Dial("tcp", d.Addr)
	if err != nil {
		return nil, err
	}
	conn := raw
	if d.TLS != nil {
		cfg := d.TLS
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			cfg.ServerName = hostname(d.Host)
		}
		tc := tls.Client(raw, cfg)
		tc.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			raw.Close()
			return nil, err
		}
		conn = tc
	}
	conn.SetDeadline(deadline)
	br := bufio.NewReaderSize(conn, readBufferSize)
	if _, err := conn.Write(AppendUpgradeRequest(nil, d.Host, clientID, auth)); err != nil {
		conn.Close()
		return nil, err
	}
	if err := readUpgradeResponse(br); err != nil {
		conn.Close()
		if isTimeout(err) {
			// Something took the request and never answered it: an
			// intermediary that holds upgrades, most likely. Asking again
			// soon would only hold another connection there.
			return nil, fmt.Errorf("%w: no answer in %v", ErrRefused, timeout)
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return newConn(conn, br, d.Config), nil
}

// hostname strips the port and brackets from a Host header value.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

// AppendUpgradeRequest appends the request that asks for a link.
func AppendUpgradeRequest(dst []byte, host string, clientID, auth []byte) []byte {
	dst = append(dst, "POST "+Path+" HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nConnection: Upgrade\r\nUpgrade: "+Protocol+"\r\n"+ClientIDHeader+": "...)
	dst = append(dst, clientID...)
	dst = append(dst, "\r\nContent-Type: application/x-mte-frame\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(auth)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, auth...)
}

// readUpgradeResponse reads B's answer up to the end of its header and
// accepts only a 101 that names the link protocol.
func readUpgradeResponse(br *bufio.Reader) error {
	total := 0
	var upgrade, connection bool
	for i := 0; ; i++ {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil || total > maxUpgradeResponse {
			if err == nil || errors.Is(err, bufio.ErrBufferFull) {
				return ErrRefused
			}
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i == 0 {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 101")) || len(line) > 12 && line[12] != ' ' {
				return ErrRefused
			}
			continue
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return ErrRefused
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(value, []byte(Protocol))
		case bytes.EqualFold(name, []byte("Connection")):
			connection = hasToken(value, "upgrade")
		}
	}
	if !upgrade || !connection {
		return ErrRefused
	}
	return nil
}

// hasToken reports whether the comma-separated list v holds token.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if bytes.EqualFold(bytes.TrimSpace(t), []byte(token)) {
			return true
		}
	}
	return false
}

// IsUpgrade reports whether a request asks for a link.
func IsUpgrade(h *fasthttp.RequestHeader) bool {
	return h.IsPost() && string(h.RequestURI()) == Path &&
		bytes.EqualFold(h.Peek(fasthttp.HeaderUpgrade), []byte(Protocol)) &&
		hasToken(h.Peek(fasthttp.HeaderConnection), "upgrade")
}

// Accept answers an upgrade request with 101 and serves the link, with h
// handling its requests, on the connection once fasthttp hands it over.
// The caller has checked IsUpgrade and authenticated the request.
func (s *Server) Accept(ctx *fasthttp.RequestCtx, h Handler) {
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.Response.Header.Set(fasthttp.HeaderUpgrade, Protocol)
	ctx.Response.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	ctx.Hijack(func(c net.Conn) { s.ServeConn(c, h) })
}
