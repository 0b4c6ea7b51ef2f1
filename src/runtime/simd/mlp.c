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
      a0 = ADD(a0, MUL(s, LD(r))); a1 = ADD(a1, MUL(s, LD(r + 4)));
      a2 = ADD(a2, MUL(s, LD(r + 8))); a3 = ADD(a3, MUL(s, LD(r + 12)));
      a4 = ADD(a4, MUL(s, LD(r + 16))); a5 = ADD(a5, MUL(s, LD(r + 20)));
      a6 = ADD(a6, MUL(s, LD(r + 24))); a7 = ADD(a7, MUL(s, LD(r + 28)));
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
    for (int k = 0; k < nz; k++) a0 = ADD(a0, MUL(SPLAT(val[k]), LD(src + (long)idx[k] * n + j)));
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
  int nz = 0;
  for (int q = 0; q < n; q++) {
    float v = x[q * stride];
    if (v != 0.0f) {
      idx[nz] = q;
      val[nz] = v;
      nz++;
    }
  }
  return nz;
}

// out[b, :] = act(bias + sum over nonzero x[b, i] of x[b, i] * w[i, :]).
// idx/val: scratch for `in` entries.
EXPORT void dense_forward(const float *x, int batch, int in, const float *w, const float *bias, float *out, int outn,
                          int relu, int *idx, float *val) {
  for (int b = 0; b < batch; b++) {
    int nz = nonzeros(x + (long)b * in, in, 1, idx, val);
    weighted_rows(out + (long)b * outn, w, outn, idx, val, nz, bias, relu);
  }
}

// dw[i, :] = sum over b of x[b, i] * dz[b, :]; db[:] = sum over b of dz[b, :] (if db).
// idx/val: scratch for `batch` entries.
EXPORT void dense_grad_weights(const float *x, int batch, int in, const float *dz, int outn, float *dw, float *db,
                               int *idx, float *val) {
  for (int i = 0; i < in; i++) {
    int nz = nonzeros(x + i, batch, in, idx, val);
    weighted_rows(dw + (long)i * outn, dz, outn, idx, val, nz, 0, 0);
  }
  if (db) {
    for (int j = 0; j < outn; j++) db[j] = 0.0f;
    for (int b = 0; b < batch; b++) {
      const float *d = dz + (long)b * outn;
      int j = 0;
      for (; j + 4 <= outn; j += 4) ST(db + j, ADD(LD(db + j), LD(d + j)));
      for (; j < outn; j++) db[j] += d[j];
    }
  }
}

static float dot(const float *a, const float *b, int n) {
  vf s0 = SPLAT(0.0f), s1 = SPLAT(0.0f), s2 = SPLAT(0.0f), s3 = SPLAT(0.0f);
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    s0 = ADD(s0, MUL(LD(a + j), LD(b + j)));
    s1 = ADD(s1, MUL(LD(a + j + 4), LD(b + j + 4)));
    s2 = ADD(s2, MUL(LD(a + j + 8), LD(b + j + 8)));
    s3 = ADD(s3, MUL(LD(a + j + 12), LD(b + j + 12)));
  }
  for (; j + 4 <= n; j += 4) s0 = ADD(s0, MUL(LD(a + j), LD(b + j)));
  vf s = ADD(ADD(s0, s1), ADD(s2, s3));
  float r = wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 2) +
            wasm_f32x4_extract_lane(s, 3);
  for (; j < n; j++) r += a[j] * b[j];
  return r;
}

// da[b, i] = sum over j of dz[b, j] * w[i, j], zero where the layer below is a
// ReLU and its output a[b, i] is zero (relu != 0).
EXPORT void dense_grad_input(const float *dz, int batch, int outn, const float *w, int in, const float *a, int relu,
                             float *da) {
  for (int b = 0; b < batch; b++) {
    const float *d = dz + (long)b * outn;
    const float *ar = a + (long)b * in;
    float *o = da + (long)b * in;
    for (int i = 0; i < in; i++) o[i] = relu && ar[i] <= 0.0f ? 0.0f : dot(d, w + (long)i * outn, outn);
  }
}

// Adam as TF.js computes it: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr (m / c1) / (sqrt(v / c2) + eps), with c1 = 1 - b1^t, c2 = 1 - b2^t.
// A mask (if given) zeroes the gradients of pruned weights first.
EXPORT void adam(float *p, const float *g, float *m, float *v, const float *mask, int n, float lr, float b1, float b2,
                 float eps, float c1, float c2) {
  vf B1 = SPLAT(b1), B2 = SPLAT(b2), NB1 = SPLAT(1.0f - b1), NB2 = SPLAT(1.0f - b2);
  vf C1 = SPLAT(c1), C2 = SPLAT(c2), EPS = SPLAT(eps), LR = SPLAT(lr);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    vf gi = LD(g + i);
    if (mask) gi = MUL(gi, LD(mask + i));
    vf mi = ADD(MUL(B1, LD(m + i)), MUL(NB1, gi));
    vf vi = ADD(MUL(B2, LD(v + i)), MUL(NB2, MUL(gi, gi)));
    ST(m + i, mi);
    ST(v + i, vi);
    vf step = wasm_f32x4_div(MUL(LR, wasm_f32x4_div(mi, C1)), ADD(wasm_f32x4_sqrt(wasm_f32x4_div(vi, C2)), EPS));
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
      for (int b = 0; b < s; b += 4) ST(o + b, ADD(LD(o + b), MUL(w, LD(x + b))));
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
        for (int b = 0; b < s; b += 4) ST(da + b, ADD(LD(da + b), MUL(w, LD(d + b))));
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
