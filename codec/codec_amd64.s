//go:build amd64 && gc && !purego

#include "textflag.h"

// One bit per byte from a comparison of the two 32-byte halves of a block:
// low half in bits 0-31, high half in bits 32-63, stored at off(DI).
#define STORE_MASK(lo, hi, off) \
	VPMOVMSKB lo, AX \
	VPMOVMSKB hi, BX \
	SHLQ      $32, BX \
	ORQ       BX, AX \
	MOVQ      AX, off(DI)

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

// func classifyAVX2(dst []blockMasks, src []byte)
// Fills one blockMasks (48 bytes: quote, backslash, op, space, control,
// nonASCII) per 64-byte block of src.
TEXT ·classifyAVX2(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $6, CX
	JZ   done

	MOVQ $0x22, AX
	MOVQ AX, X15
	VPBROADCASTB X15, Y15 // '"'
	MOVQ $0x5c, AX
	MOVQ AX, X14
	VPBROADCASTB X14, Y14 // '\\'
	MOVQ $0x20, AX
	MOVQ AX, X13
	VPBROADCASTB X13, Y13 // the bit that folds '[' onto '{' and ']' onto '}'
	VMOVDQU spaceTable<>(SB), Y12
	VMOVDQU opTable<>(SB), Y11
	MOVQ $0x1f, AX
	MOVQ AX, X5
	VPBROADCASTB X5, Y5   // the largest control byte

loop:
	VMOVDQU (SI), Y0
	VMOVDQU 32(SI), Y1

	VPCMPEQB Y15, Y0, Y2
	VPCMPEQB Y15, Y1, Y3
	STORE_MASK(Y2, Y3, 0)

	VPCMPEQB Y14, Y0, Y2
	VPCMPEQB Y14, Y1, Y3
	STORE_MASK(Y2, Y3, 8)

	// control: the bytes that min(b, 0x1f) leaves as they are
	VPMINUB  Y5, Y0, Y6
	VPCMPEQB Y6, Y0, Y6
	VPMINUB  Y5, Y1, Y7
	VPCMPEQB Y7, Y1, Y7
	STORE_MASK(Y6, Y7, 32)

	VPOR     Y13, Y0, Y2
	VPSHUFB  Y0, Y11, Y4
	VPCMPEQB Y4, Y2, Y2
	VPANDN   Y2, Y6, Y2
	VPOR     Y13, Y1, Y3
	VPSHUFB  Y1, Y11, Y4
	VPCMPEQB Y4, Y3, Y3
	VPANDN   Y3, Y7, Y3
	STORE_MASK(Y2, Y3, 16)

	VPSHUFB  Y0, Y12, Y2
	VPCMPEQB Y2, Y0, Y2
	VPSHUFB  Y1, Y12, Y3
	VPCMPEQB Y3, Y1, Y3
	STORE_MASK(Y2, Y3, 24)

	STORE_MASK(Y0, Y1, 40)

	ADDQ $64, SI
	ADDQ $48, DI
	DECQ CX
	JNZ  loop

	VZEROUPPER

done:
	RET
