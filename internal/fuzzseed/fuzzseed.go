// Package fuzzseed writes seed corpus files for Go fuzz targets, in the
// `go test fuzz v1` format that `go test` reads from testdata/fuzz. It is
// test support: the packages' seed generators (run by hand with
// PQRELAY_WRITE_FUZZ_SEEDS=1) share it.
package fuzzseed

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Write writes one corpus file at path holding args, which may be []byte,
// uint8 or bool values.
func Write(t testing.TB, path string, args ...any) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case uint8:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		default:
			t.Fatalf("fuzzseed: unsupported %T", a)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
