// Dense layers with a mostly pruned kernel (a conv net's head in late rounds):
// only the surviving weights are trained. The survivors of a [in, out] kernel
// are listed by input row: row i's are flat[row[i] .. row[i + 1]), each the
// index i * out + j of the weight in the dense arrays, so the engine keeps a
// single dense copy of weights, gradients and optimiser state (pruned
// gradient entries are never written). Activations and gradients are
// feature-major, as for mlp.c's csr_* kernels: a[i * s + b] is feature i of
// example b, s a multiple of 4 >= the examples, lanes past them zero (use
// to_feature_major / from_feature_major). Each survivor then costs a few
// vector operations across the slice of the batch.
#include "common.h"

// Feature-major rows of up to 32 lanes are kept in registers while every
// survivor of the row is applied; wider slices go through the generic loop.
#define CSR_LANES 32

// outT = act(bias + W^T aT) over the survivors (outn rows of s lanes).
EXPORT void csr_flat_forward(const float *aT, int s, int in, const int *row, const int *flat, const float *w,
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
    long base = (long)i * outn;
    if (s <= CSR_LANES) {
      vf xr[CSR_LANES / 4];
      int v = s / 4;
      for (int q = 0; q < v; q++) xr[q] = LD(x + 4 * q);
      for (; k < end; k++) {
        long f = flat[k];
        float *o = outT + (f - base) * s;
        vf wk = SPLAT(w[f]);
        for (int q = 0; q < v; q++) ST(o + 4 * q, ADD(LD(o + 4 * q), MUL(wk, xr[q])));
      }
      continue;
    }
    for (; k < end; k++) {
      long f = flat[k];
      float *o = outT + (f - base) * s;
      vf wk = SPLAT(w[f]);
      for (int b = 0; b < s; b += 4) ST(o + b, ADD(LD(o + b), MUL(wk, LD(x + b))));
    }
  }
  if (relu)
    for (long q = 0; q < (long)outn * s; q += 4) ST(outT + q, MAXZ(LD(outT + q)));
}

// From dzT (zero past the examples): the survivors' gradients into gw at their
// flat indices (overwritten; other entries untouched), the bias gradient into
// gb (if given, overwritten), and if daT is given the input's gradient
// (overwritten; zero where relu != 0 and the input, a ReLU output, is zero).
EXPORT void csr_flat_backward(const float *aT, int s, int in, const int *row, const int *flat, const float *w,
                              const float *dzT, int outn, float *gw, float *gb, float *daT, int relu) {
  if (gb)
    for (int j = 0; j < outn; j++) {
      const float *d = dzT + (long)j * s;
      vf acc = SPLAT(0.0f);
      for (int b = 0; b < s; b += 4) acc = ADD(acc, LD(d + b));
      gb[j] = mlp_hsum(acc);
    }
  for (int i = 0; i < in; i++) {
    const float *x = aT + (long)i * s;
    float *da = daT ? daT + (long)i * s : 0;
    int k = row[i], end = row[i + 1];
    if (da)
      for (int b = 0; b < s; b += 4) ST(da + b, SPLAT(0.0f));
    if (k == end) continue;
    long base = (long)i * outn;
    int zero = all_zero(x, s);
    if (zero) {
      // A zero input adds nothing to its weights' gradients; after a ReLU it also passes no gradient down.
      for (int q = k; q < end; q++) gw[flat[q]] = 0.0f;
      if (!da || relu) continue;
    }
    if (s <= CSR_LANES) {
      vf xr[CSR_LANES / 4], ar[CSR_LANES / 4];
      int v = s / 4;
      for (int q = 0; q < v; q++) {
        xr[q] = LD(x + 4 * q);
        ar[q] = SPLAT(0.0f);
      }
      for (; k < end; k++) {
        long f = flat[k];
        const float *d = dzT + (f - base) * s;
        vf wk = SPLAT(w[f]);
        vf acc = SPLAT(0.0f);
        for (int q = 0; q < v; q++) {
          vf dq = LD(d + 4 * q);
          acc = ADD(acc, MUL(xr[q], dq));
          ar[q] = ADD(ar[q], MUL(wk, dq));
        }
        if (!zero) gw[f] = mlp_hsum(acc);
      }
      if (da) {
        vf z = SPLAT(0.0f);
        for (int q = 0; q < v; q++) ST(da + 4 * q, relu ? wasm_v128_and(ar[q], wasm_f32x4_gt(xr[q], z)) : ar[q]);
      }
      continue;
    }
    for (; k < end; k++) {
      long f = flat[k];
      const float *d = dzT + (f - base) * s;
      if (!zero) gw[f] = dot(x, d, s);
      if (da) {
        vf wk = SPLAT(w[f]);
        for (int b = 0; b < s; b += 4) ST(da + b, ADD(LD(da + b), MUL(wk, LD(d + b))));
      }
    }
    if (da && relu) {
      vf z = SPLAT(0.0f);
      for (int b = 0; b < s; b += 4) ST(da + b, wasm_v128_and(LD(da + b), wasm_f32x4_gt(LD(x + b), z)));
    }
  }
}
