// Shared by the parts of the conv-net module (cnn.c): SIMD shorthands.
// Layout: NHWC float32 activations; conv kernels [kh, kw, cin, cout] and
// dense kernels [in, out], as TF.js stores them. Every pointer is a byte
// offset into the one (shared) memory; the caller owns all buffers.
#pragma once
#include <wasm_simd128.h>

#define EXPORT __attribute__((visibility("default")))

typedef v128_t vf;
#define LD(p) wasm_v128_load(p)
#define ST(p, v) wasm_v128_store((p), (v))
#define SPLAT(x) wasm_f32x4_splat(x)
#define ADD(a, b) wasm_f32x4_add((a), (b))
#define SUB(a, b) wasm_f32x4_sub((a), (b))
#define MUL(a, b) wasm_f32x4_mul((a), (b))
#define MAXZ(a) wasm_f32x4_max((a), wasm_f32x4_splat(0.0f))
// acc + a * b. Built with CNN_RELAXED (the relaxed-SIMD variant of the
// module), one relaxed multiply-add: fused where the CPU has FMA, so twice
// the multiply-adds per cycle; rounded once instead of twice.
#ifdef CNN_RELAXED
#define FMA(acc, a, b) __builtin_wasm_relaxed_madd_f32x4((a), (b), (acc))
#else
#define FMA(acc, a, b) ADD((acc), MUL((a), (b)))
#endif
