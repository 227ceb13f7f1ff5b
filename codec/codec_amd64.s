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
	VPBROADCASTB X13, Y13 // ' ', and the bit that folds '[' onto '{' and ']' onto '}'
	MOVQ $0x7b, AX
	MOVQ AX, X12
	VPBROADCASTB X12, Y12 // '{'
	MOVQ $0x7d, AX
	MOVQ AX, X11
	VPBROADCASTB X11, Y11 // '}'
	MOVQ $0x3a, AX
	MOVQ AX, X10
	VPBROADCASTB X10, Y10 // ':'
	MOVQ $0x2c, AX
	MOVQ AX, X9
	VPBROADCASTB X9, Y9   // ','
	MOVQ $0x09, AX
	MOVQ AX, X8
	VPBROADCASTB X8, Y8   // '\t'
	MOVQ $0x0a, AX
	MOVQ AX, X7
	VPBROADCASTB X7, Y7   // '\n'
	MOVQ $0x0d, AX
	MOVQ AX, X6
	VPBROADCASTB X6, Y6   // '\r'
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

	VPOR     Y13, Y0, Y2
	VPCMPEQB Y12, Y2, Y3
	VPCMPEQB Y11, Y2, Y2
	VPOR     Y3, Y2, Y2
	VPCMPEQB Y10, Y0, Y3
	VPOR     Y3, Y2, Y2
	VPCMPEQB Y9, Y0, Y3
	VPOR     Y3, Y2, Y2
	VPOR     Y13, Y1, Y3
	VPCMPEQB Y12, Y3, Y4
	VPCMPEQB Y11, Y3, Y3
	VPOR     Y4, Y3, Y3
	VPCMPEQB Y10, Y1, Y4
	VPOR     Y4, Y3, Y3
	VPCMPEQB Y9, Y1, Y4
	VPOR     Y4, Y3, Y3
	STORE_MASK(Y2, Y3, 16)

	VPCMPEQB Y13, Y0, Y2
	VPCMPEQB Y8, Y0, Y3
	VPOR     Y3, Y2, Y2
	VPCMPEQB Y7, Y0, Y3
	VPOR     Y3, Y2, Y2
	VPCMPEQB Y6, Y0, Y3
	VPOR     Y3, Y2, Y2
	VPCMPEQB Y13, Y1, Y3
	VPCMPEQB Y8, Y1, Y4
	VPOR     Y4, Y3, Y3
	VPCMPEQB Y7, Y1, Y4
	VPOR     Y4, Y3, Y3
	VPCMPEQB Y6, Y1, Y4
	VPOR     Y4, Y3, Y3
	STORE_MASK(Y2, Y3, 24)

	VPMINUB  Y5, Y0, Y2
	VPCMPEQB Y2, Y0, Y2
	VPMINUB  Y5, Y1, Y3
	VPCMPEQB Y3, Y1, Y3
	STORE_MASK(Y2, Y3, 32)

	STORE_MASK(Y0, Y1, 40)

	ADDQ $64, SI
	ADDQ $48, DI
	DECQ CX
	JNZ  loop

	VZEROUPPER

done:
	RET
