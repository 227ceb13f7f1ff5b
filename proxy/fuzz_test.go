package proxy

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParsePeerOrigin: x-mte-upstream comes from the app. Whatever it holds,
// parsing must not panic, and an accepted value must come out as a plain
// origin that parses to itself (so allow-list checks compare like with like).
func FuzzParsePeerOrigin(f *testing.F) {
	for _, seed := range []string{
		"http://127.0.0.1:8081", "https://relay-b.example.com", "HTTPS://Relay.Example.COM:443/",
		"http://[::1]:8081", "http://u:p@h:1", "ftp://h", "http://h/path", "http://h?q", "relay:8081", "",
		"http://h:99999", "http://%zz", "http://h#f", "//h", "http:/h",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		origin, err := parsePeerOrigin(raw)
		if err != nil {
			return
		}
		again, err := parsePeerOrigin(origin)
		if err != nil || again != origin {
			t.Fatalf("%q → %q → %q, %v", raw, origin, again, err)
		}
		u, err := url.Parse(origin)
		if err != nil || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" ||
			(u.Scheme != "http" && u.Scheme != "https") || strings.ContainsAny(origin, " \r\n\t") {
			t.Fatalf("%q accepted as %q, which is not a plain origin", raw, origin)
		}
	})
}
