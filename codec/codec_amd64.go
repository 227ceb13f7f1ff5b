//go:build amd64 && gc && !purego

package codec

import "github.com/klauspost/cpuid/v2"

// useAVX2 selects the AVX2 kernels; detected once, switched off by tests to
// run the pure-Go twins.
var useAVX2 = cpuid.CPU.Supports(cpuid.AVX2)

//go:noescape
func classifyAVX2(dst []blockMasks, src []byte)
