package upsign

import (
	"errors"
	"strings"

	"github.com/pqrelay/pqrelay/codec"
)

// The SIGNING_HEADERS defaults of the issue: what Tyk and the draft call the
// recommended minimum plus the body digest, and for RFC 9421 the components
// that pin method, target, body and time.
const (
	defaultCavageHeaders = "(request-target) host date digest"
	defaultComponents    = `"@method" "@target-uri" "content-digest" "content-type" "date"`
)

// cavageItem is one entry of the cavage headers list.
type cavageItem struct {
	requestTarget bool   // (request-target)
	field         string // lower-case header name otherwise
}

// parseCavageHeaders reads a cavage SIGNING_HEADERS value: header names and
// (request-target), separated by spaces, each at most once. Names are
// lower-cased, as the draft's signing string writes them (§2.3).
func parseCavageHeaders(text string) ([]cavageItem, error) {
	var items []cavageItem
	seen := map[string]bool{}
	for _, f := range strings.Fields(text) {
		f = strings.ToLower(f)
		switch {
		case f == "(request-target)":
			items = append(items, cavageItem{requestTarget: true})
		case !codec.ValidHeaderName([]byte(f)):
			return nil, errors.New("SIGNING_HEADERS: " + quote(f) + " is neither a header name nor (request-target)")
		default:
			items = append(items, cavageItem{field: f})
		}
		if seen[f] {
			return nil, errors.New("SIGNING_HEADERS: " + quote(f) + " is listed twice")
		}
		seen[f] = true
	}
	// Draft-10 reads an empty or absent headers parameter as "date", so a
	// request must always have one of the two items every request has.
	if !seen["(request-target)"] && !seen["date"] {
		return nil, errors.New("SIGNING_HEADERS: must include (request-target) or date")
	}
	return items, nil
}

type componentKind uint8

const (
	kindField componentKind = iota
	kindMethod
	kindTargetURI
	kindAuthority
	kindScheme
	kindRequestTarget
	kindPath
	kindQuery
	kindQueryParam
)

// derived are the derived components of RFC 9421 §2.2 that a request has
// (@status belongs to responses).
var derived = map[string]componentKind{
	"@method":         kindMethod,
	"@target-uri":     kindTargetURI,
	"@authority":      kindAuthority,
	"@scheme":         kindScheme,
	"@request-target": kindRequestTarget,
	"@path":           kindPath,
	"@query":          kindQuery,
	"@query-param":    kindQueryParam,
}

// component is one covered component of an RFC 9421 signature.
type component struct {
	kind componentKind
	// id is the component identifier as it appears in the signature base
	// and in Signature-Input, e.g. "@method" or "@query-param";name="Pet".
	id []byte
	// name is the lower-case header name of a kindField component.
	name string
	// param is the decoded parameter name of a kindQueryParam component.
	param []byte
}

// parseComponents reads an rfc9421 SIGNING_HEADERS value: component
// identifiers as structured-field strings separated by spaces, optionally
// wrapped in parentheses as in Signature-Input. The only component
// parameter understood is name on @query-param (RFC 9421 §2.2.8); any other
// parameter, derived component or malformed item is refused, since a
// signature must never claim to cover something it did not.
func parseComponents(text string) ([]component, error) {
	s := strings.TrimSpace(text)
	if len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' {
		s = s[1 : len(s)-1]
	}
	var comps []component
	seen := map[string]bool{}
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		name, rest, ok := cutString(s)
		if !ok {
			return nil, errors.New(`SIGNING_HEADERS: expected a quoted component identifier such as "@method" at ` + quote(s))
		}
		s = rest
		var paramKey, paramValue string
		nparams := 0
		for len(s) > 0 && s[0] == ';' {
			eq := strings.IndexByte(s, '=')
			if eq < 0 {
				return nil, errors.New("SIGNING_HEADERS: parameter without a value at " + quote(s))
			}
			paramKey = s[1:eq]
			if paramValue, s, ok = cutString(s[eq+1:]); !ok {
				return nil, errors.New("SIGNING_HEADERS: parameter values must be quoted strings at " + quote(s))
			}
			nparams++
		}
		if len(s) > 0 && s[0] != ' ' {
			return nil, errors.New("SIGNING_HEADERS: expected a space after " + quote(name))
		}
		c, err := newComponent(name, paramKey, paramValue, nparams)
		if err != nil {
			return nil, err
		}
		if seen[string(c.id)] {
			return nil, errors.New("SIGNING_HEADERS: " + string(c.id) + " is listed twice")
		}
		seen[string(c.id)] = true
		comps = append(comps, c)
	}
	if len(comps) == 0 {
		return nil, errors.New("SIGNING_HEADERS: lists no component")
	}
	return comps, nil
}

func newComponent(name, paramKey, paramValue string, nparams int) (component, error) {
	if strings.HasPrefix(name, "@") {
		kind, ok := derived[name]
		switch {
		case !ok:
			return component{}, errors.New("SIGNING_HEADERS: unknown derived component " + quote(name))
		case kind == kindQueryParam && (nparams != 1 || paramKey != "name" || paramValue == ""):
			return component{}, errors.New(`SIGNING_HEADERS: "@query-param" takes exactly one parameter, ;name="…"`)
		case kind == kindQueryParam:
			decoded := appendFormDecoded(nil, []byte(paramValue))
			id := append([]byte(`"@query-param";name="`), appendFormEncoded(nil, decoded)...)
			return component{kind: kind, id: append(id, '"'), param: decoded}, nil
		case nparams > 0:
			return component{}, errors.New("SIGNING_HEADERS: " + quote(name) + " takes no parameters")
		}
		return component{kind: kind, id: []byte(`"` + name + `"`)}, nil
	}
	switch {
	case !codec.ValidHeaderName([]byte(name)) || strings.ToLower(name) != name:
		return component{}, errors.New("SIGNING_HEADERS: " + quote(name) + " is not a lower-case header name or a known derived component")
	case nparams > 0:
		return component{}, errors.New("SIGNING_HEADERS: header components take no parameters here (" + quote(name) + ")")
	case name == "signature" || name == "signature-input":
		return component{}, errors.New("SIGNING_HEADERS: cannot cover " + quote(name) + ", where the signature goes")
	}
	return component{kind: kindField, id: []byte(`"` + name + `"`), name: name}, nil
}

// cutString reads a structured-field string (RFC 8941 §3.3.3) at the start
// of s without escapes, which no component name or parameter here needs.
func cutString(s string) (value, rest string, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", s, false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", s, false
	}
	value = s[1 : 1+end]
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return "", s, false
		}
	}
	return value, s[2+end:], value != ""
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + s + `"`
}

// appendFormDecoded appends s decoded as application/x-www-form-urlencoded
// does: "+" is a space, %XX a byte, a malformed % stays as it is.
func appendFormDecoded(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendFormEncoded percent-encodes s with the
// application/x-www-form-urlencoded percent-encode set, spaces as %20: the
// form RFC 9421 §2.2.8 puts in the signature base.
func appendFormEncoded(dst, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '-' || c == '.' || c == '_' {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
