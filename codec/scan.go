package codec

// Threat protection for message bodies: one pass over a JSON or XML body
// that checks it is well-formed and within configured limits, the way API
// gateways' JSON/XML threat-protection policies do. The scanners allocate
// nothing and never recurse: nesting is a counter and per-level state lives
// in fixed arrays of MaxNesting entries, so a hostile body costs time linear
// in its length and a bounded amount of stack.

// MaxNesting is the deepest nesting either scanner follows, whatever the
// configured depth limit: a body nested deeper is refused as DepthExceeded
// with Limit MaxNesting.
const MaxNesting = 1024

// MaxElementAttributes is the most attributes of one element ScanXML
// follows, whatever the configured limit: finding a name given twice
// without allocating needs a table of fixed size. An element with more is
// refused as AttributesExceeded with Limit MaxElementAttributes.
const MaxElementAttributes = 1024

// Verdict is what a scan concluded.
type Verdict uint8

const (
	Accepted Verdict = iota
	Malformed
	DoctypeRefused // XML only: a DOCTYPE, which could declare entities
	DepthExceeded
	ArrayElementsExceeded
	ObjectEntriesExceeded
	NameLengthExceeded
	StringLengthExceeded
	ChildrenExceeded
	AttributesExceeded
	TextLengthExceeded
	AttributeLengthExceeded
)

var verdictNames = [...]string{
	Accepted:                "accepted",
	Malformed:               "malformed",
	DoctypeRefused:          "DOCTYPE refused",
	DepthExceeded:           "depth",
	ArrayElementsExceeded:   "array elements",
	ObjectEntriesExceeded:   "object entries",
	NameLengthExceeded:      "name length",
	StringLengthExceeded:    "string length",
	ChildrenExceeded:        "children",
	AttributesExceeded:      "attributes",
	TextLengthExceeded:      "text length",
	AttributeLengthExceeded: "attribute length",
}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown verdict"
}

// JSONLimits are the limits ScanJSON enforces; 0 means no limit.
type JSONLimits struct {
	MaxDepth         int // nesting of arrays and objects; the top-level container is depth 1
	MaxArrayElements int // elements of one array
	MaxObjectEntries int // entries of one object
	MaxNameLength    int // an entry's name, in bytes after unescaping
	MaxStringLength  int // a string value, in bytes after unescaping
}

// Enabled reports whether any limit is set.
func (l JSONLimits) Enabled() bool { return l != JSONLimits{} }

// XMLLimits are the limits ScanXML enforces; 0 means no limit.
type XMLLimits struct {
	MaxDepth           int // nesting of elements; the root is depth 1
	MaxChildren        int // child nodes of one element: elements, non-blank text runs, CDATA sections, comments, PIs
	MaxAttributes      int // attributes of one element
	MaxNameLength      int // element and attribute names, in bytes
	MaxTextLength      int // one text run or CDATA section, in bytes as sent
	MaxAttributeLength int // one attribute value, in bytes as sent
}

// Enabled reports whether any limit is set.
func (l XMLLimits) Enabled() bool { return l != XMLLimits{} }

// ScanResult is the outcome of a scan. For a refused body, Offset is the byte
// offset of the first violation (the start of the string, container,
// element or token that broke a limit; the first byte that cannot continue a
// well-formed document, or the body's length when it ends too early), Limit
// is the value of the limit broken and Reason says what was malformed. The
// counts are the largest seen before the scan stopped.
type ScanResult struct {
	Verdict Verdict
	Offset  int
	Limit   int
	Reason  string // static text, set for Malformed and DoctypeRefused

	Depth           int // deepest nesting
	ArrayElements   int // most elements of one array (JSON)
	ObjectEntries   int // most entries of one object (JSON)
	Children        int // most child nodes of one element (XML)
	Attributes      int // most attributes of one element (XML)
	NameLength      int // longest entry name (JSON), element or attribute name (XML)
	StringLength    int // longest string value (JSON), text run or CDATA section (XML)
	AttributeLength int // longest attribute value (XML)
}

// MaxScanLen is the largest body either scanner reads: per-level counts are
// 32-bit. A longer body is refused as Malformed at offset MaxScanLen.
const MaxScanLen = 1<<31 - 1

// effective turns "0 = no limit" into a bound that comparisons can use.
func effective(limit int) int {
	if limit <= 0 {
		return int(^uint(0) >> 1)
	}
	return limit
}
