// The fused optimiser of the conv-net module (the layers slice of cnn.c): one
// call updates every parameter tensor of a net, listed in a table of rows
// {p, g, m, v, mask, n} (i32; byte offsets, mask and v 0 where absent, n
// floats). The arithmetic is mlp.c's adam / sgd operation for operation, so
// both engines train alike; masked gradients are zeroed in the same pass, so
// a pruned weight (0, with zero moments) stays exactly 0.
//
// threads > 1: the tensor's gradient is the sum of per-thread buffers
// g, g + gstride, ..., g + (threads - 1) gstride (gstride in floats), added in
// that order as the update reads them, so no separate reduction pass is needed.
#include "common.h"

#define OPT_ROW 6

static inline vf opt_grad4(const float *g, long i, int threads, long gstride, const float *mask) {
  vf gi = LD(g + i);
  for (int t = 1; t < threads; t++) gi = ADD(gi, LD(g + t * gstride + i));
  if (mask) gi = MUL(gi, LD(mask + i));
  return gi;
}

static inline float opt_grad1(const float *g, long i, int threads, long gstride, const float *mask) {
  float gi = g[i];
  for (int t = 1; t < threads; t++) gi += g[t * gstride + i];
  return mask ? gi * mask[i] : gi;
}

// One table row of Adam; always inlined, so the thread count is a constant
// where adam_all dispatches on it (the sum of gradients unrolls).
static inline __attribute__((always_inline)) void adam_row(const int *e, int threads, long gstride, vf B1, vf B2,
                                                           vf NB1, vf NB2, vf LR_C1, vf INV_C2, vf EPS, float lr,
                                                           float b1, float b2, float eps, float c1, float c2) {
  float *p = (float *)e[0], *m = (float *)e[2], *v = (float *)e[3];
  const float *g = (const float *)e[1], *mask = (const float *)e[4];
  int n = e[5];
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    vf gi = opt_grad4(g, i, threads, gstride, mask);
    vf mi = FMA(MUL(B1, LD(m + i)), NB1, gi);
    vf vi = FMA(MUL(B2, LD(v + i)), MUL(NB2, gi), gi);
    ST(m + i, mi);
    ST(v + i, vi);
    vf step = wasm_f32x4_div(MUL(LR_C1, mi), ADD(wasm_f32x4_sqrt(MUL(vi, INV_C2)), EPS));
    ST(p + i, SUB(LD(p + i), step));
  }
  for (; i < n; i++) {
    float gi = opt_grad1(g, i, threads, gstride, mask);
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= (lr * (mi / c1)) / (__builtin_sqrtf(vi / c2) + eps);
  }
}

// Adam as TF.js computes it (see mlp.c's adam), c1 = 1 - b1^t, c2 = 1 - b2^t.
EXPORT void adam_all(const int *table, int count, int threads, int gstride, float lr, float b1, float b2, float eps,
                     float c1, float c2) {
  vf B1 = SPLAT(b1), B2 = SPLAT(b2), NB1 = SPLAT(1.0f - b1), NB2 = SPLAT(1.0f - b2);
  vf LR_C1 = SPLAT(lr / c1), INV_C2 = SPLAT(1.0f / c2), EPS = SPLAT(eps);
  for (int row = 0; row < count; row++) {
    const int *e = table + row * OPT_ROW;
    if (threads == 1) adam_row(e, 1, 0, B1, B2, NB1, NB2, LR_C1, INV_C2, EPS, lr, b1, b2, eps, c1, c2);
    else if (threads == 2) adam_row(e, 2, gstride, B1, B2, NB1, NB2, LR_C1, INV_C2, EPS, lr, b1, b2, eps, c1, c2);
    else adam_row(e, threads, gstride, B1, B2, NB1, NB2, LR_C1, INV_C2, EPS, lr, b1, b2, eps, c1, c2);
  }
}

// SGD (mom == 0: p -= lr g; m unused) or momentum as TF.js computes it
// (m = mom m + g; p -= lr m), as mlp.c's sgd.
EXPORT void sgd_all(const int *table, int count, int threads, int gstride, float lr, float mom) {
  vf LR = SPLAT(lr), MOM = SPLAT(mom);
  for (int row = 0; row < count; row++) {
    const int *e = table + row * OPT_ROW;
    float *p = (float *)e[0], *m = (float *)e[2];
    const float *g = (const float *)e[1], *mask = (const float *)e[4];
    int n = e[5];
    int i = 0;
    if (mom > 0.0f) {
      for (; i + 4 <= n; i += 4) {
        vf mi = ADD(MUL(MOM, LD(m + i)), opt_grad4(g, i, threads, gstride, mask));
        ST(m + i, mi);
        ST(p + i, SUB(LD(p + i), MUL(LR, mi)));
      }
      for (; i < n; i++) {
        m[i] = mom * m[i] + opt_grad1(g, i, threads, gstride, mask);
        p[i] -= lr * m[i];
      }
    } else {
      for (; i + 4 <= n; i += 4) ST(p + i, SUB(LD(p + i), MUL(LR, opt_grad4(g, i, threads, gstride, mask))));
      for (; i < n; i++) p[i] -= lr * opt_grad1(g, i, threads, gstride, mask);
    }
  }
}
