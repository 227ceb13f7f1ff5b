//go:build amd64 && gc && !purego

#include "textflag.h"

// MASK sets the GPR dst to one bit per byte from a comparison of the two
// 32-byte halves of a block: the low half in bits 0-31, the high in 32-63.
// It clobbers DX.
#define MASK(lo, hi, dst) \
	VPMOVMSKB lo, dst \
	VPMOVMSKB hi, DX \
	SHLQ      $32, DX \
	ORQ       DX, dst

// Lookup tables for VPSHUFB, which picks a table byte by the low nibble of
// each input byte (0 for inputs with the high bit set), the same 16 bytes
// in both lanes. A byte is whitespace when it equals its entry in
// spaceTable; with 0x20 set (folding '[' onto '{' and ']' onto '}') a byte
// is one of {}[]:, when it equals its entry in opTable and is no control
// byte (0x0c and 0x1a fold onto ',' and ':'). Unused entries are 0x80,
// which no byte below 0x80 equals.
DATA spaceTable<>+0(SB)/8, $0x8080808080808020  // ' ' at 0x0
DATA spaceTable<>+8(SB)/8, $0x80800d80800a0980  // '\t' '\n' '\r' at 0x9, 0xa, 0xd
DATA spaceTable<>+16(SB)/8, $0x8080808080808020
DATA spaceTable<>+24(SB)/8, $0x80800d80800a0980
GLOBL spaceTable<>(SB), RODATA|NOPTR, $32

DATA opTable<>+0(SB)/8, $0x8080808080808080
DATA opTable<>+8(SB)/8, $0x80807d2c7b3a8080 // ':' '{' ',' '}' at 0xa-0xd
DATA opTable<>+16(SB)/8, $0x8080808080808080
DATA opTable<>+24(SB)/8, $0x80807d2c7b3a8080
GLOBL opTable<>(SB), RODATA|NOPTR, $32

// func findPositionsAVX2(dst []uint64, src []byte, c *stage1Carry)
// One uint64 of positions per 64-byte block of src; codec_generic.go's
// stage1Carry.positions is the same arithmetic in Go. c (R8) holds the
// carries: nextEscaped at 0, inString at 8, prevScalar at 16, prevNonASCII
// at 24.
TEXT ·findPositionsAVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	MOVQ c+48(FP), R8
	SHRQ $6, CX
	JZ   done

	MOVQ $0x22, AX
	VMOVQ AX, X15
	VPBROADCASTB X15, Y15 // '"'
	MOVQ $0x5c, AX
	VMOVQ AX, X14
	VPBROADCASTB X14, Y14 // '\\'
	MOVQ $0x20, AX
	VMOVQ AX, X13
	VPBROADCASTB X13, Y13 // the bit that folds '[' onto '{' and ']' onto '}'
	VMOVDQU spaceTable<>(SB), Y12
	VMOVDQU opTable<>(SB), Y11
	MOVQ $0x1f, AX
	VMOVQ AX, X5
	VPBROADCASTB X5, Y5   // the largest control byte
	VPCMPEQB X10, X10, X10 // all ones: carry-less multiplication by it is a prefix XOR

loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1
	VPCMPEQB Y15, Y0, Y2 // quotes
	VPCMPEQB Y15, Y1, Y3
	VPCMPEQB Y14, Y0, Y8 // backslashes
	VPCMPEQB Y14, Y1, Y9
	VPMINUB  Y5, Y0, Y6  // control: the bytes that min(b, 0x1f) leaves as they are
	VPCMPEQB Y6, Y0, Y6
	VPMINUB  Y5, Y1, Y7
	VPCMPEQB Y7, Y1, Y7

	// A block inside a long string, with nothing in it that ends or
	// escapes or needs a check, has no position and changes no carry but
	// the non-ASCII one (the twin's fast path too).
	CMPQ 8(R8), $0
	JEQ  full
	CMPQ 0(R8), $0
	JNE  full
	VPOR      Y0, Y1, Y4
	VPMOVMSKB Y4, AX
	TESTL     AX, AX
	JNZ       full
	VPOR  Y2, Y3, Y4
	VPOR  Y8, Y4, Y4
	VPOR  Y9, Y4, Y4
	VPOR  Y6, Y4, Y4
	VPOR  Y7, Y4, Y4
	VPTEST Y4, Y4
	JNZ   full
	MOVQ  $0, 24(R8)
	MOVQ  $0, (DI)
	JMP   next

full:
	// Escapes (R11 escape, R13 escaped) from the backslashes (BX).
	MASK(Y8, Y9, BX)
	MOVQ  0(R8), R9          // nextEscaped
	MOVQ  R9, R10
	NOTQ  R10
	ANDQ  BX, R10            // potential = backslash &^ nextEscaped
	MOVQ  $0xaaaaaaaaaaaaaaaa, R12
	MOVQ  R10, R11
	SHLQ  $1, R11
	ORQ   R12, R11
	SUBQ  R10, R11
	XORQ  R12, R11           // code
	MOVQ  BX, R13
	ORQ   R9, R13
	XORQ  R11, R13           // escaped = code ^ (backslash | nextEscaped)
	ANDQ  BX, R11            // escape = code & backslash
	MOVQ  R11, R9
	SHRQ  $63, R9
	MOVQ  R9, 0(R8)

	// Unescaped quotes (AX) and the inside of strings (R10).
	MASK(Y2, Y3, AX)
	NOTQ  R13
	ANDQ  R13, AX
	VMOVQ AX, X8
	VPCLMULQDQ $0x00, X10, X8, X8
	VMOVQ X8, R10
	XORQ  8(R8), R10         // inString
	MOVQ  R10, R9
	SARQ  $63, R9
	MOVQ  R9, 8(R8)

	// outside (R9) = ^(inString | quote)
	MOVQ  R10, R9
	ORQ   AX, R9
	NOTQ  R9

	// op (BX) outside strings
	VPOR     Y13, Y0, Y2
	VPSHUFB  Y0, Y11, Y4
	VPCMPEQB Y4, Y2, Y2
	VPANDN   Y2, Y6, Y2
	VPOR     Y13, Y1, Y3
	VPSHUFB  Y1, Y11, Y4
	VPCMPEQB Y4, Y3, Y3
	VPANDN   Y3, Y7, Y3
	MASK(Y2, Y3, BX)
	ANDQ  R9, BX

	// scalar (R13) = outside &^ (op | space); its starts (R9)
	VPSHUFB  Y0, Y12, Y2
	VPCMPEQB Y2, Y0, Y2
	VPSHUFB  Y1, Y12, Y3
	VPCMPEQB Y3, Y1, Y3
	MASK(Y2, Y3, R13)
	ORQ   BX, R13
	NOTQ  R13
	ANDQ  R9, R13
	MOVQ  R13, R9
	SHLQ  $1, R9
	ORQ   16(R8), R9
	NOTQ  R9
	ANDQ  R13, R9            // scalarStart
	SHRQ  $63, R13
	MOVQ  R13, 16(R8)

	// non-ASCII inside strings (R13) and the starts of its runs (R12)
	VPMOVMSKB Y0, R13
	VPMOVMSKB Y1, DX
	SHLQ  $32, DX
	ORQ   DX, R13
	ANDQ  R10, R13
	MOVQ  R13, R12
	SHLQ  $1, R12
	ORQ   24(R8), R12
	NOTQ  R12
	ANDQ  R13, R12           // nonASCIIStart
	SHRQ  $63, R13
	MOVQ  R13, 24(R8)

	// inside strings: escapes, control bytes, non-ASCII starts
	MASK(Y6, Y7, R13)
	ORQ   R13, R11
	ORQ   R12, R11
	ANDQ  R10, R11

	ORQ   AX, BX
	ORQ   R9, BX
	ORQ   R11, BX
	MOVQ  BX, (DI)

next:
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ  loop

	VZEROUPPER

done:
	RET
