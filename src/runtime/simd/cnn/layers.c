// The layers of a conv net other than convolutions (the layers slice of
// cnn.c): max and average pooling, global average pooling, batch
// normalisation, residual add, ReLU masks and buffer sums. NHWC float32;
// every batch kernel takes n images from the pointers it is given, so a
// thread runs its share of a batch by offsetting them. Gradients are
// overwritten, never accumulated, except by sum_into.
//
// Pool geometry (TF's): an input H x W x C, windows PH x PW at strides sh x sw,
// pt / pl rows / columns of padding above / left, OH x OW outputs. Padding
// never takes part: a window's max or mean is over its pixels in the image.
#include "common.h"

// Lanes of a where mask is set, else 0.
#define KEEP(a, mask) wasm_v128_and((a), (mask))
#define POSITIVE(p) wasm_f32x4_gt(LD(p), SPLAT(0.0f))

static inline int ly_max(int a, int b) { return a > b ? a : b; }
static inline int ly_min(int a, int b) { return a < b ? a : b; }

static void ly_zero(float *p, long count) { __builtin_memset(p, 0, (unsigned long)count * 4); }

// out[b, oh, ow, c] = max of the window's pixels; argmax[...] = its position in
// the window ((r - top) * PW + (col - left)), the first one where several tie
// (as TF.js's cpu backend picks it), -1 for a window with nothing above -inf.
EXPORT void max_pool_forward(const float *x, int n, int H, int W, int C, int PH, int PW, int sh, int sw, int pt,
                             int pl, int OH, int OW, float *out, int *argmax) {
  for (int b = 0; b < n; b++) {
    const float *xb = x + (long)b * H * W * C;
    for (int oh = 0; oh < OH; oh++) {
      int top = oh * sh - pt, r0 = ly_max(top, 0), r1 = ly_min(top + PH, H);
      for (int ow = 0; ow < OW; ow++) {
        int left = ow * sw - pl, c0 = ly_max(left, 0), c1 = ly_min(left + PW, W);
        long o = (((long)b * OH + oh) * OW + ow) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          vf best = SPLAT(-__builtin_inff());
          v128_t at = wasm_i32x4_splat(-1);
          for (int r = r0; r < r1; r++)
            for (int q = c0; q < c1; q++) {
              vf v = LD(xb + ((long)r * W + q) * C + c);
              v128_t gt = wasm_f32x4_gt(v, best);
              best = wasm_v128_bitselect(v, best, gt);
              at = wasm_v128_bitselect(wasm_i32x4_splat((r - top) * PW + (q - left)), at, gt);
            }
          ST(out + o + c, best);
          ST(argmax + o + c, at);
        }
        for (; c < C; c++) {
          float best = -__builtin_inff();
          int at = -1;
          for (int r = r0; r < r1; r++)
            for (int q = c0; q < c1; q++) {
              float v = xb[((long)r * W + q) * C + c];
              if (v > best) {
                best = v;
                at = (r - top) * PW + (q - left);
              }
            }
          out[o + c] = best;
          argmax[o + c] = at;
        }
      }
    }
  }
}

// dx = the gradient of max_pool_forward: each dout goes to its window's argmax
// (summed where overlapping windows share one), times (xr > 0) if xr is given
// (the pool's input is a ReLU output). Windows that tile the image (strides =
// pool) write dx directly, with no scatter.
EXPORT void max_pool_backward(const float *dout, const int *argmax, int n, int H, int W, int C, int PH, int PW,
                              int sh, int sw, int pt, int pl, int OH, int OW, float *dx, const float *xr) {
  long img = (long)H * W * C;
  if (sh == PH && sw == PW) {
    // Rows [0, OH * PH - pt) and columns [0, OW * PW - pl) are covered, each pixel by one window.
    if (OH * PH - pt < H || OW * PW - pl < W) ly_zero(dx, n * img);
    for (int b = 0; b < n; b++) {
      float *db = dx + b * img;
      const float *xb = xr ? xr + b * img : 0;
      for (int oh = 0; oh < OH; oh++) {
        int top = oh * sh - pt, r0 = ly_max(top, 0), r1 = ly_min(top + PH, H);
        for (int ow = 0; ow < OW; ow++) {
          int left = ow * sw - pl, c0 = ly_max(left, 0), c1 = ly_min(left + PW, W);
          long o = (((long)b * OH + oh) * OW + ow) * C;
          for (int r = r0; r < r1; r++)
            for (int q = c0; q < c1; q++) {
              int k = (r - top) * PW + (q - left);
              long p = ((long)r * W + q) * C;
              int c = 0;
              for (; c + 4 <= C; c += 4) {
                v128_t hit = wasm_i32x4_eq(LD(argmax + o + c), wasm_i32x4_splat(k));
                if (xb) hit = wasm_v128_and(hit, POSITIVE(xb + p + c));
                ST(db + p + c, KEEP(LD(dout + o + c), hit));
              }
              for (; c < C; c++)
                db[p + c] = argmax[o + c] == k && (!xb || xb[p + c] > 0.0f) ? dout[o + c] : 0.0f;
            }
        }
      }
    }
    return;
  }
  ly_zero(dx, n * img);
  for (int b = 0; b < n; b++) {
    float *db = dx + b * img;
    const float *xb = xr ? xr + b * img : 0;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        long o = (((long)b * OH + oh) * OW + ow) * C;
        for (int c = 0; c < C; c++) {
          float d = dout[o + c];
          int k = argmax[o + c];
          if (d == 0.0f || k < 0) continue;
          long p = ((long)(oh * sh - pt + k / PW) * W + (ow * sw - pl + k % PW)) * C + c;
          if (!xb || xb[p] > 0.0f) db[p] += d;
        }
      }
  }
}

// out = the mean of each window's pixels in the image (padding not counted, as TF).
EXPORT void avg_pool_forward(const float *x, int n, int H, int W, int C, int PH, int PW, int sh, int sw, int pt,
                             int pl, int OH, int OW, float *out) {
  for (int b = 0; b < n; b++) {
    const float *xb = x + (long)b * H * W * C;
    for (int oh = 0; oh < OH; oh++) {
      int top = oh * sh - pt, r0 = ly_max(top, 0), r1 = ly_min(top + PH, H);
      for (int ow = 0; ow < OW; ow++) {
        int left = ow * sw - pl, c0 = ly_max(left, 0), c1 = ly_min(left + PW, W);
        float *o = out + (((long)b * OH + oh) * OW + ow) * C;
        float count = (float)((r1 - r0) * (c1 - c0));
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          vf s = SPLAT(0.0f);
          for (int r = r0; r < r1; r++)
            for (int q = c0; q < c1; q++) s = ADD(s, LD(xb + ((long)r * W + q) * C + c));
          ST(o + c, wasm_f32x4_div(s, SPLAT(count)));
        }
        for (; c < C; c++) {
          float s = 0.0f;
          for (int r = r0; r < r1; r++)
            for (int q = c0; q < c1; q++) s += xb[((long)r * W + q) * C + c];
          o[c] = s / count;
        }
      }
    }
  }
}

// dx = the gradient of avg_pool_forward (each dout shared by its window's
// pixels in the image), times (xr > 0) if xr is given.
EXPORT void avg_pool_backward(const float *dout, int n, int H, int W, int C, int PH, int PW, int sh, int sw, int pt,
                              int pl, int OH, int OW, float *dx, const float *xr) {
  long img = (long)H * W * C;
  ly_zero(dx, n * img);
  for (int b = 0; b < n; b++) {
    float *db = dx + b * img;
    for (int oh = 0; oh < OH; oh++) {
      int top = oh * sh - pt, r0 = ly_max(top, 0), r1 = ly_min(top + PH, H);
      for (int ow = 0; ow < OW; ow++) {
        int left = ow * sw - pl, c0 = ly_max(left, 0), c1 = ly_min(left + PW, W);
        const float *d = dout + (((long)b * OH + oh) * OW + ow) * C;
        float count = (float)((r1 - r0) * (c1 - c0));
        for (int r = r0; r < r1; r++)
          for (int q = c0; q < c1; q++) {
            float *p = db + ((long)r * W + q) * C;
            int c = 0;
            for (; c + 4 <= C; c += 4) ST(p + c, ADD(LD(p + c), wasm_f32x4_div(LD(d + c), SPLAT(count))));
            for (; c < C; c++) p[c] += d[c] / count;
          }
      }
    }
  }
  if (xr) {
    long i = 0, total = n * img;
    for (; i + 4 <= total; i += 4) ST(dx + i, KEEP(LD(dx + i), POSITIVE(xr + i)));
    for (; i < total; i++) if (!(xr[i] > 0.0f)) dx[i] = 0.0f;
  }
}

// out[b, c] = the mean over the hw pixels of image b.
EXPORT void global_avg_pool_forward(const float *x, int hw, int C, int n, float *out) {
  vf inv = SPLAT(1.0f / (float)hw);
  for (int b = 0; b < n; b++) {
    const float *xb = x + (long)b * hw * C;
    float *o = out + (long)b * C;
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      vf s0 = SPLAT(0.0f), s1 = SPLAT(0.0f);
      int p = 0;
      for (; p + 2 <= hw; p += 2) {
        s0 = ADD(s0, LD(xb + (long)p * C + c));
        s1 = ADD(s1, LD(xb + (long)(p + 1) * C + c));
      }
      if (p < hw) s0 = ADD(s0, LD(xb + (long)p * C + c));
      ST(o + c, MUL(ADD(s0, s1), inv));
    }
    for (; c < C; c++) {
      float s = 0.0f;
      for (int p = 0; p < hw; p++) s += xb[(long)p * C + c];
      o[c] = s * (1.0f / (float)hw);
    }
  }
}

// dx[b, p, c] = dout[b, c] / hw, times (xr > 0) if xr is given.
EXPORT void global_avg_pool_backward(const float *dout, int hw, int C, int n, float *dx, const float *xr) {
  float inv = 1.0f / (float)hw;
  for (int b = 0; b < n; b++) {
    const float *d = dout + (long)b * C;
    for (int p = 0; p < hw; p++) {
      long at = ((long)b * hw + p) * C;
      int c = 0;
      for (; c + 4 <= C; c += 4) {
        vf g = MUL(LD(d + c), SPLAT(inv));
        ST(dx + at + c, xr ? KEEP(g, POSITIVE(xr + at + c)) : g);
      }
      for (; c < C; c++) dx[at + c] = xr && !(xr[at + c] > 0.0f) ? 0.0f : d[c] * inv;
    }
  }
}

// Batch normalisation over `rows` rows (n * H * W pixels, or n examples after
// a dense layer) of C channels. Training: threads each take a share of the
// rows (bn_sums), the engine adds their partial sums and turns them into
// statistics (bn_stats), then each thread normalises its rows
// (bn_forward_train). Backward likewise: bn_grad_sums partials, summed, then
// bn_grad_input. Rows go in blocks of BN_BLOCK so a block's channels stay in
// cache while each 4-channel group runs down its rows in registers; the
// two-level sums also lose less precision than one long running sum.
#define BN_BLOCK 32

// sum[c] = sum over rows of (x - shift[c]); sumsq[c] = sum of (x - shift[c])^2.
// shift (0: none) should be near the channel means (the moving means, say):
// the variance is then taken from small numbers, without cancellation.
EXPORT void bn_sums(const float *x, int rows, int C, const float *shift, float *sum, float *sumsq) {
  ly_zero(sum, C);
  ly_zero(sumsq, C);
  for (int r0 = 0; r0 < rows; r0 += BN_BLOCK) {
    int r1 = ly_min(r0 + BN_BLOCK, rows);
    int c = 0;
    // Four 4-channel groups side by side: four independent chains of adds
    // instead of one waiting on the last (each group's sums in the same order).
    for (; c + 16 <= C; c += 16) {
      vf s[4], a[4], a2[4];
      for (int i = 0; i < 4; i++) s[i] = shift ? LD(shift + c + 4 * i) : SPLAT(0.0f), a[i] = a2[i] = SPLAT(0.0f);
      for (int r = r0; r < r1; r++)
        for (int i = 0; i < 4; i++) {
          vf v = SUB(LD(x + (long)r * C + c + 4 * i), s[i]);
          a[i] = ADD(a[i], v);
          a2[i] = ADD(a2[i], MUL(v, v));
        }
      for (int i = 0; i < 4; i++) {
        ST(sum + c + 4 * i, ADD(LD(sum + c + 4 * i), a[i]));
        ST(sumsq + c + 4 * i, ADD(LD(sumsq + c + 4 * i), a2[i]));
      }
    }
    for (; c + 4 <= C; c += 4) {
      vf s = shift ? LD(shift + c) : SPLAT(0.0f), a = SPLAT(0.0f), a2 = SPLAT(0.0f);
      for (int r = r0; r < r1; r++) {
        vf v = SUB(LD(x + (long)r * C + c), s);
        a = ADD(a, v);
        a2 = ADD(a2, MUL(v, v));
      }
      ST(sum + c, ADD(LD(sum + c), a));
      ST(sumsq + c, ADD(LD(sumsq + c), a2));
    }
    for (; c < C; c++) {
      float s = shift ? shift[c] : 0.0f, a = 0.0f, a2 = 0.0f;
      for (int r = r0; r < r1; r++) {
        float v = x[(long)r * C + c] - s;
        a += v;
        a2 += v * v;
      }
      sum[c] += a;
      sumsq[c] += a2;
    }
  }
}

// From the summed partials of bn_sums over all `count` rows (and the same
// shift): the batch mean, its biased variance (TF's moments) and
// invstd = 1 / sqrt(variance + eps). variance may be 0 (not wanted).
EXPORT void bn_stats(int C, int count, const float *sum, const float *sumsq, const float *shift, float eps, float *mean,
                     float *variance, float *invstd) {
  for (int c = 0; c < C; c++) {
    double m = (double)sum[c] / count;
    double var = (double)sumsq[c] / count - m * m;
    if (var < 0.0) var = 0.0;
    mean[c] = (float)((shift ? shift[c] : 0.0f) + m);
    if (variance) variance[c] = (float)var;
    invstd[c] = (float)(1.0 / __builtin_sqrt(var + (double)eps));
  }
}

// The moving statistics' update as tfjs-layers' BatchNormalization makes it in
// training: moving -= (moving - batch) * (1 - momentum).
EXPORT void bn_moving(int C, const float *mean, const float *variance, float momentum, float *movingMean,
                      float *movingVariance) {
  float decay = 1.0f - momentum;
  for (int c = 0; c < C; c++) {
    movingMean[c] -= (movingMean[c] - mean[c]) * decay;
    movingVariance[c] -= (movingVariance[c] - variance[c]) * decay;
  }
}

// out = act(gamma (x - mean) invstd + beta); gamma 0: ones, beta 0: zeros.
static void bn_apply(const float *x, int rows, int C, const float *mean, const float *invstd, const float *gamma,
                     const float *beta, float *out, int relu) {
  for (int r0 = 0; r0 < rows; r0 += BN_BLOCK) {
    int r1 = ly_min(r0 + BN_BLOCK, rows);
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      vf m = LD(mean + c), s = LD(invstd + c);
      if (gamma) s = MUL(s, LD(gamma + c));
      vf t = beta ? LD(beta + c) : SPLAT(0.0f);
      for (int r = r0; r < r1; r++) {
        vf y = ADD(MUL(SUB(LD(x + (long)r * C + c), m), s), t);
        ST(out + (long)r * C + c, relu ? MAXZ(y) : y);
      }
    }
    for (; c < C; c++) {
      float m = mean[c], s = invstd[c] * (gamma ? gamma[c] : 1.0f), t = beta ? beta[c] : 0.0f;
      for (int r = r0; r < r1; r++) {
        float y = (x[(long)r * C + c] - m) * s + t;
        out[(long)r * C + c] = relu && y < 0.0f ? 0.0f : y;
      }
    }
  }
}

// Training-mode forward with the batch statistics of bn_stats.
EXPORT void bn_forward_train(const float *x, int rows, int C, const float *mean, const float *invstd,
                             const float *gamma, const float *beta, float *out, int relu) {
  bn_apply(x, rows, C, mean, invstd, gamma, beta, out, relu);
}

// Inference-mode forward with the moving statistics. scratch: C floats.
EXPORT void bn_forward_infer(const float *x, int rows, int C, const float *mean, const float *variance, float eps,
                             const float *gamma, const float *beta, float *out, int relu, float *scratch) {
  for (int c = 0; c < C; c++) scratch[c] = 1.0f / __builtin_sqrtf(variance[c] + eps);
  bn_apply(x, rows, C, mean, scratch, gamma, beta, out, relu);
}

// Per-channel partials of the parameter gradients over these rows:
// dgamma = sum of dout * (x - mean) * invstd, dbeta = sum of dout (overwritten).
EXPORT void bn_grad_sums(const float *x, const float *dout, int rows, int C, const float *mean, const float *invstd,
                         float *dgamma, float *dbeta) {
  ly_zero(dgamma, C);
  ly_zero(dbeta, C);
  for (int r0 = 0; r0 < rows; r0 += BN_BLOCK) {
    int r1 = ly_min(r0 + BN_BLOCK, rows);
    int c = 0;
    // As bn_sums: four channel groups' chains side by side.
    for (; c + 16 <= C; c += 16) {
      vf m[4], g[4], bsum[4];
      for (int i = 0; i < 4; i++) m[i] = LD(mean + c + 4 * i), g[i] = bsum[i] = SPLAT(0.0f);
      for (int r = r0; r < r1; r++)
        for (int i = 0; i < 4; i++) {
          vf d = LD(dout + (long)r * C + c + 4 * i);
          g[i] = ADD(g[i], MUL(d, SUB(LD(x + (long)r * C + c + 4 * i), m[i])));
          bsum[i] = ADD(bsum[i], d);
        }
      for (int i = 0; i < 4; i++) {
        ST(dgamma + c + 4 * i, ADD(LD(dgamma + c + 4 * i), g[i]));
        ST(dbeta + c + 4 * i, ADD(LD(dbeta + c + 4 * i), bsum[i]));
      }
    }
    for (; c + 4 <= C; c += 4) {
      vf m = LD(mean + c), g = SPLAT(0.0f), bsum = SPLAT(0.0f);
      for (int r = r0; r < r1; r++) {
        vf d = LD(dout + (long)r * C + c);
        g = ADD(g, MUL(d, SUB(LD(x + (long)r * C + c), m)));
        bsum = ADD(bsum, d);
      }
      ST(dgamma + c, ADD(LD(dgamma + c), g));
      ST(dbeta + c, ADD(LD(dbeta + c), bsum));
    }
    for (; c < C; c++) {
      float m = mean[c], g = 0.0f, bsum = 0.0f;
      for (int r = r0; r < r1; r++) {
        float d = dout[(long)r * C + c];
        g += d * (x[(long)r * C + c] - m);
        bsum += d;
      }
      dgamma[c] += g;
      dbeta[c] += bsum;
    }
  }
  int c = 0;
  for (; c + 4 <= C; c += 4) ST(dgamma + c, MUL(LD(dgamma + c), LD(invstd + c)));
  for (; c < C; c++) dgamma[c] *= invstd[c];
}

// dx of training-mode batch norm (through the batch statistics), from the
// TOTAL dgamma / dbeta over all `count` rows:
// dx = gamma invstd (dout - dbeta / count - xhat dgamma / count), xhat = (x - mean) invstd,
// times (xr > 0) if xr is given. gamma 0: ones.
EXPORT void bn_grad_input(const float *x, const float *dout, int rows, int count, int C, const float *mean,
                          const float *invstd, const float *gamma, const float *dgamma, const float *dbeta, float *dx,
                          const float *xr) {
  float inv = 1.0f / (float)count;
  for (int r0 = 0; r0 < rows; r0 += BN_BLOCK) {
    int r1 = ly_min(r0 + BN_BLOCK, rows);
    int c = 0;
    for (; c + 4 <= C; c += 4) {
      vf s = LD(invstd + c), m = LD(mean + c);
      vf a = gamma ? MUL(LD(gamma + c), s) : s;
      vf mb = MUL(LD(dbeta + c), SPLAT(inv));
      vf mg = MUL(MUL(LD(dgamma + c), SPLAT(inv)), s);
      for (int r = r0; r < r1; r++) {
        long at = (long)r * C + c;
        vf g = MUL(a, SUB(SUB(LD(dout + at), mb), MUL(SUB(LD(x + at), m), mg)));
        ST(dx + at, xr ? KEEP(g, POSITIVE(xr + at)) : g);
      }
    }
    for (; c < C; c++) {
      float s = invstd[c], m = mean[c], a = (gamma ? gamma[c] : 1.0f) * s;
      float mb = dbeta[c] * inv, mg = dgamma[c] * inv * s;
      for (int r = r0; r < r1; r++) {
        long at = (long)r * C + c;
        float g = a * ((dout[at] - mb) - (x[at] - m) * mg);
        dx[at] = xr && !(xr[at] > 0.0f) ? 0.0f : g;
      }
    }
  }
}

// out = act(a + b) over count floats (a residual join).
EXPORT void add_forward(const float *a, const float *b, float *out, int count, int relu) {
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    vf y = ADD(LD(a + i), LD(b + i));
    ST(out + i, relu ? MAXZ(y) : y);
  }
  for (; i < count; i++) {
    float y = a[i] + b[i];
    out[i] = relu && y < 0.0f ? 0.0f : y;
  }
}

// d *= (act > 0) in place: a ReLU's gradient, where no kernel fused it.
EXPORT void relu_mask(const float *act, float *d, int count) {
  int i = 0;
  for (; i + 4 <= count; i += 4) ST(d + i, KEEP(LD(d + i), POSITIVE(act + i)));
  for (; i < count; i++) if (!(act[i] > 0.0f)) d[i] = 0.0f;
}

// dst += src over count floats (per-thread gradients, two consumers of a tensor).
EXPORT void sum_into(float *dst, const float *src, int count) {
  int i = 0;
  for (; i + 16 <= count; i += 16) {
    ST(dst + i, ADD(LD(dst + i), LD(src + i)));
    ST(dst + i + 4, ADD(LD(dst + i + 4), LD(src + i + 4)));
    ST(dst + i + 8, ADD(LD(dst + i + 8), LD(src + i + 8)));
    ST(dst + i + 12, ADD(LD(dst + i + 12), LD(src + i + 12)));
  }
  for (; i + 4 <= count; i += 4) ST(dst + i, ADD(LD(dst + i), LD(src + i)));
  for (; i < count; i++) dst[i] += src[i];
}
