//go:build !amd64 || !gc || purego

package codec

// useAVX2 is false where there is no assembly; a variable so that tests can
// switch it the same way on every build.
var useAVX2 = false

func findPositionsAVX2(dst []uint64, src []byte, c *stage1Carry) { findPositionsGeneric(dst, src, c) }
