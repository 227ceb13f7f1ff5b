package proxy

// Message threat protection (JSON_MAX_*, XML_MAX_*): the inbound relay
// scans request bodies whose Content-Type is JSON or XML after the frame
// opened and before anything reaches the upstream, and answers a refused
// body with a sealed 400; with JSON_RESPONSES or XML_RESPONSES the outbound
// relay scans the responses it opened the same way and answers 502. The
// scanners are codec.ScanJSON and codec.ScanXML; accepting a body allocates
// nothing, refusing one builds its message.

import (
	"bytes"
	"strconv"

	"github.com/pqrelay/pqrelay/codec"
)

// protection is one direction's limits; the zero value checks nothing.
type protection struct {
	json codec.JSONLimits // zero: JSON bodies pass unscanned
	xml  codec.XMLLimits  // zero: XML bodies pass unscanned
}

// Body kinds by Content-Type, as bits so that a message with several
// Content-Type fields is scanned as everything any of them claims.
const (
	kindJSON = 1 << iota
	kindXML
)

var (
	strApplication = []byte("application")
	strText        = []byte("text")
	strJSON        = []byte("json")
	strXML         = []byte("xml")
	strPlusJSON    = []byte("+json")
	strPlusXML     = []byte("+xml")
)

// mediaKind classifies a Content-Type value: application/json and
// */*+json are JSON; application/xml, text/xml and */*+xml are XML.
// Parameters, surrounding whitespace and case do not matter (RFC 9110
// §8.3.1).
func mediaKind(v []byte) int {
	if i := bytes.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = bytes.TrimSpace(v)
	slash := bytes.IndexByte(v, '/')
	if slash <= 0 {
		return 0
	}
	typ, sub := v[:slash], v[slash+1:]
	switch {
	case bytes.EqualFold(sub, strJSON) && bytes.EqualFold(typ, strApplication), hasSuffixFold(sub, strPlusJSON):
		return kindJSON
	case bytes.EqualFold(sub, strXML) && (bytes.EqualFold(typ, strApplication) || bytes.EqualFold(typ, strText)),
		hasSuffixFold(sub, strPlusXML):
		return kindXML
	}
	return 0
}

func hasSuffixFold(b, suffix []byte) bool {
	return len(b) > len(suffix) && bytes.EqualFold(b[len(b)-len(suffix):], suffix)
}

// check scans body as the Content-Type fields among headers say. It returns
// nil when the body may pass, or the refusal: one of jsonErrors or
// xmlErrors with a message naming the limit, its value and the offset. An
// empty body passes: clients often send a JSON Content-Type on a GET or
// DELETE without a body, and there is nothing in it to parse.
func (p *protection) check(headers codec.Headers, body []byte, jsonErrors, xmlErrors *threatErrors) *relayError {
	if !p.json.Enabled() && !p.xml.Enabled() || len(body) == 0 {
		return nil
	}
	var m bodyMedia
	for name, value, ok := headers.Next(); ok; name, value, ok = headers.Next() {
		m.add(name, value)
	}
	return p.checkMedia(m, body, jsonErrors, xmlErrors)
}

// bodyMedia is what a message's Content-Type and Content-Encoding fields
// say of its body.
type bodyMedia struct {
	kinds   int
	encoded bool
}

// add reads one header field.
func (m *bodyMedia) add(name, value []byte) {
	switch {
	case bytes.EqualFold(name, strContentType):
		m.kinds |= mediaKind(value)
	case bytes.EqualFold(name, strContentEncoding):
		m.encoded = m.encoded || !bytes.EqualFold(bytes.TrimSpace(value), strIdentity)
	}
}

// checkMedia is check with the fields already read.
func (p *protection) checkMedia(m bodyMedia, body []byte, jsonErrors, xmlErrors *threatErrors) *relayError {
	if !p.json.Enabled() && !p.xml.Enabled() || len(body) == 0 {
		return nil
	}
	kinds := m.kinds
	if m.encoded {
		// The upstream would decode and parse what the scanner cannot see;
		// decoding here would invite decompression bombs. Fail closed.
		switch {
		case kinds&kindJSON != 0 && p.json.Enabled():
			return jsonErrors.encodedRefusal()
		case kinds&kindXML != 0 && p.xml.Enabled():
			return xmlErrors.encodedRefusal()
		}
	}
	if kinds&kindJSON != 0 && p.json.Enabled() {
		if r := codec.ScanJSON(body, p.json); r.Verdict != codec.Accepted {
			return jsonErrors.refusal(r, jsonLimitNames, p.json.MaxDepth, 0)
		}
	}
	if kinds&kindXML != 0 && p.xml.Enabled() {
		if r := codec.ScanXML(body, p.xml); r.Verdict != codec.Accepted {
			return xmlErrors.refusal(r, xmlLimitNames, p.xml.MaxDepth, p.xml.MaxAttributes)
		}
	}
	return nil
}

var (
	strContentType     = []byte("Content-Type")
	strContentEncoding = []byte("Content-Encoding")
	strIdentity        = []byte("identity")
)

// threatErrors are the table rows a refusal copies: one for a limit
// exceeded (or a DOCTYPE), one for a malformed body.
type threatErrors struct {
	format          string // "JSON" or "XML"
	threat, invalid *relayError
}

var (
	requestJSONErrors  = &threatErrors{"JSON", errJSONThreat, errJSONInvalid}
	requestXMLErrors   = &threatErrors{"XML", errXMLThreat, errXMLInvalid}
	responseJSONErrors = &threatErrors{"JSON", errResponseThreat, errResponseInvalid}
	responseXMLErrors  = &threatErrors{"XML", errResponseThreat, errResponseInvalid}
)

// The environment variable of each limit, by verdict.
var (
	jsonLimitNames = map[codec.Verdict]string{
		codec.DepthExceeded:         "JSON_MAX_DEPTH",
		codec.ArrayElementsExceeded: "JSON_MAX_ARRAY_ELEMENTS",
		codec.ObjectEntriesExceeded: "JSON_MAX_OBJECT_ENTRIES",
		codec.NameLengthExceeded:    "JSON_MAX_NAME_LENGTH",
		codec.StringLengthExceeded:  "JSON_MAX_STRING_LENGTH",
	}
	xmlLimitNames = map[codec.Verdict]string{
		codec.DepthExceeded:           "XML_MAX_DEPTH",
		codec.ChildrenExceeded:        "XML_MAX_CHILDREN",
		codec.AttributesExceeded:      "XML_MAX_ATTRIBUTES",
		codec.NameLengthExceeded:      "XML_MAX_NAME_LENGTH",
		codec.TextLengthExceeded:      "XML_MAX_TEXT_LENGTH",
		codec.AttributeLengthExceeded: "XML_MAX_ATTRIBUTE_LENGTH",
	}
)

// refusal is the error for scan result r: a copy of the table's row whose
// message says what was refused where, or which of the scanner's own bounds
// was met when the configured limit (maxDepth, maxAttributes) is unset or
// above it. Only refused bodies get here, so it may allocate.
func (t *threatErrors) refusal(r codec.ScanResult, names map[codec.Verdict]string, maxDepth, maxAttributes int) *relayError {
	base := t.threat
	at := " at byte " + strconv.Itoa(r.Offset)
	var msg string
	switch {
	case r.Verdict == codec.Malformed:
		base = t.invalid
		msg = t.format + " body is malformed" + at + ": " + r.Reason
	case r.Verdict == codec.DoctypeRefused:
		msg = "XML body has a DOCTYPE" + at + "; DOCTYPEs are always refused (entity expansion, external entities)"
	case r.Verdict == codec.DepthExceeded && maxDepth == 0:
		msg = t.format + " body nests deeper than " + strconv.Itoa(r.Limit) + at + ", the most the relay's scanner follows"
	case r.Verdict == codec.AttributesExceeded && r.Limit != maxAttributes:
		msg = t.format + " body has an element with more than " + strconv.Itoa(r.Limit) + " attributes" + at + ", the most the relay's scanner follows"
	default:
		msg = t.format + " body exceeds " + names[r.Verdict] + "=" + strconv.Itoa(r.Limit) + at
	}
	return newError(base.code, base.status, msg, base.side)
}

func (t *threatErrors) encodedRefusal() *relayError {
	return newError(t.invalid.code, t.invalid.status,
		t.format+" body has a Content-Encoding; the relay checks only bodies sent without one", t.invalid.side)
}
