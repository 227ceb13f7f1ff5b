package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
)

// Domain is one DOMAIN_MAP entry: an API the inbound relay serves to the
// outbound relays that reach it under Host, with its own upstream, secret,
// sessions and headers (docs/ARCHITECTURE.md, "Several APIs behind one
// relay"). Optional fields at their zero value take the relay-wide
// variable's value.
type Domain struct {
	// Host is the entry's key, lower-case: a host name or IP literal,
	// with a port when the entry serves only that port.
	Host string
	// Upstream is upstream, as UPSTREAM. Required.
	Upstream string
	// ClientIDSecret is client_id_secret. Default CLIENT_ID_SECRET.
	ClientIDSecret string
	// OutboundToken is outbound_token: the token of app requests that
	// reach this relay under Host. Default OUTBOUND_TOKEN.
	OutboundToken string
	// CORSOrigins is cors_origins, as CORS_ORIGINS, for app requests
	// under Host. Default (nil) CORS_ORIGINS; empty: no CORS.
	CORSOrigins []string
	// Headers is headers, as HEADERS: they replace HEADERS for this entry.
	// Default (nil) HEADERS; empty: none.
	Headers []Header
	// PassThroughRoutes and MTERoutes are pass_through_routes and
	// mte_routes, as PASS_THROUGH_ROUTES and MTE_ROUTES, for requests under
	// Host. Default (nil) the variables' values; "": none.
	PassThroughRoutes, MTERoutes *string
}

// domainFields is one entry as written in DOMAIN_MAP; a pointer tells a
// field left out from one set to "".
type domainFields struct {
	Upstream       *string            `json:"upstream"`
	ClientIDSecret *string            `json:"client_id_secret"`
	OutboundToken  *string            `json:"outbound_token"`
	CORSOrigins    *string            `json:"cors_origins"`
	Headers        *map[string]string `json:"headers"`
	PassThrough    *string            `json:"pass_through_routes"`
	MTE            *string            `json:"mte_routes"`
}

// ParseDomainMap reads DOMAIN_MAP: a JSON object keyed by host name
// (case-insensitive, an optional port), each value an object with
// upstream and optionally client_id_secret, outbound_token, cors_origins
// (comma-separated, as CORS_ORIGINS), headers (an object, as HEADERS),
// pass_through_routes and mte_routes (as PASS_THROUGH_ROUTES and MTE_ROUTES).
// Unknown fields and keys written twice are errors: a typo must not drop a
// protection in silence. Entries come back in the order written; each
// error is one line naming DOMAIN_MAP, the entry and the field. The values
// are checked further by Config.Validate.
func ParseDomainMap(raw string) ([]Domain, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New(`DOMAIN_MAP: must be a JSON object keyed by host name, e.g. {"api.example.com":{"upstream":"http://127.0.0.1:9000"}}`)
	}
	var domains []Domain
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errors.New("DOMAIN_MAP: not valid JSON")
		}
		key := t.(string) // inside an object, json only returns string keys
		host, err := domainKey(key)
		if err != nil {
			return nil, errors.New("DOMAIN_MAP: " + quoteName(key) + ": " + err.Error())
		}
		if seen[host] {
			return nil, errors.New("DOMAIN_MAP: " + quoteName(key) + ": the host is listed twice (keys are case-insensitive)")
		}
		seen[host] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, errors.New("DOMAIN_MAP: " + quoteName(key) + ": not valid JSON")
		}
		d, err := parseDomainFields(host, value)
		if err != nil {
			return nil, errors.New("DOMAIN_MAP: " + quoteName(key) + ": " + err.Error())
		}
		domains = append(domains, d)
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("DOMAIN_MAP: not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("DOMAIN_MAP: text after the JSON object")
	}
	if len(domains) == 0 {
		return nil, errors.New("DOMAIN_MAP: no entries; leave it unset to use UPSTREAM")
	}
	return domains, nil
}

func parseDomainFields(host string, value json.RawMessage) (Domain, error) {
	if v := bytes.TrimSpace(value); len(v) == 0 || v[0] != '{' {
		return Domain{}, errors.New(`must be an object like {"upstream":"http://127.0.0.1:9000"}`)
	}
	var f domainFields
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return Domain{}, errors.New(strings.SplitN(typeErr.Field, ".", 2)[0] + ": wrong type (strings, and an object of strings for headers)")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return Domain{}, errors.New(strings.TrimPrefix(err.Error(), "json: ") +
				"; the fields are upstream, client_id_secret, outbound_token, cors_origins, headers, pass_through_routes and mte_routes")
		}
		return Domain{}, errors.New("wrong type (strings, and an object of strings for headers)")
	}
	d := Domain{Host: host}
	if f.Upstream == nil {
		return Domain{}, errors.New("upstream: required; set it to the API's origin, e.g. http://127.0.0.1:9000")
	}
	d.Upstream = *f.Upstream
	for _, s := range []struct {
		name string
		from *string
		to   *string
	}{{"client_id_secret", f.ClientIDSecret, &d.ClientIDSecret}, {"outbound_token", f.OutboundToken, &d.OutboundToken}} {
		if s.from == nil {
			continue
		}
		if *s.from == "" {
			return Domain{}, errors.New(s.name + ": empty; leave the field out to use the relay-wide value")
		}
		*s.to = *s.from
	}
	if f.CORSOrigins != nil {
		d.CORSOrigins = append([]string{}, splitList(*f.CORSOrigins)...)
	}
	if f.Headers != nil {
		if *f.Headers == nil {
			return Domain{}, errors.New(`headers: must be an object of strings, e.g. {"X-Env":"prod"}`)
		}
		d.Headers = HeadersFromMap(*f.Headers)
	}
	d.PassThroughRoutes, d.MTERoutes = f.PassThrough, f.MTE
	return d, nil
}

// HeadersFromMap is HEADERS' JSON object as Headers, sorted by name so that
// what the relay sends does not change from one start to the next.
func HeadersFromMap(m map[string]string) []Header {
	hs := make([]Header, 0, len(m))
	for name, value := range m {
		hs = append(hs, Header{Name: name, Value: value})
	}
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].Name < hs[j-1].Name; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
	return hs
}

// domainField names a field of the entry host in an error.
func domainField(host, field string) string {
	return "DOMAIN_MAP: " + quoteName(host) + ": " + field
}

// splitList splits a comma-separated value, trimming blanks and dropping
// empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// maxHostKey bounds a DOMAIN_MAP key: a DNS name (253), brackets or a
// port. Hosts longer than this are in no entry.
const maxHostKey = 253 + len(":65535")

// domainKey checks a DOMAIN_MAP key and returns it lower-case: a DNS name
// or an IP literal (IPv6 in brackets), with an optional port from 1 to
// 65535, as a Host field carries it (RFC 9110 §7.2).
func domainKey(key string) (string, error) {
	k := strings.ToLower(key)
	host, port := k, ""
	if strings.HasPrefix(k, "[") {
		end := strings.IndexByte(k, ']')
		if end < 0 || net.ParseIP(k[1:end]) == nil || strings.Contains(k[1:end], "%") {
			return "", errors.New("not a host name with an optional port, e.g. api.example.com or api.example.com:8443")
		}
		host, port = k[:end+1], k[end+1:]
		if port != "" && port[0] != ':' {
			return "", errors.New("not a host name with an optional port, e.g. api.example.com or api.example.com:8443")
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(k, ":") {
			return "", errors.New("the port must be from 1 to 65535")
		}
	} else if i := strings.LastIndexByte(k, ':'); i >= 0 {
		host, port = k[:i], k[i+1:]
		if port == "" {
			return "", errors.New("the port must be from 1 to 65535")
		}
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return "", errors.New("the port must be from 1 to 65535")
		}
	}
	if host == "" || host[0] != '[' && !dnsName(host) {
		return "", errors.New("not a host name with an optional port, e.g. api.example.com or api.example.com:8443")
	}
	if len(k) > maxHostKey {
		return "", errors.New("longer than a host name and port can be")
	}
	return k, nil
}

// dnsName reports whether h is a lower-case host name: dot-separated labels
// of letters, digits, hyphens and underscores, none empty or starting or
// ending with a hyphen, at most 253 characters. IPv4 addresses are names of
// this form.
func dnsName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
