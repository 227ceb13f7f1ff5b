package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pqrelay/pqrelay/codec"
	"github.com/pqrelay/pqrelay/proxy"
	"github.com/pqrelay/pqrelay/relaytest"
)

// protectionCase is one request body through a pair whose inbound relay
// protects messages: either it arrives byte for byte at the upstream, or
// the app gets 400 with code and a message containing every string of
// want, and the upstream sees nothing.
type protectionCase struct {
	name, contentType, body string
	code                    string // "" when the body must pass
	want                    []string
	encoding                string // Content-Encoding, if any
}

func runProtectionCases(t *testing.T, p *relaytest.Pair, cases []protectionCase) {
	t.Helper()
	for _, c := range cases {
		for _, mode := range []string{"MKE", "MTE"} {
			calls := p.Upstream.Calls()
			req := p.Request(t, "POST", "/api/records", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			if c.encoding != "" {
				req.Header.Set("Content-Encoding", c.encoding)
			}
			req.Header.Set("x-mte-encode-type", mode)
			r := do(t, req)
			if c.code == "" {
				if r.status != http.StatusOK || string(r.body) != c.body {
					t.Errorf("%s (%s): app got %d %s %q", c.name, mode, r.status, relayCode(r), r.body)
				} else if got := p.Upstream.Last(t).Body; string(got) != c.body {
					t.Errorf("%s (%s): the upstream got %q", c.name, mode, got)
				}
				continue
			}
			var e struct{ Error, Code string }
			if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusBadRequest || relayCode(r) != c.code || e.Code != c.code {
				t.Errorf("%s (%s): app got %d %s %q; want 400 %s", c.name, mode, r.status, relayCode(r), r.body, c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(e.Error, w) {
					t.Errorf("%s (%s): message %q does not say %q", c.name, mode, e.Error, w)
				}
			}
			if p.Upstream.Calls() != calls {
				t.Errorf("%s (%s): a refused body reached the upstream", c.name, mode)
			}
		}
	}
}

// TestJSONProtection: each JSON_MAX_* limit and each kind of invalid JSON
// is refused by the inbound relay before the upstream; bodies within the
// limits, and bodies whose Content-Type is not JSON, arrive unchanged.
func TestJSONProtection(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) {
		c.JSONLimits = codec.JSONLimits{MaxDepth: 3, MaxArrayElements: 3, MaxObjectEntries: 3, MaxNameLength: 8, MaxStringLength: 16}
	}})
	threat, invalid := "MTE_JSON_THREAT", "MTE_JSON_INVALID"
	runProtectionCases(t, p, []protectionCase{
		{"within limits", "application/json", `{"id":1,"tags":["a","b"],"name":"caf\u00e9 \ud83d\ude00"}`, "", nil, ""},
		{"parameters and case", "Application/JSON; charset=utf-8", `[[[1]]]`, "", nil, ""},
		{"structured suffix", "application/vnd.api+json", ` {"data":null} `, "", nil, ""},
		{"depth", "application/json", `[[[[1]]]]`, threat, []string{"JSON_MAX_DEPTH=3", "at byte 3"}, ""},
		{"depth, structured suffix", "application/problem+json", `{"a":{"b":{"c":{}}}}`, threat, []string{"JSON_MAX_DEPTH=3", "at byte 15"}, ""},
		{"array elements", "application/json", `[1,2,3,4]`, threat, []string{"JSON_MAX_ARRAY_ELEMENTS=3", "at byte 7"}, ""},
		{"object entries", "application/json", `{"a":1,"b":2,"c":3,"d":4}`, threat, []string{"JSON_MAX_OBJECT_ENTRIES=3", "at byte 19"}, ""},
		{"name length", "application/json", `{"abcdefghi":1}`, threat, []string{"JSON_MAX_NAME_LENGTH=8", "at byte 1"}, ""},
		{"name length after unescaping", "application/json", `{"\u0061bcdefgh":1}`, "", nil, ""},
		{"string length", "application/json", `["0123456789abcdefg"]`, threat, []string{"JSON_MAX_STRING_LENGTH=16", "at byte 1"}, ""},
		{"trailing comma", "application/json", `[1,2,]`, invalid, []string{"at byte 5"}, ""},
		{"control byte in string", "application/json", "[\"a\tb\"]", invalid, []string{"at byte 3"}, ""},
		{"bad escape", "application/json", `["\x41"]`, invalid, []string{"at byte 3"}, ""},
		{"leading zero", "application/json", `[012]`, invalid, []string{"at byte 2"}, ""},
		{"invalid UTF-8", "application/json", "[\"\xc0\xaf\"]", invalid, []string{"at byte 2", "UTF-8"}, ""},
		{"unterminated", "application/json", `{"a":`, invalid, []string{"at byte 5"}, ""},
		{"empty body", "application/json", ``, "", nil, ""},
		{"blank body", "application/json", " \r\n", invalid, []string{"at byte 3"}, ""},
		{"not JSON by Content-Type", "text/plain", `[[[[[[not json`, "", nil, ""},
		{"content-encoded", "application/json", "\x1f\x8b\x08\x00", invalid, []string{"Content-Encoding"}, "gzip"},
		{"identity encoding", "application/json", `[1]`, "", nil, "identity"},
		{"XML type, XML protection off", "application/xml", `<a><b/>`, "", nil, ""},
	})
}

// TestXMLProtection: each XML_MAX_* limit, a DOCTYPE in its attack forms
// (billion laughs, external entities) and malformed XML are refused by the
// inbound relay before the upstream.
func TestXMLProtection(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) {
		c.XMLLimits = codec.XMLLimits{MaxDepth: 3, MaxChildren: 3, MaxAttributes: 2, MaxNameLength: 8, MaxTextLength: 16, MaxAttributeLength: 8}
	}})
	threat, invalid := "MTE_XML_THREAT", "MTE_XML_INVALID"
	const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><lolz>&lol2;</lolz>`
	const xxe = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`
	runProtectionCases(t, p, []protectionCase{
		{"within limits", "application/xml", `<?xml version="1.0"?><r a="1"><b>text &amp; more</b><c/></r>`, "", nil, ""},
		{"text/xml", "text/xml; charset=UTF-8", `<r><![CDATA[<x>]]></r>`, "", nil, ""},
		{"structured suffix", "application/soap+xml", `<env><body/></env>`, "", nil, ""},
		{"billion laughs", "application/xml", billionLaughs, threat, []string{"DOCTYPE", "at byte 21"}, ""},
		{"external entity", "text/xml", xxe, threat, []string{"DOCTYPE", "at byte 21"}, ""},
		{"depth", "application/xml", `<a><b><c><d/></c></b></a>`, threat, []string{"XML_MAX_DEPTH=3", "at byte 9"}, ""},
		{"children", "application/xml", `<a><b/><b/><b/><b/></a>`, threat, []string{"XML_MAX_CHILDREN=3", "at byte 15"}, ""},
		{"attributes", "application/xml", `<a x="1" y="2" z="3"/>`, threat, []string{"XML_MAX_ATTRIBUTES=2", "at byte 15"}, ""},
		{"name length", "application/xml", `<abcdefghi/>`, threat, []string{"XML_MAX_NAME_LENGTH=8", "at byte 1"}, ""},
		{"text length", "application/xml", `<a>0123456789abcdefg</a>`, threat, []string{"XML_MAX_TEXT_LENGTH=16", "at byte 3"}, ""},
		{"attribute length", "application/xml", `<a x="123456789"/>`, threat, []string{"XML_MAX_ATTRIBUTE_LENGTH=8", "at byte 5"}, ""},
		{"mismatched end tag", "application/xml", `<a><b></a></b>`, invalid, []string{"at byte 8"}, ""},
		{"duplicate attribute", "application/xml", `<a x="1" x="2"/>`, invalid, []string{"at byte 9", "attribute given twice"}, ""},
		{"attribute without value", "application/xml", `<a x/>`, invalid, []string{"at byte 4"}, ""},
		{"lt in attribute value", "application/xml", `<a x="<b/>"/>`, invalid, []string{"at byte 6"}, ""},
		{"two prefixes", "application/xml", `<a:b:c/>`, invalid, []string{"at byte 4"}, ""},
		{"prefixed names", "application/xml", `<p:r xmlns:p="urn:x" p:a="1"/>`, "", nil, ""},
		{"undeclared entity", "application/xml", `<a>&nbsp;</a>`, invalid, []string{"at byte 3"}, ""},
		{"invalid UTF-8", "application/xml", "<a>\xc0\xaf</a>", invalid, []string{"at byte 3"}, ""},
		{"unclosed element", "application/xml", `<a><b></b>`, invalid, []string{"at byte 10"}, ""},
		{"two roots", "application/xml", `<a/><b/>`, invalid, []string{"at byte 4"}, ""},
		{"not XML by Content-Type", "application/octet-stream", `<!DOCTYPE x><x/>`, "", nil, ""},
	})
}

// TestXMLAttributesWithoutLimit: with XML protection on but
// XML_MAX_ATTRIBUTES unset, an element may have up to the scanner's own
// bound of attributes, a name given twice is refused wherever it comes
// among them, and an element past the bound is refused with a message
// saying it is the scanner's.
func TestXMLAttributesWithoutLimit(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigB: func(c *proxy.Config) {
		c.XMLLimits = codec.XMLLimits{MaxDepth: 8}
	}})
	attributes := func(n int, dup string) string {
		var b strings.Builder
		b.WriteString("<r><e")
		for i := range n {
			fmt.Fprintf(&b, ` a%d="v"`, i)
		}
		if dup != "" {
			b.WriteString(" " + dup + `="w"`)
		}
		b.WriteString("/></r>")
		return b.String()
	}
	many := attributes(codec.MaxElementAttributes, "")
	bound := strconv.Itoa(codec.MaxElementAttributes)
	runProtectionCases(t, p, []protectionCase{
		{"as many as the scanner follows", "application/xml", many, "", nil, ""},
		{"duplicate among few", "application/xml", attributes(3, "a1"), "MTE_XML_INVALID",
			[]string{"at byte " + strconv.Itoa(len(attributes(3, ""))-len("/></r>")+1), "attribute given twice"}, ""},
		{"duplicate among many", "application/xml", attributes(codec.MaxElementAttributes-1, "a700"), "MTE_XML_INVALID",
			[]string{"at byte " + strconv.Itoa(len(attributes(codec.MaxElementAttributes-1, ""))-len("/></r>")+1), "attribute given twice"}, ""},
		{"past the scanner's bound", "application/xml", attributes(codec.MaxElementAttributes+1, ""), "MTE_XML_THREAT",
			[]string{"more than " + bound + " attributes", "at byte " + strconv.Itoa(len(many)-len("/></r>")+1)}, ""},
	})
}

// TestProtectionOffByDefault: with no limit set, nothing is scanned, so a
// relay upgraded in place refuses nothing it relayed before.
func TestProtectionOffByDefault(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{})
	runProtectionCases(t, p, []protectionCase{
		{"invalid JSON", "application/json", `[1,2,`, "", nil, ""},
		{"DOCTYPE", "application/xml", `<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>`, "", nil, ""},
	})
}

// TestResponseProtection: with JSON_RESPONSES the outbound relay refuses an
// upstream's response that breaks its limits with 502, and relays one
// within them.
func TestResponseProtection(t *testing.T) {
	t.Parallel()
	p := relaytest.NewPair(t, relaytest.Options{ConfigA: func(c *proxy.Config) {
		c.JSONLimits = codec.JSONLimits{MaxDepth: 2}
		c.JSONResponses = true
	}})
	answer := `{"a":{"b":1}}`
	p.Upstream.Handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	})
	if r := do(t, p.Request(t, "GET", "/", nil)); r.status != http.StatusOK || string(r.body) != answer {
		t.Fatalf("within limits: app got %d %s %q", r.status, relayCode(r), r.body)
	}
	answer = `{"a":{"b":[1]}}`
	r := do(t, p.Request(t, "GET", "/", nil))
	if r.status != http.StatusBadGateway || relayCode(r) != "MTE_RESPONSE_THREAT" ||
		!strings.Contains(string(r.body), "JSON_MAX_DEPTH=2 at byte 10") {
		t.Fatalf("too deep: app got %d %s %q", r.status, relayCode(r), r.body)
	}
	answer = `{"a":`
	if r := do(t, p.Request(t, "GET", "/", nil)); r.status != http.StatusBadGateway || relayCode(r) != "MTE_RESPONSE_INVALID" {
		t.Fatalf("malformed: app got %d %s %q", r.status, relayCode(r), r.body)
	}
}
