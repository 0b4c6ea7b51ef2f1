// wasm: relaxed-simd
// Dense-layer training kernels for multilayer perceptrons, compiled to
// WebAssembly with 128-bit SIMD (scripts/build-simd.sh; the binary is
// embedded in mlp-wasm.gen.ts). Row-major float32 throughout; the caller owns
// all memory (one imported WebAssembly.Memory) and passes byte offsets.
//
// The kernels skip zero inputs: a zero pixel or a ReLU-silenced unit adds
// nothing to a layer's output or to any weight gradient, and a silenced unit
// passes no gradient down. On MNIST-like inputs (~80% zero pixels) and ReLU
// hidden layers (~50% zero) that removes most of the multiply-adds while the
// results stay those of the dense computation.
//
// Built twice (scripts/build-simd.sh): plain SIMD, and relaxed SIMD with
// CNN_RELAXED defined, where FMA is one fused multiply-add (the loader,
// mlp-kernels.ts, takes that build where the engine compiles it).
#include <wasm_simd128.h>

// The conv-net module (cnn.c) includes this file after cnn/common.h, which
// defines the same shorthands: keep its definitions.
#ifndef EXPORT
#define EXPORT __attribute__((visibility("default")))

typedef v128_t vf;
#define LD(p) wasm_v128_load(p)
#define ST(p, v) wasm_v128_store((p), (v))
#define SPLAT(x) wasm_f32x4_splat(x)
#define ADD(a, b) wasm_f32x4_add((a), (b))
#define MUL(a, b) wasm_f32x4_mul((a), (b))
#define MAXZ(a) wasm_f32x4_max((a), wasm_f32x4_splat(0.0f))
// acc + a * b: one relaxed multiply-add in the relaxed build (fused where the
// CPU has FMA: rounded once instead of twice, twice the multiply-adds per cycle).
#ifdef CNN_RELAXED
#define FMA(acc, a, b) __builtin_wasm_relaxed_madd_f32x4((a), (b), (acc))
#else
#define FMA(acc, a, b) ADD((acc), MUL((a), (b)))
#endif
#endif

// o[0 .. n) = act(init + sum over k < nz of val[k] * src[idx[k] * n + (0 .. n)]):
// a weighted sum of nz rows of a row-major matrix with n columns, 32 columns
// at a time in registers. init may be null (zeros); relu != 0 clamps at zero.
static void weighted_rows(float *o, const float *src, int n, const int *idx, const float *val, int nz,
                          const float *init, int relu) {
  int j = 0;
  for (; j + 32 <= n; j += 32) {
    vf a0, a1, a2, a3, a4, a5, a6, a7;
    if (init) {
      a0 = LD(init + j); a1 = LD(init + j + 4); a2 = LD(init + j + 8); a3 = LD(init + j + 12);
      a4 = LD(init + j + 16); a5 = LD(init + j + 20); a6 = LD(init + j + 24); a7 = LD(init + j + 28);
    } else {
      a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = SPLAT(0.0f);
    }
    for (int k = 0; k < nz; k++) {
      const float *r = src + (long)idx[k] * n + j;
      vf s = SPLAT(val[k]);
      a0 = FMA(a0, s, LD(r)); a1 = FMA(a1, s, LD(r + 4));
      a2 = FMA(a2, s, LD(r + 8)); a3 = FMA(a3, s, LD(r + 12));
      a4 = FMA(a4, s, LD(r + 16)); a5 = FMA(a5, s, LD(r + 20));
      a6 = FMA(a6, s, LD(r + 24)); a7 = FMA(a7, s, LD(r + 28));
    }
    if (relu) {
      a0 = MAXZ(a0); a1 = MAXZ(a1); a2 = MAXZ(a2); a3 = MAXZ(a3);
      a4 = MAXZ(a4); a5 = MAXZ(a5); a6 = MAXZ(a6); a7 = MAXZ(a7);
    }
    ST(o + j, a0); ST(o + j + 4, a1); ST(o + j + 8, a2); ST(o + j + 12, a3);
    ST(o + j + 16, a4); ST(o + j + 20, a5); ST(o + j + 24, a6); ST(o + j + 28, a7);
  }
  for (; j + 4 <= n; j += 4) {
    vf a0 = init ? LD(init + j) : SPLAT(0.0f);
    for (int k = 0; k < nz; k++) a0 = FMA(a0, SPLAT(val[k]), LD(src + (long)idx[k] * n + j));
    ST(o + j, relu ? MAXZ(a0) : a0);
  }
  for (; j < n; j++) {
    float a = init ? init[j] : 0.0f;
    for (int k = 0; k < nz; k++) a += val[k] * src[(long)idx[k] * n + j];
    o[j] = relu && a < 0.0f ? 0.0f : a;
  }
}

// The positions (idx) and values (val) of the nonzero entries x[q * stride], q < n.
static int nonzeros(const float *x, int n, long stride, int *idx, float *val) {
  // Branch-free: ReLU outputs are zero at random, which a branch mispredicts half the time.
  int nz = 0;
  for (int q = 0; q < n; q++) {
    float v = x[q * stride];
    idx[nz] = q;
    val[nz] = v;
    nz += v != 0.0f;
  }
  return nz;
}

// The register-blocked product behind the dense kernels on inputs with few
// zeros: C[m, :] = act(init + sum over k of A(m, k) * B[k, :]) for the four
// rows m < 4, A(m, k) = A[m * sm + k * sk]; k runs over ks[0 .. nk) (the k
// where some of the four A values is nonzero), or 0 .. nk - 1 if ks is null.
// Each load of a B row is used by four rows of C and each A value by eight
// columns, with 4 x 8 sums in registers (V8 has 16 vector registers on x64).
// B may be taken in panels of columns that stay in cache (mlp_block_rows).
static inline __attribute__((always_inline)) void mlp_rows4(float *C, long ldc, const float *A, long sm, long sk,
                                                      const int *ks, int nk, const float *B, long ldb, int j0,
                                                      int j1, const float *init, int relu) {
  const float *a0 = A, *a1 = A + sm, *a2 = A + 2 * sm, *a3 = A + 3 * sm;
  float *c0 = C, *c1 = C + ldc, *c2 = C + 2 * ldc, *c3 = C + 3 * ldc;
  int j = j0;
  for (; j + 8 <= j1; j += 8) {
    vf p0, p1, q0, q1, r0, r1, s0, s1;
    if (init) {
      p0 = q0 = r0 = s0 = LD(init + j);
      p1 = q1 = r1 = s1 = LD(init + j + 4);
    } else {
      p0 = p1 = q0 = q1 = r0 = r1 = s0 = s1 = SPLAT(0.0f);
    }
    for (int t = 0; t < nk; t++) {
      long k = ks ? ks[t] : t;
      const float *b = B + k * ldb + j;
      vf b0 = LD(b), b1 = LD(b + 4);
      long o = k * sk;
      vf x = wasm_v128_load32_splat(a0 + o);
      p0 = FMA(p0, x, b0); p1 = FMA(p1, x, b1);
      x = wasm_v128_load32_splat(a1 + o);
      q0 = FMA(q0, x, b0); q1 = FMA(q1, x, b1);
      x = wasm_v128_load32_splat(a2 + o);
      r0 = FMA(r0, x, b0); r1 = FMA(r1, x, b1);
      x = wasm_v128_load32_splat(a3 + o);
      s0 = FMA(s0, x, b0); s1 = FMA(s1, x, b1);
    }
    if (relu) {
      p0 = MAXZ(p0); p1 = MAXZ(p1); q0 = MAXZ(q0); q1 = MAXZ(q1);
      r0 = MAXZ(r0); r1 = MAXZ(r1); s0 = MAXZ(s0); s1 = MAXZ(s1);
    }
    ST(c0 + j, p0); ST(c0 + j + 4, p1); ST(c1 + j, q0); ST(c1 + j + 4, q1);
    ST(c2 + j, r0); ST(c2 + j + 4, r1); ST(c3 + j, s0); ST(c3 + j + 4, s1);
  }
  for (; j + 4 <= j1; j += 4) {
    vf p = init ? LD(init + j) : SPLAT(0.0f), q = p, r = p, s = p;
    for (int t = 0; t < nk; t++) {
      long k = ks ? ks[t] : t;
      vf b0 = LD(B + k * ldb + j);
      long o = k * sk;
      p = FMA(p, wasm_v128_load32_splat(a0 + o), b0);
      q = FMA(q, wasm_v128_load32_splat(a1 + o), b0);
      r = FMA(r, wasm_v128_load32_splat(a2 + o), b0);
      s = FMA(s, wasm_v128_load32_splat(a3 + o), b0);
    }
    if (relu) {
      p = MAXZ(p); q = MAXZ(q); r = MAXZ(r); s = MAXZ(s);
    }
    ST(c0 + j, p); ST(c1 + j, q); ST(c2 + j, r); ST(c3 + j, s);
  }
  for (; j < j1; j++) {
    float p = init ? init[j] : 0.0f, q = p, r = p, s = p;
    for (int t = 0; t < nk; t++) {
      long k = ks ? ks[t] : t;
      float b0 = B[k * ldb + j];
      long o = k * sk;
      p += a0[o] * b0; q += a1[o] * b0; r += a2[o] * b0; s += a3[o] * b0;
    }
    c0[j] = relu && p < 0.0f ? 0.0f : p; c1[j] = relu && q < 0.0f ? 0.0f : q;
    c2[j] = relu && r < 0.0f ? 0.0f : r; c3[j] = relu && s < 0.0f ? 0.0f : s;
  }
}

// The k < K where one of A(m, k), m < 4, is nonzero, into ks; returns their count.
static int mlp_nonzero_cols4(const float *A, long sm, long sk, int K, int *ks) {
  int nk = 0;
  const float *a0 = A, *a1 = A + sm, *a2 = A + 2 * sm, *a3 = A + 3 * sm;
  for (int k = 0; k < K; k++) {
    long o = k * sk;
    ks[nk] = k;
    nk += (a0[o] != 0.0f) | (a1[o] != 0.0f) | (a2[o] != 0.0f) | (a3[o] != 0.0f);
  }
  return nk;
}

// Whether four rows at a time (mlp_block_rows) beat one row at a time
// (weighted_rows) for A(m, k) = A[m * sm + k * sk], m < M, k < K: one row at a
// time multiplies only the nonzero A(m, k); four at a time, every A(m, k) in a
// k where one of the four rows is nonzero, but each multiply-add costs less.
// DENSE_BLOCKED_COST is the cost of one of those against one of these. On
// LeNet-300-100's layers (scripts/bench-dense-kernels.ts and per-kernel
// timings) it measured 0.45 to 0.70 (0.58 to 0.63 on dense inputs, 0.64 to 0.70
// on hidden layers after a ReLU); at 0.6 a layer goes four rows at a time once
// about 58% of its inputs are nonzero (at random), and ReLU outputs (~50%
// zero) and MNIST pixels (~80% zero) stay one row at a time. Fused
// multiply-adds (the relaxed build) speed the blocked path up more than the
// row path (LeNet's first layer without zeros 1.3x against 1.0-1.1x): at 0.4,
// LeNet's hidden layers after a ReLU go four rows at a time, their forward
// and weight gradient 1.2x faster than one row at a time (0.20 -> 0.16 ms and
// 0.16 -> 0.13 ms on 300 -> 100), the whole step's kernels 1.04x.
#ifdef CNN_RELAXED
#define DENSE_BLOCKED_COST 0.4f
#else
#define DENSE_BLOCKED_COST 0.6f
#endif
// Returns 0 (one row at a time), 1 (four rows at a time) or 2 (four at a
// time, and no k of any four rows all zero: mlp_block_rows need not look).
static int mlp_blocked_wins(const float *A, long sm, long sk, int M, int K) {
  if (M < 4) return 0;
  long rows = 0, blocks = 0;
  for (int m = 0; m + 4 <= M; m += 4) {
    const float *a0 = A + m * sm, *a1 = a0 + sm, *a2 = a1 + sm, *a3 = a2 + sm;
    for (int k = 0; k < K; k++) {
      long o = k * sk;
      int n0 = a0[o] != 0.0f, n1 = a1[o] != 0.0f, n2 = a2[o] != 0.0f, n3 = a3[o] != 0.0f;
      rows += n0 + n1 + n2 + n3;
      blocks += n0 | n1 | n2 | n3;
    }
  }
  if (!(DENSE_BLOCKED_COST * 4.0f * (float)blocks < (float)rows)) return 0;
  return blocks == (long)(M / 4) * K ? 2 : 1;
}

// C[M, N] = act(init + A B) with A(m, k) = A[m * sm + k * sk], K terms, four
// rows of C at a time (rows past the last multiple of 4 go through
// weighted_rows), skipping the k where all four rows of A are zero. Columns
// are taken in panels whose K rows of B fit in `cache` floats (0: all at once).
// full: no k is all zero in any four rows (mlp_blocked_wins gave 2), so no
// block looks for the k to skip (on inputs without zeros that look, once per
// block and panel, took about a tenth of LeNet's first-layer forward).
static void mlp_block_rows(float *C, long ldc, const float *A, long sm, long sk, int M, int K, const float *B, long ldb,
                       int N, const float *init, int relu, int *idx, float *val, int cache, int full) {
  int panel = cache ? (int)(cache / (K > 0 ? K : 1)) & ~7 : N;
  if (panel < 8) panel = 8;
  int M4 = M & ~3;
  for (int j0 = 0; j0 < N; j0 += panel) {
    int j1 = j0 + panel < N ? j0 + panel : N;
    for (int m = 0; m < M4; m += 4) {
      const float *Am = A + m * sm;
      int nk = full ? K : mlp_nonzero_cols4(Am, sm, sk, K, idx);
      if (nk == K) mlp_rows4(C + m * ldc, ldc, Am, sm, sk, 0, K, B, ldb, j0, j1, init, relu);
      else mlp_rows4(C + m * ldc, ldc, Am, sm, sk, idx, nk, B, ldb, j0, j1, init, relu);
    }
  }
  for (int m = M4; m < M; m++) {
    int nz = nonzeros(A + m * sm, K, sk, idx, val);
    weighted_rows(C + m * ldc, B, N, idx, val, nz, init, relu);
  }
}

// out[b, :] = act(bias + sum over nonzero x[b, i] of x[b, i] * w[i, :]).
// idx/val: scratch for `in` entries.
static void dense_forward_rows(const float *x, int batch, int in, const float *w, const float *bias, float *out,
                               int outn, int relu, int *idx, float *val) {
  int blocked = mlp_blocked_wins(x, in, 1, batch, in);
  if (blocked) {
    // Panels of w in half of a 512 KiB L2 (on LeNet's 784 x 300 kernel, 8% faster than a
    // quarter, the same as no panels; on 1024 x 1024, 8% faster than none).
    mlp_block_rows(out, outn, x, in, 1, batch, in, w, outn, outn, bias, relu, idx, val, 65536, blocked == 2);
    return;
  }
  for (int b = 0; b < batch; b++) {
    int nz = nonzeros(x + (long)b * in, in, 1, idx, val);
    weighted_rows(out + (long)b * outn, w, outn, idx, val, nz, bias, relu);
  }
}

// dw[i, :] = sum over b of x[b, i] * dz[b, :]; db[:] = sum over b of dz[b, :] (if db).
// idx/val: scratch for `batch` entries.
static void dense_bias_grad(const float *dz, int batch, int outn, float *db);

static void dense_grad_weights_rows(const float *x, int batch, int in, const float *dz, int outn, float *dw, float *db,
                                    int *idx, float *val) {
  int blocked = mlp_blocked_wins(x, 1, in, in, batch);
  if (blocked) {
    // dz whole (a batch of rows; panels of it measured 5-15% slower on LeNet's layers and on 1024 x 1024).
    mlp_block_rows(dw, outn, x, 1, in, in, batch, dz, outn, outn, 0, 0, idx, val, 0, blocked == 2);
  } else {
    for (int i = 0; i < in; i++) {
      int nz = nonzeros(x + i, batch, in, idx, val);
      weighted_rows(dw + (long)i * outn, dz, outn, idx, val, nz, 0, 0);
    }
  }
  if (db) dense_bias_grad(dz, batch, outn, db);
}

// db[:] = sum over b of dz[b, :].
static void dense_bias_grad(const float *dz, int batch, int outn, float *db) {
  for (int j = 0; j < outn; j++) db[j] = 0.0f;
  for (int b = 0; b < batch; b++) {
    const float *d = dz + (long)b * outn;
    int j = 0;
    for (; j + 4 <= outn; j += 4) ST(db + j, ADD(LD(db + j), LD(d + j)));
    for (; j < outn; j++) db[j] += d[j];
  }
}

static float dot(const float *a, const float *b, int n) {
  vf s0 = SPLAT(0.0f), s1 = SPLAT(0.0f), s2 = SPLAT(0.0f), s3 = SPLAT(0.0f);
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    s0 = FMA(s0, LD(a + j), LD(b + j));
    s1 = FMA(s1, LD(a + j + 4), LD(b + j + 4));
    s2 = FMA(s2, LD(a + j + 8), LD(b + j + 8));
    s3 = FMA(s3, LD(a + j + 12), LD(b + j + 12));
  }
  for (; j + 4 <= n; j += 4) s0 = FMA(s0, LD(a + j), LD(b + j));
  vf s = ADD(ADD(s0, s1), ADD(s2, s3));
  float r = wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2) +
            wasm_f32x4_extract_lane(s, 3);
  for (; j < n; j++) r += a[j] * b[j];
  return r;
}

static inline float mlp_hsum(vf s) {
  return wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2) +
         wasm_f32x4_extract_lane(s, 3);
}

// o0[i], o0[i + 1], o1[..], o2[..], o3[..] = the dot products of four rows
// of dz (d0 .. d3) with two rows of w (w0, w1), n terms: each load used twice
// or four times, 8 sums in registers.
static void mlp_dots4x2(const float *d0, const float *d1, const float *d2, const float *d3, const float *w0,
                    const float *w1, int n, float *o0, float *o1, float *o2, float *o3) {
  vf p0 = SPLAT(0.0f), p1 = p0, q0 = p0, q1 = p0, r0 = p0, r1 = p0, s0 = p0, s1 = p0;
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    vf u = LD(w0 + j), v = LD(w1 + j), x = LD(d0 + j);
    p0 = FMA(p0, x, u); p1 = FMA(p1, x, v);
    x = LD(d1 + j);
    q0 = FMA(q0, x, u); q1 = FMA(q1, x, v);
    x = LD(d2 + j);
    r0 = FMA(r0, x, u); r1 = FMA(r1, x, v);
    x = LD(d3 + j);
    s0 = FMA(s0, x, u); s1 = FMA(s1, x, v);
  }
  float e[8] = {mlp_hsum(p0), mlp_hsum(p1), mlp_hsum(q0), mlp_hsum(q1),
                mlp_hsum(r0), mlp_hsum(r1), mlp_hsum(s0), mlp_hsum(s1)};
  for (; j < n; j++) {
    e[0] += d0[j] * w0[j]; e[1] += d0[j] * w1[j]; e[2] += d1[j] * w0[j]; e[3] += d1[j] * w1[j];
    e[4] += d2[j] * w0[j]; e[5] += d2[j] * w1[j]; e[6] += d3[j] * w0[j]; e[7] += d3[j] * w1[j];
  }
  o0[0] = e[0]; o0[1] = e[1]; o1[0] = e[2]; o1[1] = e[3];
  o2[0] = e[4]; o2[1] = e[5]; o3[0] = e[6]; o3[1] = e[7];
}

// Nonzero entries among the first n of x.
static long mlp_count_nonzero(const float *x, long n) {
  long j = 0, c = 0;
  v128_t cnt = wasm_i32x4_splat(0);
  for (; j + 4 <= n; j += 4) cnt = wasm_i32x4_sub(cnt, wasm_f32x4_ne(LD(x + j), SPLAT(0.0f)));
  c = (long)wasm_i32x4_extract_lane(cnt, 0) + wasm_i32x4_extract_lane(cnt, 1) + wasm_i32x4_extract_lane(cnt, 2) +
      wasm_i32x4_extract_lane(cnt, 3);
  for (; j < n; j++) c += x[j] != 0.0f;
  return c;
}

// Above this fraction of live (positive) units below, dense_grad_input takes
// every dot product four examples by two units at a time and masks after;
// below it, only the live units' dot products one at a time. On LeNet's
// 300 -> 100 layer at ~50% live units the blocked pass took 0.14-0.20 ms and
// the live-only one 0.26-0.35 ms, which scales with the live fraction: they
// cross near 0.3.
#define DENSE_BLOCKED_MIN_LIVE 0.30f

// da[b, i] = sum over j of dz[b, j] * w[i, j], zero where the layer below is a
// ReLU and its output a[b, i] is zero (relu != 0).
static void dense_grad_input_rows(const float *dz, int batch, int outn, const float *w, int in, const float *a,
                                  int relu, float *da) {
  long n = (long)batch * in;
  int b0 = 0;
  if (batch >= 4 && in >= 2 && (!relu || mlp_count_nonzero(a, n) >= DENSE_BLOCKED_MIN_LIVE * (float)n)) {
    int B4 = batch & ~3, I2 = in & ~1;
    for (int b = 0; b < B4; b += 4) {
      const float *d = dz + (long)b * outn;
      float *o = da + (long)b * in;
      for (int i = 0; i < I2; i += 2)
        mlp_dots4x2(d, d + outn, d + 2 * outn, d + 3 * outn, w + (long)i * outn, w + (long)(i + 1) * outn, outn, o + i,
                o + in + i, o + 2 * in + i, o + 3 * in + i);
      for (int r = 0; r < 4; r++)
        for (int i = I2; i < in; i++) o[r * in + i] = dot(d + r * outn, w + (long)i * outn, outn);
      if (relu) {
        const float *ar = a + (long)b * in;
        vf z = SPLAT(0.0f);
        long q = 0, m = 4L * in;
        for (; q + 4 <= m; q += 4) ST(o + q, wasm_v128_andnot(LD(o + q), wasm_f32x4_le(LD(ar + q), z)));
        for (; q < m; q++)
          if (ar[q] <= 0.0f) o[q] = 0.0f;
      }
    }
    b0 = B4;
  }
  for (int b = b0; b < batch; b++) {
    const float *d = dz + (long)b * outn;
    const float *ar = a + (long)b * in;
    float *o = da + (long)b * in;
    for (int i = 0; i < in; i++) o[i] = relu && ar[i] <= 0.0f ? 0.0f : dot(d, w + (long)i * outn, outn);
  }
}

// Dense layers whose kernel is far larger than the caches (a conv net's first
// dense layer: Conv-2's 16384 x 256, 16 MiB). The kernels above take each
// example (or four) across the whole of w, so w comes from RAM once per
// example or block, and they read x (forward, weight gradient) a feature at a
// time down the batch: rows `in` floats apart, which for in a power of two
// land in the same cache sets and evict each other. These read w once per
// call, a block of its rows (features) at a time while the batch's rows stay
// in cache, and x (and da) a cache line per example and block.

// Features per block: FM_BLOCK_BYTES of w rows (at least 4, at most 64).
#define FM_BLOCK_BYTES 65536
// Examples per tile of the weight and input gradients (a tile is FM_TILE_F x FM_TILE_B floats on the stack).
#define FM_TILE_F 16
#define FM_TILE_B 128

static int fm_block(int outn) {
  int f = FM_BLOCK_BYTES / 4 / (outn > 0 ? outn : 1);
  return f < 4 ? 4 : f > 64 ? 64 : f;
}

// dense_forward's result, w read once: for each block of features, each
// example adds its nonzero inputs' rows of the block to its output row.
// idx/val: scratch for min(in, 64) entries.
EXPORT void dense_forward_fm(const float *x, int batch, int in, const float *w, const float *bias, float *out,
                             int outn, int relu, int *idx, float *val) {
  for (int b = 0; b < batch; b++) {
    float *o = out + (long)b * outn;
    int j = 0;
    for (; j + 4 <= outn; j += 4) ST(o + j, bias ? LD(bias + j) : SPLAT(0.0f));
    for (; j < outn; j++) o[j] = bias ? bias[j] : 0.0f;
  }
  int F = fm_block(outn);
  for (int i0 = 0; i0 < in; i0 += F) {
    int f = i0 + F <= in ? F : in - i0;
    const float *wb = w + (long)i0 * outn;
    for (int b = 0; b < batch; b++) {
      int nz = nonzeros(x + (long)b * in + i0, f, 1, idx, val);
      float *o = out + (long)b * outn;
      if (nz) weighted_rows(o, wb, outn, idx, val, nz, o, 0);
    }
  }
  if (relu) {
    long n = (long)batch * outn, q = 0;
    for (; q + 4 <= n; q += 4) ST(out + q, MAXZ(LD(out + q)));
    for (; q < n; q++)
      if (out[q] < 0.0f) out[q] = 0.0f;
  }
}

// dense_grad_weights' result, dw written once: x taken in tiles of
// FM_TILE_F features by up to FM_TILE_B examples, transposed on the stack;
// each feature's row of dw is the weighted sum of the rows of dz where its
// input is nonzero (or four features at a time where the tile has few zeros).
// idx/val: scratch for min(batch, FM_TILE_B) entries.
EXPORT void dense_grad_weights_fm(const float *x, int batch, int in, const float *dz, int outn, float *dw, float *db,
                                  int *idx, float *val) {
  float tile[FM_TILE_F * FM_TILE_B];
  for (int b0 = 0; b0 < batch; b0 += FM_TILE_B) {
    int nb = b0 + FM_TILE_B <= batch ? FM_TILE_B : batch - b0;
    const float *d = dz + (long)b0 * outn;
    for (int i0 = 0; i0 < in; i0 += FM_TILE_F) {
      int f = i0 + FM_TILE_F <= in ? FM_TILE_F : in - i0;
      for (int b = 0; b < nb; b++) {
        const float *xr = x + (long)(b0 + b) * in + i0;
        for (int q = 0; q < f; q++) tile[q * FM_TILE_B + b] = xr[q];
      }
      float *o = dw + (long)i0 * outn;
      int blocked = b0 == 0 && nb == batch ? mlp_blocked_wins(tile, FM_TILE_B, 1, f, nb) : 0;
      if (blocked) {
        mlp_block_rows(o, outn, tile, FM_TILE_B, 1, f, nb, d, outn, outn, 0, 0, idx, val, 0, blocked == 2);
        continue;
      }
      for (int q = 0; q < f; q++) {
        int nz = nonzeros(tile + q * FM_TILE_B, nb, 1, idx, val);
        float *oq = o + (long)q * outn;
        // Later tiles of examples add to what the first wrote.
        if (nz || b0 == 0) weighted_rows(oq, d, outn, idx, val, nz, b0 ? oq : 0, 0);
      }
    }
  }
  if (db) dense_bias_grad(dz, batch, outn, db);
}

// dense_grad_input's result, w read once: for each block of FM_TILE_F
// features (rows of w), the dot products with every example's dz row, four
// examples by two features at a time, into a tile on the stack, then copied
// (masked by a > 0 if relu) into da a line per example. Where few units are
// live (relu and under DENSE_BLOCKED_MIN_LIVE of a positive), only the live ones.
EXPORT void dense_grad_input_fm(const float *dz, int batch, int outn, const float *w, int in, const float *a, int relu,
                                float *da) {
  float tile[FM_TILE_B * FM_TILE_F];  // tile[b * FM_TILE_F + q]
  long n = (long)batch * in;
  int blocked = !relu || mlp_count_nonzero(a, n) >= DENSE_BLOCKED_MIN_LIVE * (float)n;
  for (int i0 = 0; i0 < in; i0 += FM_TILE_F) {
    int f = i0 + FM_TILE_F <= in ? FM_TILE_F : in - i0;
    const float *wb = w + (long)i0 * outn;
    for (int b0 = 0; b0 < batch; b0 += FM_TILE_B) {
      int nb = b0 + FM_TILE_B <= batch ? FM_TILE_B : batch - b0;
      const float *d = dz + (long)b0 * outn;
      if (blocked) {
        int B4 = nb & ~3, F2 = f & ~1;
        for (int b = 0; b < B4; b += 4) {
          const float *d0 = d + (long)b * outn;
          float *t = tile + b * FM_TILE_F;
          for (int q = 0; q < F2; q += 2)
            mlp_dots4x2(d0, d0 + outn, d0 + 2 * outn, d0 + 3 * outn, wb + (long)q * outn, wb + (long)(q + 1) * outn,
                        outn, t + q, t + FM_TILE_F + q, t + 2 * FM_TILE_F + q, t + 3 * FM_TILE_F + q);
          for (int r = 0; r < 4; r++)
            for (int q = F2; q < f; q++) t[r * FM_TILE_F + q] = dot(d0 + r * outn, wb + (long)q * outn, outn);
        }
        for (int b = B4; b < nb; b++)
          for (int q = 0; q < f; q++) tile[b * FM_TILE_F + q] = dot(d + (long)b * outn, wb + (long)q * outn, outn);
        for (int b = 0; b < nb; b++) {
          float *o = da + (long)(b0 + b) * in + i0;
          const float *t = tile + b * FM_TILE_F;
          if (relu) {
            const float *ar = a + (long)(b0 + b) * in + i0;
            for (int q = 0; q < f; q++) o[q] = ar[q] > 0.0f ? t[q] : 0.0f;
          } else {
            for (int q = 0; q < f; q++) o[q] = t[q];
          }
        }
      } else {
        for (int b = 0; b < nb; b++) {
          const float *ar = a + (long)(b0 + b) * in + i0;
          const float *db = d + (long)b * outn;
          float *o = da + (long)(b0 + b) * in + i0;
          for (int q = 0; q < f; q++) o[q] = ar[q] > 0.0f ? dot(db, wb + (long)q * outn, outn) : 0.0f;
        }
      }
    }
  }
}

// From this many bytes of kernel on, the dense kernels take the paths above.
// scripts/bench-dense-big.ts against the build before them (one thread, ms
// per call): at 30 x 16384 -> 256 with half the inputs zero, forward 124 ->
// 17, weight gradient 12.6 -> 10.0, input gradient 49 -> 19; without zeros 53
// -> 18, 20 -> 12, 42 -> 18; at 30 x 2048 -> 512 (4 MiB) 19 -> 4, 2.7 -> 2.6,
// 4.6 -> 3.8. Below, on LeNet's 784 x 300 (1 MiB), they are as often slower as
// faster (forward 0.70x on inputs without zeros, 1.5x at half zeros; input
// gradient 0.76x at half zeros), so LeNet keeps the paths it was tuned on.
#define DENSE_FM_MIN_BYTES (4L << 20)
static int dense_fm_wins(int in, int outn) { return 4L * in * outn >= DENSE_FM_MIN_BYTES; }

// out[b, :] = act(bias + sum over nonzero x[b, i] of x[b, i] * w[i, :]).
// idx/val: scratch for `in` entries.
EXPORT void dense_forward(const float *x, int batch, int in, const float *w, const float *bias, float *out, int outn,
                          int relu, int *idx, float *val) {
  if (dense_fm_wins(in, outn)) dense_forward_fm(x, batch, in, w, bias, out, outn, relu, idx, val);
  else dense_forward_rows(x, batch, in, w, bias, out, outn, relu, idx, val);
}

// dw[i, :] = sum over b of x[b, i] * dz[b, :]; db[:] = sum over b of dz[b, :] (if db).
// idx/val: scratch for `batch` entries.
EXPORT void dense_grad_weights(const float *x, int batch, int in, const float *dz, int outn, float *dw, float *db,
                               int *idx, float *val) {
  if (dense_fm_wins(in, outn)) dense_grad_weights_fm(x, batch, in, dz, outn, dw, db, idx, val);
  else dense_grad_weights_rows(x, batch, in, dz, outn, dw, db, idx, val);
}

// da[b, i] = sum over j of dz[b, j] * w[i, j], zero where the layer below is a
// ReLU and its output a[b, i] is zero (relu != 0).
EXPORT void dense_grad_input(const float *dz, int batch, int outn, const float *w, int in, const float *a, int relu,
                             float *da) {
  if (dense_fm_wins(in, outn)) dense_grad_input_fm(dz, batch, outn, w, in, a, relu, da);
  else dense_grad_input_rows(dz, batch, outn, w, in, a, relu, da);
}

// Adam as TF.js computes it: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr (m / c1) / (sqrt(v / c2) + eps), with c1 = 1 - b1^t, c2 = 1 - b2^t.
// A mask (if given) zeroes the gradients of pruned weights first. The vector
// loop multiplies by lr / c1 and 1 / c2 instead of dividing by c1 and c2
// (each differs from TF.js's quotient by about an ulp): one division and one
// square root per four weights instead of three divisions and a root.
EXPORT void adam(float *p, const float *g, float *m, float *v, const float *mask, int n, float lr, float b1, float b2,
                 float eps, float c1, float c2) {
  vf B1 = SPLAT(b1), B2 = SPLAT(b2), NB1 = SPLAT(1.0f - b1), NB2 = SPLAT(1.0f - b2);
  vf LR_C1 = SPLAT(lr / c1), INV_C2 = SPLAT(1.0f / c2), EPS = SPLAT(eps);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    vf gi = LD(g + i);
    if (mask) gi = MUL(gi, LD(mask + i));
    vf mi = FMA(MUL(B1, LD(m + i)), NB1, gi);
    vf vi = FMA(MUL(B2, LD(v + i)), MUL(NB2, gi), gi);
    ST(m + i, mi);
    ST(v + i, vi);
    vf step = wasm_f32x4_div(MUL(LR_C1, mi), ADD(wasm_f32x4_sqrt(MUL(vi, INV_C2)), EPS));
    ST(p + i, wasm_f32x4_sub(LD(p + i), step));
  }
  for (; i < n; i++) {
    float gi = mask ? g[i] * mask[i] : g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= (lr * (mi / c1)) / (__builtin_sqrtf(vi / c2) + eps);
  }
}

// SGD (mom == 0: p -= lr g) or momentum as TF.js computes it (m = mom m + g; p -= lr m).
EXPORT void sgd(float *p, const float *g, float *m, const float *mask, int n, float lr, float mom) {
  for (int i = 0; i < n; i++) {
    float gi = mask ? g[i] * mask[i] : g[i];
    if (mom > 0.0f) {
      m[i] = mom * m[i] + gi;
      p[i] -= lr * m[i];
    } else {
      p[i] -= lr * gi;
    }
  }
}

// Sparse layers for late pruning rounds: the surviving weights of a kernel in
// compressed rows (row i's survivors are val[row[i] .. row[i + 1]), in output
// columns col[...]), and activations feature-major: a[i * s + b] is feature i
// of example b, with s (a multiple of 4) >= the batch, and lanes past the batch
// zero where gradients flow. Each survivor then costs a few vector operations
// across the whole batch, so work scales with the number of survivors.

// dst[c * s + r] = src[r * cols + c] for r < rows; lanes rows .. s - 1 zeroed.
EXPORT void to_feature_major(const float *src, int rows, int cols, float *dst, int s) {
  for (int c = 0; c < cols; c++) {
    float *d = dst + (long)c * s;
    for (int r = rows; r < s; r++) d[r] = 0.0f;
  }
  for (int r0 = 0; r0 < rows; r0 += 16) {
    int r1 = r0 + 16 < rows ? r0 + 16 : rows;
    for (int c = 0; c < cols; c++) {
      float *d = dst + (long)c * s;
      for (int r = r0; r < r1; r++) d[r] = src[(long)r * cols + c];
    }
  }
}

// dst[r * cols + c] = src[c * s + r] for r < rows.
EXPORT void from_feature_major(const float *src, int rows, int cols, float *dst, int s) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(long)r * cols + c] = src[(long)c * s + r];
}

static int all_zero(const float *x, int s) {
  vf acc = SPLAT(0.0f);
  for (int b = 0; b < s; b += 4) acc = wasm_v128_or(acc, LD(x + b));
  // -0.0f counts as nonzero here; it only costs a skipped shortcut.
  return !wasm_v128_any_true(acc);
}

// outT = act(bias + W^T aT), feature-major (outn rows of s lanes).
EXPORT void csr_forward(const float *aT, int s, int in, const int *row, const int *col, const float *val,
                        const float *bias, float *outT, int outn, int relu) {
  for (int j = 0; j < outn; j++) {
    vf bj = SPLAT(bias ? bias[j] : 0.0f);
    float *o = outT + (long)j * s;
    for (int b = 0; b < s; b += 4) ST(o + b, bj);
  }
  for (int i = 0; i < in; i++) {
    int k = row[i], end = row[i + 1];
    const float *x = aT + (long)i * s;
    if (k == end || all_zero(x, s)) continue;
    for (; k < end; k++) {
      float *o = outT + (long)col[k] * s;
      vf w = SPLAT(val[k]);
      for (int b = 0; b < s; b += 4) ST(o + b, FMA(LD(o + b), w, LD(x + b)));
    }
  }
  if (relu)
    for (long q = 0; q < (long)outn * s; q += 4) ST(outT + q, MAXZ(LD(outT + q)));
}

// From dzT (zero past the batch): gradients of the survivors (gval) and the
// bias (gb, if given), given the layer's input aT; if daT is given, also dA of
// the input, zero where the layer below is a ReLU (relu != 0) and its output is zero.
EXPORT void csr_backward(const float *aT, int s, int in, const int *row, const int *col, const float *val,
                         const float *dzT, int outn, float *gval, float *gb, float *daT, int relu) {
  if (gb)
    for (int j = 0; j < outn; j++) {
      const float *d = dzT + (long)j * s;
      vf acc = SPLAT(0.0f);
      for (int b = 0; b < s; b += 4) acc = ADD(acc, LD(d + b));
      gb[j] = wasm_f32x4_extract_lane(acc, 0) + wasm_f32x4_extract_lane(acc, 1) + wasm_f32x4_extract_lane(acc, 2) +
              wasm_f32x4_extract_lane(acc, 3);
    }
  for (int i = 0; i < in; i++) {
    const float *x = aT + (long)i * s;
    float *da = daT ? daT + (long)i * s : 0;
    int k = row[i], end = row[i + 1];
    if (da)
      for (int b = 0; b < s; b += 4) ST(da + b, SPLAT(0.0f));
    if (k == end) continue;
    int skipW = all_zero(x, s);
    if (skipW && (!da || relu)) {
      // A zero input row adds nothing to its weights' gradients; after a ReLU it also blocks dA.
      for (; k < end; k++) gval[k] = 0.0f;
      continue;
    }
    for (; k < end; k++) {
      const float *d = dzT + (long)col[k] * s;
      if (!skipW) gval[k] = dot(x, d, s);
      else gval[k] = 0.0f;
      if (da) {
        vf w = SPLAT(val[k]);
        for (int b = 0; b < s; b += 4) ST(da + b, FMA(LD(da + b), w, LD(d + b)));
      }
    }
    if (da && relu) {
      vf z = SPLAT(0.0f);
      for (int b = 0; b < s; b += 4) {
        v128_t live = wasm_f32x4_gt(LD(x + b), z);
        ST(da + b, wasm_v128_and(LD(da + b), live));
      }
    }
  }
}
