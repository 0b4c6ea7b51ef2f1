// Conv2D (and depthwise Conv2D, multiplier 1) forward pass with fused bias
// and ReLU, weight and bias gradients, and input gradient with the ReLU of
// the input fused; the wrappers are src/engine/training/cnn/kernels/conv.ts.
//
// Every export takes the geometry as (n, H, W, C, KH, KW, O, sh, sw, pt, pl,
// OH, OW): n images of H x W x C in, OH x OW x O out, kernels [KH, KW, C, O]
// (depthwise: [KH, KW, C, 1] and O = C), strides sh, sw, and the padding
// before the first row / column pt, pl (TF's 'same' rule, or 0 for 'valid').
//
// All three passes are written as "weighted rows" (as mlp.c's dense layer):
// a destination vector held in registers plus a list of (source offset,
// scalar) pairs, where only nonzero scalars enter the list. Which operand
// supplies the scalars decides what gets skipped:
// - forward: the input pixels' channels under the window (ReLU outputs, ~50%
//   zero) scale rows of the kernel; output channels sit in registers.
// - weight gradient: either the output gradient (after a max-pool ~75% zero)
//   scales input rows [KW * C] into a transposed kernel row, or the input
//   scales output-gradient rows [O] into a kernel row; the sparser operand
//   with rows long enough for SIMD picks the variant at run time.
// - input gradient: the output gradient's nonzeros scale rows [KW * C] of
//   the transposed kernel into a zero-padded input-gradient image.
// Results are those of the dense maths: skipped terms are exact zeros.
// The forward pass has a dense path too (convd_*, a register-blocked tile
// over packed kernel panels), taken unless the lists measure faster; so do
// both gradients (convw_*, and convd_* on the output gradient at stride 1),
// taken where the output gradient has few zeros (behind a BatchNorm).

typedef struct {
  int H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW;
  int Hp, Wp;  // the zero-padded input's extent (covers every window)
} conv_geo;

static conv_geo conv_geometry(int H, int W, int C, int KH, int KW, int O, int sh, int sw, int pt, int pl, int OH,
                              int OW) {
  conv_geo g = {H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW, 0, 0};
  int hp = (OH - 1) * sh + KH, wp = (OW - 1) * sw + KW;
  g.Hp = hp > pt + H ? hp : pt + H;
  g.Wp = wp > pl + W ? wp : pl + W;
  return g;
}

static inline int conv_round4(int n) { return (n + 3) & ~3; }

// o[0 .. n) = act(init[0 .. n) + sum over k < nz of val[k] * src[idx[k] + (0 .. n)]):
// idx are element offsets into src, init may be null (zeros) or equal to o.
static void conv_rows(float *o, const float *init, const float *src, int n, const int *idx, const float *val,
                      int nz, int relu) {
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
      const float *r = src + idx[k] + j;
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
  for (; j + 16 <= n; j += 16) {
    vf a0, a1, a2, a3;
    if (init) {
      a0 = LD(init + j); a1 = LD(init + j + 4); a2 = LD(init + j + 8); a3 = LD(init + j + 12);
    } else {
      a0 = a1 = a2 = a3 = SPLAT(0.0f);
    }
    for (int k = 0; k < nz; k++) {
      const float *r = src + idx[k] + j;
      vf s = SPLAT(val[k]);
      a0 = FMA(a0, s, LD(r)); a1 = FMA(a1, s, LD(r + 4));
      a2 = FMA(a2, s, LD(r + 8)); a3 = FMA(a3, s, LD(r + 12));
    }
    if (relu) {
      a0 = MAXZ(a0); a1 = MAXZ(a1); a2 = MAXZ(a2); a3 = MAXZ(a3);
    }
    ST(o + j, a0); ST(o + j + 4, a1); ST(o + j + 8, a2); ST(o + j + 12, a3);
  }
  for (; j + 4 <= n; j += 4) {
    vf a0 = init ? LD(init + j) : SPLAT(0.0f);
    for (int k = 0; k < nz; k++) a0 = FMA(a0, SPLAT(val[k]), LD(src + idx[k] + j));
    ST(o + j, relu ? MAXZ(a0) : a0);
  }
  for (; j < n; j++) {
    float a = init ? init[j] : 0.0f;
    for (int k = 0; k < nz; k++) a += val[k] * src[idx[k] + j];
    o[j] = relu && a < 0.0f ? 0.0f : a;
  }
}

// o[0 .. n) = act(init + sum over taps t < nt, k < cnt[t] of val[t][k] * src[off[t] + idx[t][k] + (0 .. n)]):
// the forward pass of one output pixel, the window's input pixels given as
// lists of their nonzero channels (built once per image), so no per-pixel list.
static void conv_taps(float *o, const float *init, const float *src, int n, const int *off, const int *const *idx,
                      const float *const *val, const int *cnt, int nt, int relu) {
  int j = 0;
  for (; j + 32 <= n; j += 32) {
    vf a0, a1, a2, a3, a4, a5, a6, a7;
    if (init) {
      a0 = LD(init + j); a1 = LD(init + j + 4); a2 = LD(init + j + 8); a3 = LD(init + j + 12);
      a4 = LD(init + j + 16); a5 = LD(init + j + 20); a6 = LD(init + j + 24); a7 = LD(init + j + 28);
    } else {
      a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = SPLAT(0.0f);
    }
    for (int t = 0; t < nt; t++) {
      const float *base = src + off[t] + j;
      const int *ix = idx[t];
      const float *vv = val[t];
      for (int k = 0, m = cnt[t]; k < m; k++) {
        const float *r = base + ix[k];
        vf s = SPLAT(vv[k]);
        a0 = FMA(a0, s, LD(r)); a1 = FMA(a1, s, LD(r + 4));
        a2 = FMA(a2, s, LD(r + 8)); a3 = FMA(a3, s, LD(r + 12));
        a4 = FMA(a4, s, LD(r + 16)); a5 = FMA(a5, s, LD(r + 20));
        a6 = FMA(a6, s, LD(r + 24)); a7 = FMA(a7, s, LD(r + 28));
      }
    }
    if (relu) {
      a0 = MAXZ(a0); a1 = MAXZ(a1); a2 = MAXZ(a2); a3 = MAXZ(a3);
      a4 = MAXZ(a4); a5 = MAXZ(a5); a6 = MAXZ(a6); a7 = MAXZ(a7);
    }
    ST(o + j, a0); ST(o + j + 4, a1); ST(o + j + 8, a2); ST(o + j + 12, a3);
    ST(o + j + 16, a4); ST(o + j + 20, a5); ST(o + j + 24, a6); ST(o + j + 28, a7);
  }
  for (; j + 16 <= n; j += 16) {
    vf a0, a1, a2, a3;
    if (init) {
      a0 = LD(init + j); a1 = LD(init + j + 4); a2 = LD(init + j + 8); a3 = LD(init + j + 12);
    } else {
      a0 = a1 = a2 = a3 = SPLAT(0.0f);
    }
    for (int t = 0; t < nt; t++) {
      const float *base = src + off[t] + j;
      for (int k = 0, m = cnt[t]; k < m; k++) {
        const float *r = base + idx[t][k];
        vf s = SPLAT(val[t][k]);
        a0 = FMA(a0, s, LD(r)); a1 = FMA(a1, s, LD(r + 4));
        a2 = FMA(a2, s, LD(r + 8)); a3 = FMA(a3, s, LD(r + 12));
      }
    }
    if (relu) {
      a0 = MAXZ(a0); a1 = MAXZ(a1); a2 = MAXZ(a2); a3 = MAXZ(a3);
    }
    ST(o + j, a0); ST(o + j + 4, a1); ST(o + j + 8, a2); ST(o + j + 12, a3);
  }
  for (; j + 4 <= n; j += 4) {
    vf a0 = init ? LD(init + j) : SPLAT(0.0f);
    for (int t = 0; t < nt; t++)
      for (int k = 0, m = cnt[t]; k < m; k++) a0 = FMA(a0, SPLAT(val[t][k]), LD(src + off[t] + idx[t][k] + j));
    ST(o + j, relu ? MAXZ(a0) : a0);
  }
  for (; j < n; j++) {
    float a = init ? init[j] : 0.0f;
    for (int t = 0; t < nt; t++)
      for (int k = 0, m = cnt[t]; k < m; k++) a += val[t][k] * src[off[t] + idx[t][k] + j];
    o[j] = relu && a < 0.0f ? 0.0f : a;
  }
}

// Two horizontally adjacent output pixels at once (o0, o1), their windows'
// input pixels given tap by tap as one list over the channels where either
// is nonzero (values v0, v1): each kernel row loaded serves both pixels.
static void conv_taps2(float *o0, float *o1, const float *init, const float *src, int n, const int *off,
                       const int *const *idx, const float *const *v0, const float *const *v1, const int *cnt, int nt,
                       int relu) {
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    vf a0, a1, a2, a3, b0, b1, b2, b3;
    if (init) {
      a0 = b0 = LD(init + j); a1 = b1 = LD(init + j + 4); a2 = b2 = LD(init + j + 8); a3 = b3 = LD(init + j + 12);
    } else {
      a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = SPLAT(0.0f);
    }
    for (int t = 0; t < nt; t++) {
      const float *base = src + off[t] + j;
      const int *ix = idx[t];
      const float *p0 = v0[t], *p1 = v1[t];
      for (int k = 0, m = cnt[t]; k < m; k++) {
        const float *r = base + ix[k];
        vf s = SPLAT(p0[k]), u = SPLAT(p1[k]);
        vf w0 = LD(r), w1 = LD(r + 4), w2 = LD(r + 8), w3 = LD(r + 12);
        a0 = FMA(a0, s, w0); a1 = FMA(a1, s, w1); a2 = FMA(a2, s, w2); a3 = FMA(a3, s, w3);
        b0 = FMA(b0, u, w0); b1 = FMA(b1, u, w1); b2 = FMA(b2, u, w2); b3 = FMA(b3, u, w3);
      }
    }
    if (relu) {
      a0 = MAXZ(a0); a1 = MAXZ(a1); a2 = MAXZ(a2); a3 = MAXZ(a3);
      b0 = MAXZ(b0); b1 = MAXZ(b1); b2 = MAXZ(b2); b3 = MAXZ(b3);
    }
    ST(o0 + j, a0); ST(o0 + j + 4, a1); ST(o0 + j + 8, a2); ST(o0 + j + 12, a3);
    ST(o1 + j, b0); ST(o1 + j + 4, b1); ST(o1 + j + 8, b2); ST(o1 + j + 12, b3);
  }
  for (; j + 4 <= n; j += 4) {
    vf a = init ? LD(init + j) : SPLAT(0.0f), b = a;
    for (int t = 0; t < nt; t++)
      for (int k = 0, m = cnt[t]; k < m; k++) {
        vf w0 = LD(src + off[t] + idx[t][k] + j);
        a = FMA(a, SPLAT(v0[t][k]), w0);
        b = FMA(b, SPLAT(v1[t][k]), w0);
      }
    ST(o0 + j, relu ? MAXZ(a) : a);
    ST(o1 + j, relu ? MAXZ(b) : b);
  }
  for (; j < n; j++) {
    float a = init ? init[j] : 0.0f, b = a;
    for (int t = 0; t < nt; t++)
      for (int k = 0, m = cnt[t]; k < m; k++) {
        float w0 = src[off[t] + idx[t][k] + j];
        a += v0[t][k] * w0;
        b += v1[t][k] * w0;
      }
    o0[j] = relu && a < 0.0f ? 0.0f : a;
    o1[j] = relu && b < 0.0f ? 0.0f : b;
  }
}

// xp[Hp, Wp, C] = image x[H, W, C] placed at (pt, pl), zeros around it.
static void conv_pad(const conv_geo *g, const float *x, float *xp) {
  int C = g->C, row = g->W * C;
  __builtin_memset(xp, 0, sizeof(float) * (long)g->Hp * g->Wp * C);
  for (int y = 0; y < g->H; y++)
    __builtin_memcpy(xp + ((long)(y + g->pt) * g->Wp + g->pl) * C, x + (long)y * row, sizeof(float) * row);
}

// dx[H, W, C] = the (pt, pl)-offset interior of dxp[Hp, Wp, C], times (x > 0) if x.
static void conv_crop(const conv_geo *g, const float *dxp, const float *x, float *dx) {
  int C = g->C, row = g->W * C;
  for (int y = 0; y < g->H; y++) {
    const float *s = dxp + ((long)(y + g->pt) * g->Wp + g->pl) * C;
    float *d = dx + (long)y * row;
    if (!x) {
      __builtin_memcpy(d, s, sizeof(float) * row);
      continue;
    }
    const float *a = x + (long)y * row;
    int j = 0;
    for (; j + 4 <= row; j += 4)
      ST(d + j, wasm_v128_and(LD(s + j), wasm_f32x4_gt(LD(a + j), SPLAT(0.0f))));
    for (; j < row; j++) d[j] = a[j] > 0.0f ? s[j] : 0.0f;
  }
}

// ---- depthwise (multiplier 1): channels in SIMD lanes, nothing skipped ----

static void dw_forward(const conv_geo *g, int n, const float *x, const float *w, const float *bias, float *out,
                       int relu, float *xp) {
  int C = g->C;
  for (int b = 0; b < n; b++) {
    conv_pad(g, x + (long)b * g->H * g->W * C, xp);
    for (int oy = 0; oy < g->OH; oy++)
      for (int ox = 0; ox < g->OW; ox++) {
        float *o = out + (((long)b * g->OH + oy) * g->OW + ox) * C;
        const float *base = xp + ((long)oy * g->sh * g->Wp + (long)ox * g->sw) * C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          vf a = bias ? LD(bias + c) : SPLAT(0.0f);
          for (int ky = 0; ky < g->KH; ky++)
            for (int kx = 0; kx < g->KW; kx++)
              a = FMA(a, LD(base + ((long)ky * g->Wp + kx) * C + c), LD(w + (ky * g->KW + kx) * C + c));
          ST(o + c, relu ? MAXZ(a) : a);
        }
        for (; c < C; c++) {
          float a = bias ? bias[c] : 0.0f;
          for (int ky = 0; ky < g->KH; ky++)
            for (int kx = 0; kx < g->KW; kx++)
              a += base[((long)ky * g->Wp + kx) * C + c] * w[(ky * g->KW + kx) * C + c];
          o[c] = relu && a < 0.0f ? 0.0f : a;
        }
      }
  }
}

static void dw_grad_weights(const conv_geo *g, int n, const float *x, const float *dout, float *dw, float *xp) {
  int C = g->C, T = g->KH * g->KW;
  __builtin_memset(dw, 0, sizeof(float) * T * C);
  for (int b = 0; b < n; b++) {
    conv_pad(g, x + (long)b * g->H * g->W * C, xp);
    for (int oy = 0; oy < g->OH; oy++)
      for (int ox = 0; ox < g->OW; ox++) {
        const float *d = dout + (((long)b * g->OH + oy) * g->OW + ox) * C;
        const float *base = xp + ((long)oy * g->sh * g->Wp + (long)ox * g->sw) * C;
        for (int t = 0; t < T; t++) {
          const float *xs = base + ((long)(t / g->KW) * g->Wp + t % g->KW) * C;
          float *r = dw + t * C;
          int c = 0;
          for (; c + 4 <= C; c += 4) ST(r + c, FMA(LD(r + c), LD(xs + c), LD(d + c)));
          for (; c < C; c++) r[c] += xs[c] * d[c];
        }
      }
  }
}

static void dw_grad_input(const conv_geo *g, int n, const float *dout, const float *w, float *dx, const float *x,
                          float *dxp) {
  int C = g->C, T = g->KH * g->KW;
  for (int b = 0; b < n; b++) {
    __builtin_memset(dxp, 0, sizeof(float) * (long)g->Hp * g->Wp * C);
    for (int oy = 0; oy < g->OH; oy++)
      for (int ox = 0; ox < g->OW; ox++) {
        const float *d = dout + (((long)b * g->OH + oy) * g->OW + ox) * C;
        float *base = dxp + ((long)oy * g->sh * g->Wp + (long)ox * g->sw) * C;
        for (int t = 0; t < T; t++) {
          float *r = base + ((long)(t / g->KW) * g->Wp + t % g->KW) * C;
          const float *ws = w + t * C;
          int c = 0;
          for (; c + 4 <= C; c += 4) ST(r + c, FMA(LD(r + c), LD(ws + c), LD(d + c)));
          for (; c < C; c++) r[c] += ws[c] * d[c];
        }
      }
    long img = (long)b * g->H * g->W * C;
    conv_crop(g, dxp, x ? x + img : 0, dx + img);
  }
}

// ---- dense inputs: register-blocked direct convolution ----
//
// Where the inputs have few zeros (first layers on pixels, 1x1 convs after
// batch norm) the lists above cost more than they skip. This path is a
// GEMM over the zero-padded image without an im2col copy: for output pixel
// (oy, ox) and kernel row ky, the KW * C inputs under the window are
// contiguous in xp, and so are the matching kernel rows. The kernel is packed
// into panels of 8 output channels [K = KH * KW * C][8] (18 KiB at K = 576,
// L1-sized), and a tile of CONVD_NP adjacent output pixels x 8 channels is
// held in registers: each k loads 2 weight vectors for CONVD_NP broadcast inputs.

#ifndef CONVD_NP
#define CONVD_NP 4
#endif

// Whether skipping the inputs' zeros (the lists below) beats the dense tile:
// measured on 32x32 and 8x8 images at batch 60, the lists win only for a
// 3x3-like stride-1 kernel with 8+ input and 16 - 64 output channels, and
// then only once more than ~55% of the inputs are zero (64 -> 64 at 75%
// zeros: 0.74x with the tile, at 50%: 1.0x, at 20%: 1.35x). Stride 2, 1x1
// kernels, a few input channels (pixels: 1.3x - 2.4x even at 80% zeros),
// fewer than 16 or more than 64 output channels: the tile always (up to 18x
// on LeNet-5's 1 -> 6, where the lists leave SIMD lanes empty).
static int convd_skips(const conv_geo *g, int n, const float *x) {
  if (g->sh * g->sw != 1 || g->KH * g->KW == 1 || g->C < 8 || g->O < 16 || g->O > 64) return 0;
  long all = (long)n * g->H * g->W * g->C, nz = 0;
  for (long i = 0; i < all; i++) nz += x[i] != 0.0f;
  return nz * 20 < all * 9;  // fewer than 45% nonzero
}

// wp[jb][k][l] = w[k][8 jb + l] (zero past O).
static void convd_pack(const float *w, int K, int O, float *wp) {
  int panels = (O + 7) / 8;
  for (int jb = 0; jb < panels; jb++) {
    float *d = wp + (long)jb * K * 8;
    for (int k = 0; k < K; k++)
      for (int l = 0; l < 8; l++) d[(long)k * 8 + l] = jb * 8 + l < O ? w[(long)k * O + jb * 8 + l] : 0.0f;
  }
}

// NP output pixels (their windows' corners in xp xs apart) x the 8 channels of
// one panel: o[i * O + l] = act(b8[l] + sum over ky, r of x[ky * rowStep + r] * wp[(ky * run + r) * 8 + l]).
static inline __attribute__((always_inline)) void convd_tile(int NP, const float *x, int xs, int rowStep, int run,
                                                            int KH, const float *wp, const float *b8, float *o, int O,
                                                            int nb, int relu) {
  vf a[CONVD_NP], c[CONVD_NP];
  vf i0 = LD(b8), i1 = LD(b8 + 4);
  for (int i = 0; i < NP; i++) a[i] = i0, c[i] = i1;
  for (int ky = 0; ky < KH; ky++) {
    const float *xr = x + (long)ky * rowStep;
    const float *wr = wp + (long)ky * run * 8;
    for (int r = 0; r < run; r++) {
      vf w0 = LD(wr + r * 8), w1 = LD(wr + r * 8 + 4);
      for (int i = 0; i < NP; i++) {
        vf s = wasm_v128_load32_splat(xr + i * xs + r);
        a[i] = FMA(a[i], s, w0);
        c[i] = FMA(c[i], s, w1);
      }
    }
  }
  for (int i = 0; i < NP; i++) {
    if (relu) a[i] = MAXZ(a[i]), c[i] = MAXZ(c[i]);
    if (nb == 8) {
      ST(o + (long)i * O, a[i]);
      ST(o + (long)i * O + 4, c[i]);
    } else {
      float t[8];
      ST(t, a[i]);
      ST(t + 4, c[i]);
      for (int l = 0; l < nb; l++) o[(long)i * O + l] = t[l];
    }
  }
}

// The forward pass of n images on dense inputs. scratch: the padded image, then the packed panels.
static void convd_forward(const conv_geo *g, int n, const float *x, const float *w, const float *bias, float *out,
                          int relu, float *scratch) {
  int C = g->C, O = g->O, K = g->KH * g->KW * C, run = g->KW * C, rowStep = g->Wp * C, xs = g->sw * C;
  int panels = (O + 7) / 8;
  float *xp = scratch, *wp = scratch + conv_round4(g->Hp * g->Wp * C);
  convd_pack(w, K, O, wp);
  for (int b = 0; b < n; b++) {
    conv_pad(g, x + (long)b * g->H * g->W * C, xp);
    for (int jb = 0; jb < panels; jb++) {
      int j0 = jb * 8, nb = O - j0 < 8 ? O - j0 : 8;
      float b8[8];
      for (int l = 0; l < 8; l++) b8[l] = bias && l < nb ? bias[j0 + l] : 0.0f;
      const float *pw = wp + (long)jb * K * 8;
      for (int oy = 0; oy < g->OH; oy++) {
        const float *xr = xp + (long)oy * g->sh * rowStep;
        float *o = out + (((long)b * g->OH + oy) * g->OW) * O + j0;
        int ox = 0;
        for (; ox + CONVD_NP <= g->OW; ox += CONVD_NP)
          convd_tile(CONVD_NP, xr + (long)ox * xs, xs, rowStep, run, g->KH, pw, b8, o + (long)ox * O, O, nb, relu);
        for (; ox < g->OW; ox++)
          convd_tile(1, xr + (long)ox * xs, xs, rowStep, run, g->KH, pw, b8, o + (long)ox * O, O, nb, relu);
      }
    }
  }
}

// ---- dense gradients: register-blocked GEMMs ----
//
// Behind BatchNorm (ResNets) a conv's output gradient has no zeros, and
// its inputs are ~50% zero: the lists above then skip little and pay a
// list entry and a short row (KW * C or O floats) per nonzero. These two
// passes do the dense maths with every loaded vector used several times.

// Rows per weight-gradient tile: 2 x 4 vectors keeps the 8 sums, 4 gradient
// vectors and a broadcast in V8's 16 SIMD registers; 3 x 4 spills (measured
// 1.1x - 2x slower on ResNet-20's layers).
#ifndef CONVW_R
#define CONVW_R 2
#endif

// R kernel rows (input channels c0 .. c0 + R of one tap) x NV vectors of
// output channels: acc[r][v] += x[p, r] * d[p, 4 v ..] over every output
// pixel p of one image. xs: the tap's first channel in the padded image at
// output pixel (0, 0); d: the image's output gradient, rows of O4 floats.
static inline __attribute__((always_inline)) void convw_tile(int R, int NV, const conv_geo *g, const float *xs,
                                                            const float *d, int O4, float *dw) {
  vf a[CONVW_R][4];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) a[r][v] = LD(dw + (long)r * O4 + 4 * v);
  int C = g->C, rowStep = g->sh * g->Wp * C, colStep = g->sw * C;
  for (int oy = 0; oy < g->OH; oy++) {
    const float *xr = xs + (long)oy * rowStep;
    const float *dr = d + (long)oy * g->OW * O4;
    for (int ox = 0; ox < g->OW; ox++) {
      const float *xp = xr + (long)ox * colStep, *dp = dr + (long)ox * O4;
      vf dv[4];
      for (int v = 0; v < NV; v++) dv[v] = LD(dp + 4 * v);
      for (int r = 0; r < R; r++) {
        vf s = wasm_v128_load32_splat(xp + r);
        for (int v = 0; v < NV; v++) a[r][v] = FMA(a[r][v], s, dv[v]);
      }
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) ST(dw + (long)r * O4 + 4 * v, a[r][v]);
}

#define CONVW_CASE(R, NV) \
  case (R) * 8 + (NV): convw_tile((R), (NV), g, xs, d0, O4, dwr); break;

// dw[T * C, O4] += the weight gradient of one image (xp padded, d its output gradient with rows of O4 floats).
static void convw_image(const conv_geo *g, const float *xp, const float *d, int O4, float *dw) {
  int C = g->C, T = g->KH * g->KW;
  for (int t = 0; t < T; t++) {
    const float *xt = xp + ((long)(t / g->KW) * g->Wp + t % g->KW) * C;
    for (int c0 = 0; c0 < C; c0 += CONVW_R) {
      int R = C - c0 < CONVW_R ? C - c0 : CONVW_R;
      for (int o0 = 0; o0 < O4; o0 += 16) {
        int NV = (O4 - o0) / 4 < 4 ? (O4 - o0) / 4 : 4;
        const float *xs = xt + c0, *d0 = d + o0;
        float *dwr = dw + ((long)t * C + c0) * O4 + o0;
        switch (R * 8 + NV) {
          CONVW_CASE(1, 1) CONVW_CASE(1, 2) CONVW_CASE(1, 3) CONVW_CASE(1, 4)
          CONVW_CASE(2, 1) CONVW_CASE(2, 2) CONVW_CASE(2, 3) CONVW_CASE(2, 4)
#if CONVW_R >= 3
          CONVW_CASE(3, 1) CONVW_CASE(3, 2) CONVW_CASE(3, 3) CONVW_CASE(3, 4)
#endif
        }
      }
    }
  }
}

// The dense weight gradient (dw overwritten). scratch: the padded image,
// then (O not a multiple of 4) the image's gradient and dw with rows of O4.
static void convw_dense(const conv_geo *g, int n, const float *x, const float *dout, float *dw, float *scratch) {
  int C = g->C, O = g->O, O4 = conv_round4(O), P = g->OH * g->OW, K = g->KH * g->KW * C;
  float *xp = scratch, *dq = scratch + conv_round4(g->Hp * g->Wp * C), *wk = O4 == O ? dw : dq + (long)P * O4;
  __builtin_memset(wk, 0, sizeof(float) * (long)K * O4);
  for (int b = 0; b < n; b++) {
    conv_pad(g, x + (long)b * g->H * g->W * C, xp);
    const float *d = dout + (long)b * P * O;
    if (O4 != O) {
      for (int p = 0; p < P; p++)
        for (int o = 0; o < O4; o++) dq[(long)p * O4 + o] = o < O ? d[(long)p * O + o] : 0.0f;
      d = dq;
    }
    convw_image(g, xp, d, O4, wk);
  }
  if (O4 != O)
    for (int k = 0; k < K; k++)
      for (int o = 0; o < O; o++) dw[(long)k * O + o] = wk[(long)k * O4 + o];
}

static long conv_nonzeros(const float *v, long count) {
  long nz = 0;
  for (long i = 0; i < count; i++) nz += v[i] != 0.0f;
  return nz;
}

// Whether the dense weight gradient beats the lists. Costs in vector
// operations: the dense GEMM's multiply-adds, at 0.4 of a list's per vector
// (each loaded vector serves 3 - 12 of them); a list entry costs its row plus
// 2, and the input-side lists a gather per tap, channel and pixel. Measured
// at batch 60 (scripts/bench-conv-kernels.ts): dense 1.4x - 4.6x faster on
// ResNet-20's layers (gradients out of BatchNorm have no zeros) and on a
// 3-channel first layer; the lists stay 2.7x - 3.8x faster on 64 - 256
// channels with a max-pool's 75%-zero gradient (Conv-2/4/6).
static int convw_dense_pays(const conv_geo *g, int n, const float *x, const float *dout) {
  int T = g->KH * g->KW, P = g->OH * g->OW, C = g->C, O = g->O;
  double nzd = (double)conv_nonzeros(dout, (long)n * P * O), nzx = (double)conv_nonzeros(x, (long)n * g->H * g->W * C);
  double byD = nzd * g->KH * ((g->KW * C + 3) / 4 + 2);
  double byX = nzx * ((double)T / (g->sh * g->sw)) * ((O + 3) / 4 + 2) + (double)n * T * C * P;
  double dense = 0.4 * n * P * T * C * ((O + 3) / 4);
  return dense <= (byD < byX ? byD : byX);
}

// Whether the dense input gradient (stride 1) beats the lists: the same
// costs, the dense pass's multiply-adds in panels of 8 at 0.6 of a list's
// (measured: dense 1.3x - 1.6x faster on ResNet-20's 3x3 layers, the lists
// 1.4x - 3.4x faster on Conv-2/4/6's 75%-zero gradients).
static int convi_dense_pays(const conv_geo *g, int n, const float *dout) {
  int T = g->KH * g->KW, C = g->C, O = g->O;
  double nzd = (double)conv_nonzeros(dout, (long)n * g->OH * g->OW * O);
  double lists = nzd * g->KH * ((g->KW * C + 3) / 4 + 2);
  double dense = 0.6 * n * g->H * g->W * T * O * ((C + 7) / 8 * 2);
  return dense <= lists;
}

// The geometry of the input gradient at stride 1 as a forward conv: the
// output gradient (OH x OW x O) correlated with the kernel turned 180 degrees
// and transposed ([KH, KW, O, C]), padded by KH - 1 - pt above and KW - 1 - pl left.
static conv_geo convi_geometry(const conv_geo *g) {
  return conv_geometry(g->OH, g->OW, g->O, g->KH, g->KW, g->C, 1, 1, g->KH - 1 - g->pt, g->KW - 1 - g->pl, g->H, g->W);
}

// The dense input gradient at stride 1 (dx overwritten, times (xRelu > 0) if
// xRelu) through convd_forward. scratch: convd_forward's, then the turned kernel.
static void convi_dense(const conv_geo *g, int n, const float *dout, const float *w, float *dx, const float *xRelu,
                        float *scratch) {
  conv_geo f = convi_geometry(g);
  int C = g->C, O = g->O, KH = g->KH, KW = g->KW;
  float *wf = scratch + conv_round4(f.Hp * f.Wp * O) + (long)(C + 7) / 8 * 8 * KH * KW * O;
  for (int ky = 0; ky < KH; ky++)
    for (int kx = 0; kx < KW; kx++)
      for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
          wf[(((long)ky * KW + kx) * O + o) * C + c] = w[(((long)(KH - 1 - ky) * KW + (KW - 1 - kx)) * C + c) * O + o];
  convd_forward(&f, n, dout, wf, 0, dx, 0, scratch);
  if (!xRelu) return;
  long all = (long)n * g->H * g->W * C, j = 0;
  for (; j + 4 <= all; j += 4) ST(dx + j, wasm_v128_and(LD(dx + j), wasm_f32x4_gt(LD(xRelu + j), SPLAT(0.0f))));
  for (; j < all; j++) dx[j] = xRelu[j] > 0.0f ? dx[j] : 0.0f;
}

// ---- scratch ----

// Floats of scratch the kernels below need (independent of n: they work one image at a time).
EXPORT int conv_scratch_floats(int H, int W, int C, int KH, int KW, int O, int sh, int sw, int pt, int pl, int OH,
                               int OW, int depthwise) {
  conv_geo g = conv_geometry(H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW);
  int T = KH * KW, P = OH * OW, pad = conv_round4(g.Hp * g.Wp * C);
  if (depthwise) return pad;
  int blocks = O > 32 ? (O + 31) / 32 : 0;
  int fwd = 5 * conv_round4(H * W * C) + 2 * conv_round4(H * W) + 5 * conv_round4(T) + blocks * 32 * T * C;
  int dense = pad + (O + 7) / 8 * 8 * T * C;
  if (dense > fwd) fwd = dense;
  int gw = pad + 2 * conv_round4(P * O) + conv_round4(O + 1) + conv_round4(O * T * C);
  int gi = pad + 2 * conv_round4(P * O) + conv_round4(P) + conv_round4(O * T * (C + 31));
  int O4 = conv_round4(O);
  int gwd = pad + conv_round4(P * O4) + T * C * O4;
  if (gwd > gw) gw = gwd;
  if (sh == 1 && sw == 1) {
    conv_geo f = conv_geometry(OH, OW, O, KH, KW, C, 1, 1, KH - 1 - pt, KW - 1 - pl, H, W);
    int gid = conv_round4(f.Hp * f.Wp * O) + (C + 7) / 8 * 8 * T * O + conv_round4(T * O * C);
    if (gid > gi) gi = gid;
  }
  int m = fwd > gw ? fwd : gw;
  return m > gi ? m : gi;
}

// ---- Conv2D ----

// out[b, oy, ox, :] = act(bias + sum over the window's nonzero inputs x of x * w[ky, kx, c, :]).
// scratch: conv_scratch_floats floats.
EXPORT void conv_forward(int n, int H, int W, int C, int KH, int KW, int O, int sh, int sw, int pt, int pl, int OH,
                         int OW, int depthwise, const float *x, const float *w, const float *bias, float *out,
                         int relu, float *scratch) {
  conv_geo g = conv_geometry(H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW);
  if (depthwise) {
    dw_forward(&g, n, x, w, bias, out, relu, scratch);
    return;
  }
  if (!convd_skips(&g, n, x)) {
    convd_forward(&g, n, x, w, bias, out, relu, scratch);
    return;
  }
  // Output channels go in blocks of 32 (the registers of conv_taps), and
  // each block's kernel columns are packed contiguously [KH, KW, C, 32] so
  // that sweeping an image's pixels reuses them from cache: walking the whole
  // unpacked kernel for every pixel streams it from memory once C * O grows.
  // Per image, each input pixel's nonzero channels (offsets c * stride into
  // a kernel tap, values) are listed once; a pixel's window walks its taps' lists.
  int T = KH * KW, HW = H * W, K = T * C;
  int stride = O > 32 ? 32 : O, blocks = (O + stride - 1) / stride, packed = blocks > 1 ? blocks : 0;
  int *lidx = (int *)scratch;
  float *lval = scratch + conv_round4(HW * C);
  int *lcnt = (int *)(lval + conv_round4(HW * C));
  int *off = lcnt + conv_round4(HW);
  const int **tidx = (const int **)(off + conv_round4(T));
  const float **tval = (const float **)(tidx + conv_round4(T));
  int *tcnt = (int *)(tval + conv_round4(T));
  float *wpk = (float *)(tcnt + conv_round4(T));
  // Pair lists: for input pixel q and its partner q + sw (the same tap of the next output pixel), the channels where either is nonzero.
  int *uidx = (int *)(wpk + packed * 32 * K);
  float *uv0 = (float *)(uidx + conv_round4(HW * C));
  float *uv1 = uv0 + conv_round4(HW * C);
  int *ucnt = (int *)(uv1 + conv_round4(HW * C));
  const float **tv1 = (const float **)(ucnt + conv_round4(HW));
  if (blocks > 1) {
    for (int jb = 0; jb < blocks; jb++) {
      int j0 = jb * stride, nb = O - j0 < stride ? O - j0 : stride;
      float *dst = wpk + (long)jb * K * stride;
      for (int r = 0; r < K; r++)
        for (int l = 0; l < stride; l++) dst[(long)r * stride + l] = l < nb ? w[(long)r * O + j0 + l] : 0.0f;
    }
  }
  for (int b = 0; b < n; b++) {
    const float *img = x + (long)b * HW * C;
    long filled = 0;
    for (int q = 0; q < HW; q++) {
      const float *xs = img + (long)q * C;
      int *li = lidx + (long)q * C;
      float *lv = lval + (long)q * C;
      int nz = 0;
      for (int c = 0; c < C; c++) {
        float v = xs[c];
        li[nz] = c * stride;
        lv[nz] = v;
        nz += v != 0.0f;
      }
      lcnt[q] = nz;
      filled += nz;
    }
    // Pairs share each kernel row's loads between two pixels but walk the
    // union of their nonzeros: measured faster on dense inputs (the first
    // layer at C = 3: 1.4x - 2.5x) and no slower on MNIST's 1 channel (80%
    // zero); slower (0.7x - 0.96x) on 50%-zero ReLU outputs with C >= 16.
    int pairs = C < 16 || filled * 4 >= 3L * HW * C;
    for (int q = 0; pairs && q < HW; q++) {
      if (q % W + sw >= W) continue;
      const float *xs = img + (long)q * C, *xt = xs + (long)sw * C;
      int *li = uidx + (long)q * C;
      float *l0 = uv0 + (long)q * C, *l1 = uv1 + (long)q * C;
      int nz = 0;
      for (int c = 0; c < C; c++) {
        float v = xs[c], u = xt[c];
        li[nz] = c * stride;
        l0[nz] = v;
        l1[nz] = u;
        nz += (v != 0.0f) | (u != 0.0f);
      }
      ucnt[q] = nz;
    }
    for (int jb = 0; jb < blocks; jb++) {
      int j0 = jb * stride, nb = O - j0 < stride ? O - j0 : stride;
      const float *wb = blocks > 1 ? wpk + (long)jb * K * stride : w;
      for (int oy = 0; oy < OH; oy++) {
        int y0 = oy * sh - pt;
        for (int ox = 0; ox < OW; ox++) {
          int x0 = ox * sw - pl, nt = 0;
          if (pairs && ox + 1 < OW && x0 >= 0 && x0 + sw + KW <= W) {
            // Both windows inside the image horizontally: one pass for the pair.
            for (int ky = 0; ky < KH; ky++) {
              int iy = y0 + ky;
              if (iy < 0 || iy >= H) continue;
              for (int kx = 0; kx < KW; kx++) {
                int q = iy * W + x0 + kx;
                if (!ucnt[q]) continue;
                off[nt] = (ky * KW + kx) * C * stride;
                tidx[nt] = uidx + (long)q * C;
                tval[nt] = uv0 + (long)q * C;
                tv1[nt] = uv1 + (long)q * C;
                tcnt[nt] = ucnt[q];
                nt++;
              }
            }
            float *o0 = out + (((long)b * OH + oy) * OW + ox) * O + j0;
            conv_taps2(o0, o0 + O, bias ? bias + j0 : 0, wb, nb, off, tidx, tval, tv1, tcnt, nt, relu);
            ox++;
            continue;
          }
          for (int ky = 0; ky < KH; ky++) {
            int iy = y0 + ky;
            if (iy < 0 || iy >= H) continue;
            for (int kx = 0; kx < KW; kx++) {
              int ix = x0 + kx, q = iy * W + ix;
              if (ix < 0 || ix >= W || !lcnt[q]) continue;
              off[nt] = (ky * KW + kx) * C * stride;
              tidx[nt] = lidx + (long)q * C;
              tval[nt] = lval + (long)q * C;
              tcnt[nt] = lcnt[q];
              nt++;
            }
          }
          conv_taps(out + (((long)b * OH + oy) * OW + ox) * O + j0, bias ? bias + j0 : 0, wb, nb, off, tidx, tval,
                    tcnt, nt, relu);
        }
      }
    }
  }
}

// dw = sum over images and output pixels of x (window) outer dout; db = sum of dout (if db).
// Both overwritten. scratch: conv_scratch_floats floats.
EXPORT void conv_grad_weights(int n, int H, int W, int C, int KH, int KW, int O, int sh, int sw, int pt, int pl,
                              int OH, int OW, int depthwise, const float *x, const float *dout, float *dw, float *db,
                              float *scratch) {
  conv_geo g = conv_geometry(H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW);
  int T = KH * KW, P = OH * OW, KC = KW * C;
  long imgIn = (long)H * W * C, imgOut = (long)P * O;
  if (db) {
    __builtin_memset(db, 0, sizeof(float) * O);
    for (long r = 0; r < (long)n * P; r++) {
      const float *d = dout + r * O;
      int j = 0;
      for (; j + 4 <= O; j += 4) ST(db + j, ADD(LD(db + j), LD(d + j)));
      for (; j < O; j++) db[j] += d[j];
    }
  }
  float *xp = scratch;
  if (depthwise) {
    dw_grad_weights(&g, n, x, dout, dw, xp);
    return;
  }
  if (convw_dense_pays(&g, n, x, dout)) {
    convw_dense(&g, n, x, dout, dw, scratch);
    return;
  }
  float *rest = scratch + conv_round4(g.Hp * g.Wp * C);
  int *pidx = (int *)rest;
  float *pval = rest + conv_round4(P * O);
  int *start = (int *)(pval + conv_round4(P * O));
  float *wt = (float *)(start + conv_round4(O + 1));

  // Pick the operand to skip: the output gradient's nonzeros scale rows of
  // KW * C inputs, or the inputs' nonzeros scale rows of O gradients. Short
  // rows waste SIMD lanes, so weigh each density by its row's vector cost.
  long nzd = 0, nzx = 0;
  for (long i = 0; i < (long)n * imgOut; i++) nzd += dout[i] != 0.0f;
  for (long i = 0; i < (long)n * imgIn; i++) nzx += x[i] != 0.0f;
  // Work ~ (nonzeros) * (vector ops per row); each dout nonzero touches KH rows of KW*C, each x nonzero ~ T/(sh*sw) rows of O.
  double costD = (double)nzd * KH * ((KC + 3) / 4 + 1);
  double costX = (double)nzx * ((double)T / (sh * sw)) * ((O + 3) / 4 + 1);
  int byDout = costD <= costX;

  if (byDout) {
    // wt[o, ky, kx, c] accumulates in place, then is transposed into dw.
    __builtin_memset(wt, 0, sizeof(float) * O * T * C);
    for (int b = 0; b < n; b++) {
      conv_pad(&g, x + b * imgIn, xp);
      const float *d = dout + b * imgOut;
      // The gradient's nonzeros grouped by output channel (CSC): offset of the window's corner in xp, and value.
      for (int o = 0; o <= O; o++) start[o] = 0;
      for (int p = 0; p < P; p++)
        for (int o = 0; o < O; o++) start[o + 1] += d[(long)p * O + o] != 0.0f;
      for (int o = 0; o < O; o++) start[o + 1] += start[o];
      for (int p = 0; p < P; p++) {
        int oy = p / OW, ox = p % OW, corner = ((oy * sh) * g.Wp + ox * sw) * C;
        for (int o = 0; o < O; o++) {
          float v = d[(long)p * O + o];
          if (v != 0.0f) {
            int at = start[o]++;
            pidx[at] = corner;
            pval[at] = v;
          }
        }
      }
      // start[o] now holds the end of o's list, start[o - 1] its beginning.
      for (int o = 0; o < O; o++) {
        int s0 = o ? start[o - 1] : 0, nz = start[o] - s0;
        if (!nz) continue;
        for (int ky = 0; ky < KH; ky++) {
          float *r = wt + ((long)o * KH + ky) * KC;
          conv_rows(r, r, xp + (long)ky * g.Wp * C, KC, pidx + s0, pval + s0, nz, 0);
        }
      }
    }
    for (int t = 0; t < T; t++)
      for (int c = 0; c < C; c++) {
        float *r = dw + ((long)t * C + c) * O;
        for (int o = 0; o < O; o++) r[o] = wt[((long)o * T + t) * C + c];
      }
  } else {
    __builtin_memset(dw, 0, sizeof(float) * T * C * O);
    for (int b = 0; b < n; b++) {
      conv_pad(&g, x + b * imgIn, xp);
      const float *d = dout + b * imgOut;
      for (int ky = 0; ky < KH; ky++)
        for (int kx = 0; kx < KW; kx++)
          for (int c = 0; c < C; c++) {
            const float *xs = xp + ((long)ky * g.Wp + kx) * C + c;
            int nz = 0;
            for (int p = 0; p < P; p++) {
              int oy = p / OW, ox = p % OW;
              float v = xs[((long)oy * sh * g.Wp + (long)ox * sw) * C];
              pidx[nz] = p * O;
              pval[nz] = v;
              nz += v != 0.0f;
            }
            float *r = dw + ((long)(ky * KW + kx) * C + c) * O;
            conv_rows(r, r, d, O, pidx, pval, nz, 0);
          }
    }
  }
}

// dx = the input gradient of the conv (overwritten), times (xRelu > 0) if xRelu.
// scratch: conv_scratch_floats floats.
EXPORT void conv_grad_input(int n, int H, int W, int C, int KH, int KW, int O, int sh, int sw, int pt, int pl,
                            int OH, int OW, int depthwise, const float *dout, const float *w, float *dx,
                            const float *xRelu, float *scratch) {
  conv_geo g = conv_geometry(H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW);
  float *dxp = scratch;
  if (depthwise) {
    dw_grad_input(&g, n, dout, w, dx, xRelu, dxp);
    return;
  }
  if (sh == 1 && sw == 1 && convi_dense_pays(&g, n, dout)) {
    convi_dense(&g, n, dout, w, dx, xRelu, scratch);
    return;
  }
  int T = KH * KW, P = OH * OW;
  // wt[block, o, ky, kx, c in block]: the transposed kernel, its input
  // channels in blocks of cb. One block (cb = C) while it fits in cache: then
  // the KW * C weights that reach one padded input row are contiguous. A
  // large kernel is split so that sweeping an image's pixels reuses a block
  // from cache instead of streaming all of it per pixel.
  int cb = (long)O * T * C > 65536 && C > 32 ? 32 : C, blocks = (C + cb - 1) / cb;
  float *rest = scratch + conv_round4(g.Hp * g.Wp * C);
  int *pidx = (int *)rest;
  float *pval = rest + conv_round4(P * O);
  int *pcnt = (int *)(pval + conv_round4(P * O));
  float *wt = (float *)(pcnt + conv_round4(P));
  for (int bk = 0; bk < blocks; bk++)
    for (int o = 0; o < O; o++)
      for (int t = 0; t < T; t++) {
        float *r = wt + (((long)bk * O + o) * T + t) * cb;
        for (int l = 0; l < cb; l++) {
          int c = bk * cb + l;
          r[l] = c < C ? w[((long)t * C + c) * O + o] : 0.0f;
        }
      }
  long imgIn = (long)H * W * C;
  for (int b = 0; b < n; b++) {
    __builtin_memset(dxp, 0, sizeof(float) * (long)g.Hp * g.Wp * C);
    const float *d = dout + (long)b * P * O;
    // Each output pixel's nonzero gradients: offsets o * T * cb into a block of wt, values.
    for (int p = 0; p < P; p++) {
      const float *dp = d + (long)p * O;
      int *idx = pidx + (long)p * O;
      float *val = pval + (long)p * O;
      int nz = 0;
      for (int o = 0; o < O; o++) {
        float v = dp[o];
        idx[nz] = o * T * cb;
        val[nz] = v;
        nz += v != 0.0f;
      }
      pcnt[p] = nz;
    }
    for (int bk = 0; bk < blocks; bk++) {
      int c0 = bk * cb, nb = C - c0 < cb ? C - c0 : cb;
      const float *wb = wt + (long)bk * O * T * cb;
      for (int p = 0; p < P; p++) {
        int nz = pcnt[p];
        if (!nz) continue;
        const int *idx = pidx + (long)p * O;
        const float *val = pval + (long)p * O;
        int oy = p / OW, ox = p % OW;
        float *corner = dxp + ((long)oy * sh * g.Wp + (long)ox * sw) * C + c0;
        for (int ky = 0; ky < KH; ky++) {
          if (blocks == 1) {
            float *r = corner + (long)ky * g.Wp * C;
            conv_rows(r, r, wb + ky * KW * C, KW * C, idx, val, nz, 0);
          } else {
            for (int kx = 0; kx < KW; kx++) {
              float *r = corner + ((long)ky * g.Wp + kx) * C;
              conv_rows(r, r, wb + (ky * KW + kx) * cb, nb, idx, val, nz, 0);
            }
          }
        }
      }
    }
    conv_crop(&g, dxp, xRelu ? xRelu + b * imgIn : 0, dx + b * imgIn);
  }
}
