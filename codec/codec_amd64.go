//go:build amd64 && gc && !purego

package codec

import "github.com/klauspost/cpuid/v2"

// useAVX2 selects the AVX2 kernels (which also multiply carry-less, CLMUL); detected
// once, switched off by tests to run the pure-Go twins.
var useAVX2 = cpuid.CPU.Supports(cpuid.AVX2, cpuid.CLMUL)

//go:noescape
func findPositionsAVX2(dst []uint64, src []byte, c *stage1Carry)
