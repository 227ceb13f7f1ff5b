package codec

import (
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
)

func TestScanXML(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 100)
	cases := []struct {
		name    string
		body    string
		lim     XMLLimits
		verdict Verdict
		offset  int
		limit   int
	}{
		{"document", "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c --><a x='1' y=\"&lt;&#x41;&#65;\">t&amp;<b/><![CDATA[<&]]><?pi data?>caf\u00e9</a>\n<!-- end -->",
			XMLLimits{MaxDepth: 2, MaxChildren: 5, MaxAttributes: 2, MaxNameLength: 2, MaxTextLength: 6, MaxAttributeLength: 15}, Accepted, 0, 0},
		{"blank text does not count as a child", "<a>\n  <b/>\n  <b/>\n</a>", XMLLimits{MaxChildren: 2}, Accepted, 0, 0},
		{"end tag with space", "<a></a >", XMLLimits{}, Accepted, 0, 0},
		{"empty", "", XMLLimits{}, Malformed, 0, 0},
		{"text only", "hello", XMLLimits{}, Malformed, 0, 0},
		{"two roots", "<a/><b/>", XMLLimits{}, Malformed, 4, 0},
		{"mismatched end tag", "<a><b></a></b>", XMLLimits{}, Malformed, 8, 0},
		{"prefix end tag", "<ab></a>", XMLLimits{}, Malformed, 6, 0},
		{"unclosed", "<a><b>", XMLLimits{}, Malformed, 6, 0},
		{"attribute without quotes", "<a x=1/>", XMLLimits{}, Malformed, 5, 0},
		{"attributes without space", `<a x="1"y="2"/>`, XMLLimits{}, Malformed, 8, 0},
		{"lt in attribute", `<a x="<"/>`, XMLLimits{}, Malformed, 6, 0},
		{"undeclared entity", "<a>&foo;</a>", XMLLimits{}, Malformed, 3, 0},
		{"bad char ref", "<a>&#0;</a>", XMLLimits{}, Malformed, 3, 0},
		{"control", "<a>\x01</a>", XMLLimits{}, Malformed, 3, 0},
		{"bad utf8", "<a>\xc0\xaf</a>", XMLLimits{}, Malformed, 3, 0},
		{"double dash in comment", "<a><!-- a -- b --></a>", XMLLimits{}, Malformed, 10, 0},
		{"cdata end in text", "<a>]]></a>", XMLLimits{}, Malformed, 3, 0},
		{"late xml declaration", "<a><?xml version='1.0'?></a>", XMLLimits{}, Malformed, 3, 0},
		{"doctype", `<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`, XMLLimits{}, DoctypeRefused, 21, 0},
		{"billion laughs", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`, XMLLimits{MaxDepth: 10}, DoctypeRefused, 0, 0},
		{"xxe", `<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, XMLLimits{MaxDepth: 10}, DoctypeRefused, 0, 0},
		{"depth", "<a><b><c/></b></a>", XMLLimits{MaxDepth: 2}, DepthExceeded, 6, 2},
		{"hard cap", strings.Repeat("<a>", MaxNesting+1), XMLLimits{MaxChildren: 5}, DepthExceeded, 3 * MaxNesting, MaxNesting},
		{"children", "<a><b/>t<!--c--><?p?></a>", XMLLimits{MaxChildren: 3}, ChildrenExceeded, 16, 3},
		{"attributes", `<a x="1" y="2" z="3"/>`, XMLLimits{MaxAttributes: 2}, AttributesExceeded, 15, 2},
		{"element name", "<" + long + "/>", XMLLimits{MaxNameLength: 99}, NameLengthExceeded, 1, 99},
		{"attribute name", "<a " + long + "='1'/>", XMLLimits{MaxNameLength: 99}, NameLengthExceeded, 3, 99},
		{"text", "<a>" + long + "</a>", XMLLimits{MaxTextLength: 99}, TextLengthExceeded, 3, 99},
		{"cdata", "<a><![CDATA[" + long + "]]></a>", XMLLimits{MaxTextLength: 99}, TextLengthExceeded, 3, 99},
		{"attribute value", "<a x='" + long + "'/>", XMLLimits{MaxAttributeLength: 99}, AttributeLengthExceeded, 5, 99},
		// Unique Att Spec (XML 1.0 §3.1): the second name is the offset.
		{"duplicate attribute", `<a x="1" x="2"/>`, XMLLimits{}, Malformed, 9, 0},
		{"duplicate attribute, other quotes and spaces", "<r><a x = '1' y=\"2\"\nx='3'></a></r>", XMLLimits{MaxDepth: 5}, Malformed, 20, 0},
		{"names differing in case", `<a x="1" X="2"/>`, XMLLimits{}, Accepted, 0, 0},
		{"names differing in prefix", `<a p:x="1" q:x="2" x="3"/>`, XMLLimits{}, Accepted, 0, 0},
		{"prefix of another name", `<a xy="1" x="2" y="3"/>`, XMLLimits{}, Accepted, 0, 0},
		{"same name on two elements", `<a x="1"><b x="1"/></a>`, XMLLimits{}, Accepted, 0, 0},
		{"many attributes", manyAttributes(MaxElementAttributes, ""), XMLLimits{MaxDepth: 1}, Accepted, 0, 0},
		{"duplicate among few", manyAttributes(fewAttributes, "a5"), XMLLimits{}, Malformed, attributeOffset(fewAttributes), 0},
		{"duplicate just past few", manyAttributes(fewAttributes+1, "a0"), XMLLimits{}, Malformed, attributeOffset(fewAttributes + 1), 0},
		{"duplicate among many", manyAttributes(MaxElementAttributes-1, "a999"), XMLLimits{}, Malformed, attributeOffset(MaxElementAttributes - 1), 0},
		{"attribute hard cap", manyAttributes(MaxElementAttributes+1, ""), XMLLimits{MaxDepth: 1}, AttributesExceeded, attributeOffset(MaxElementAttributes), MaxElementAttributes},
		{"attribute limit above the hard cap", manyAttributes(MaxElementAttributes+1, ""), XMLLimits{MaxAttributes: 5000}, AttributesExceeded, attributeOffset(MaxElementAttributes), MaxElementAttributes},
		{"limit before duplicate", `<a x="1" y="2" x="3"/>`, XMLLimits{MaxAttributes: 2}, AttributesExceeded, 15, 2},
		{"attribute without value", `<a x y="1"/>`, XMLLimits{}, Malformed, 5, 0},
		{"attribute without value at the end", `<a x/>`, XMLLimits{}, Malformed, 4, 0},
		{"attribute with empty value", `<a x=""/>`, XMLLimits{}, Accepted, 0, 0},
		{"gt in attribute", `<a x=">"/>`, XMLLimits{}, Accepted, 0, 0},
		{"escaped lt in attribute", `<a x="&lt;"/>`, XMLLimits{}, Accepted, 0, 0},
		{"end tag of the parent", "<a><b>t</a>", XMLLimits{}, Malformed, 9, 0},
		{"end tag longer than its start tag", "<a></ab>", XMLLimits{}, Malformed, 5, 0},
		{"prefixed names", `<p:a q:x="1" xmlns:p="u"></p:a>`, XMLLimits{}, Accepted, 0, 0},
		{"two colons in a name", "<::/>", XMLLimits{}, Malformed, 2, 0},
		{"two prefixes", "<a:b:c/>", XMLLimits{}, Malformed, 4, 0},
		{"empty prefix", "<:a/>", XMLLimits{}, Malformed, 1, 0},
		{"empty local part", `<a b:="1"/>`, XMLLimits{}, Malformed, 4, 0},
	}
	for _, c := range cases {
		got := ScanXML([]byte(c.body), c.lim)
		if got.Verdict != c.verdict || got.Verdict != Accepted && (got.Offset != c.offset || got.Limit != c.limit) {
			t.Errorf("%s: ScanXML(%.80q) = %v at %d (limit %d, %q); want %v at %d (limit %d)",
				c.name, c.body, got.Verdict, got.Offset, got.Limit, got.Reason, c.verdict, c.offset, c.limit)
		}
		if c.verdict == Accepted && !xmlWellFormed([]byte(c.body)) {
			t.Errorf("%s: encoding/xml does not accept the case", c.name)
		}
	}
}

// manyAttributes is an empty element with n attributes a0, a1, … in that
// order, and then one more named dup unless dup is empty.
func manyAttributes(n int, dup string) string {
	var b strings.Builder
	b.WriteString("<e")
	for i := range n {
		b.WriteString(" a" + strconv.Itoa(i) + `="v"`)
	}
	if dup != "" {
		b.WriteString(" " + dup + `="v"`)
	}
	b.WriteString("/>")
	return b.String()
}

// attributeOffset is where manyAttributes puts the name of attribute i
// (from 0).
func attributeOffset(i int) int {
	p := 2
	for j := range i {
		p += len(` a` + strconv.Itoa(j) + `="v"`)
	}
	return p + 1
}

// xmlWellFormed: encoding/xml's strict decoder reads the whole document.
func xmlWellFormed(b []byte) bool {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		if _, err := d.Token(); err != nil {
			return err.Error() == "EOF"
		}
	}
}
