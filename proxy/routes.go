package proxy

import (
	"bytes"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// routeList is one compiled PASS_THROUGH_ROUTES or MTE_ROUTES value: RE2
// patterns over a request's path, each anchored only where it says so (^, $).
// The zero value is unset.
type routeList struct {
	patterns []*regexp.Regexp
}

// parseRouteList reads the comma-separated patterns of raw, the value of
// the environment variable name. Spaces around a pattern are dropped; a
// comma inside {m,n} or a [class] belongs to the pattern. An empty or
// all-space value is unset; an empty item (",," or a trailing comma) is
// refused, since an empty pattern matches every path.
func parseRouteList(name, raw string) (routeList, error) {
	if strings.TrimSpace(raw) == "" {
		return routeList{}, nil
	}
	var l routeList
	for _, item := range splitPatterns(raw) {
		item = strings.TrimSpace(item)
		if item == "" {
			return routeList{}, errors.New(name + ": an empty pattern (two commas, or one at an end) would match every path; remove it")
		}
		re, err := regexp.Compile(item)
		if err != nil {
			reason := strings.TrimPrefix(err.Error(), "error parsing regexp: ")
			return routeList{}, errors.New(name + ": " + strconv.Quote(item) + " is not an RE2 regular expression: " + reason)
		}
		l.patterns = append(l.patterns, re)
	}
	return l, nil
}

// splitPatterns splits raw at the commas that are not inside braces or a
// bracketed class, nor escaped by a backslash.
func splitPatterns(raw string) []string {
	var items []string
	braces, class, start := 0, false, 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '\\':
			i++
		case class:
			class = c != ']'
		case c == '[':
			class = true
			if i+1 < len(raw) && raw[i+1] == ']' {
				i++ // "[]...]": a leading ] is a member, not the end
			}
		case c == '{':
			braces++
		case c == '}' && braces > 0:
			braces--
		case c == ',' && braces == 0:
			items = append(items, raw[start:i])
			start = i + 1
		}
	}
	return append(items, raw[start:])
}

// set reports whether the list has patterns.
func (l routeList) set() bool { return len(l.patterns) > 0 }

// match reports whether a pattern matches path. Match on a []byte does not
// allocate (TestRouteMatchZeroAllocations).
func (l routeList) match(path []byte) bool {
	for _, re := range l.patterns {
		if re.Match(path) {
			return true
		}
	}
	return false
}

// routes are the inbound relay's route settings: which plain requests pass
// through to the upstream unsealed, and which paths sealed requests may
// reach.
type routes struct {
	passThrough routeList // PASS_THROUGH_ROUTES
	mte         routeList // MTE_ROUTES: unset, every path
}

// parseRoutes reads PASS_THROUGH_ROUTES and MTE_ROUTES, the raw values,
// under the names to use in errors.
func parseRoutes(passThroughName, passThrough, mteName, mte string) (routes, error) {
	var r routes
	var err error
	if r.passThrough, err = parseRouteList(passThroughName, passThrough); err != nil {
		return routes{}, err
	}
	if r.mte, err = parseRouteList(mteName, mte); err != nil {
		return routes{}, err
	}
	return r, nil
}

// set reports whether either list is set: only then are plain requests
// for unknown paths answered MTE_ROUTE_NOT_FOUND.
func (r *routes) set() bool { return r.passThrough.set() || r.mte.set() }

// sealedAllowed reports whether a sealed request for target (origin-form,
// as opened) may reach the upstream. A target routePath cannot read
// unambiguously is refused when MTE_ROUTES is set: an allow-list fails
// closed. scratch is reused for the decoded path.
func (r *routes) sealedAllowed(target []byte, scratch *[]byte) bool {
	if !r.mte.set() {
		return true
	}
	path, ok := routePath(target, scratch)
	return ok && r.mte.match(path)
}

// routePath returns the path of the origin-form target as an upstream acts
// on it: the query cut off and percent-escapes decoded (into *scratch,
// which it may grow; a path without escapes is returned as it is). ok is
// false for a path that servers do not all read the same way, which no
// pattern may be trusted to match: not starting with "/", a fragment, a
// backslash, a ";" (Tomcat, Jetty and Spring drop path parameters, so
// /admin;.css is /admin to them and not to Go or nginx), an empty segment
// ("//"), a dot segment (also percent-encoded), an invalid escape, an escape decoding to "/", "\",
// "%", "?", "#", ";" or a control character, or bytes that are not UTF-8
// (decoders that read overlong forms take %c0%ae for "." and %c0%af for
// "/").
func routePath(target []byte, scratch *[]byte) (path []byte, ok bool) {
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	if len(target) == 0 || target[0] != '/' || bytes.IndexByte(target, '#') >= 0 ||
		bytes.IndexByte(target, '\\') >= 0 || bytes.IndexByte(target, ';') >= 0 ||
		bytes.Contains(target, strEmptySegment) || hasDotSegment(target) {
		return nil, false
	}
	if bytes.IndexByte(target, '%') < 0 {
		return validUTF8(target)
	}
	out := (*scratch)[:0]
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c == '%' {
			if i+2 >= len(target) {
				return nil, false
			}
			hi, lo := unhex(target[i+1]), unhex(target[i+2])
			if hi < 0 || lo < 0 {
				return nil, false
			}
			c = byte(hi<<4 | lo)
			if c < 0x20 || c == 0x7f || bytes.IndexByte(strAmbiguousDecoded, c) >= 0 {
				return nil, false
			}
			i += 2
		}
		out = append(out, c)
	}
	*scratch = out
	return validUTF8(out)
}

func validUTF8(path []byte) ([]byte, bool) {
	if !utf8.Valid(path) {
		return nil, false
	}
	return path, true
}

var (
	strEmptySegment     = []byte("//")
	strAmbiguousDecoded = []byte(`/\%?#;`)
)

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// plainRoute is what the route settings make of a plain request (no
// x-mte-client-id, not a relay endpoint): pass it through, refuse it
// MTE_ROUTE_NOT_FOUND, or leave it to the relay's other rules.
type plainRoute uint8

const (
	plainOther plainRoute = iota
	plainPassThrough
	plainNotFound
)

// routePlain classifies a plain request by its header section, under the
// route lists of the site its Host names (none under a Host in no
// DOMAIN_MAP entry), and returns that site. Only the inbound role passes
// requests through, and never an app's request for the outbound role
// (x-mte-outbound-token or x-mte-upstream set). With neither list set it
// costs one length check.
func (s *Server) routePlain(h *fasthttp.RequestHeader, scratch *[]byte) (plainRoute, *site) {
	st := s.siteFor(h.Host())
	if st == nil || !st.routes.set() || !s.cfg.Role.inbound() ||
		controlValue(h, hdrOutboundToken) != nil || controlValue(h, hdrUpstream) != nil {
		return plainOther, st
	}
	target, e := originForm(h.RequestURI())
	if e != nil || passesNoMethod(h.Method()) {
		return plainNotFound, st
	}
	path, ok := routePath(target, scratch)
	switch {
	case ok && st.routes.passThrough.match(path):
		return plainPassThrough, st
	case ok && st.routes.mte.match(path):
		return plainOther, st
	}
	return plainNotFound, st
}

// passesNoMethod reports the methods no route passes through, in any case:
// CONNECT asks for a tunnel, and TRACE has the upstream echo the request as
// it arrived, with what the relay and anything between it and the API
// added (signatures, a proxy's identity fields), to an anonymous client.
// An ordinary reverse proxy refuses both too.
func passesNoMethod(method []byte) bool {
	return bytes.EqualFold(method, strConnect) || bytes.EqualFold(method, strTrace)
}

var (
	strConnect = []byte(fasthttp.MethodConnect)
	strTrace   = []byte(fasthttp.MethodTrace)
)
