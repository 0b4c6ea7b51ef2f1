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
      a0 = ADD(a0, MUL(s, LD(r))); a1 = ADD(a1, MUL(s, LD(r + 4)));
      a2 = ADD(a2, MUL(s, LD(r + 8))); a3 = ADD(a3, MUL(s, LD(r + 12)));
    }
    if (relu) {
      a0 = MAXZ(a0); a1 = MAXZ(a1); a2 = MAXZ(a2); a3 = MAXZ(a3);
    }
    ST(o + j, a0); ST(o + j + 4, a1); ST(o + j + 8, a2); ST(o + j + 12, a3);
  }
  for (; j + 4 <= n; j += 4) {
    vf a0 = init ? LD(init + j) : SPLAT(0.0f);
    for (int k = 0; k < nz; k++) a0 = ADD(a0, MUL(SPLAT(val[k]), LD(src + idx[k] + j)));
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
        a0 = ADD(a0, MUL(s, LD(r))); a1 = ADD(a1, MUL(s, LD(r + 4)));
        a2 = ADD(a2, MUL(s, LD(r + 8))); a3 = ADD(a3, MUL(s, LD(r + 12)));
        a4 = ADD(a4, MUL(s, LD(r + 16))); a5 = ADD(a5, MUL(s, LD(r + 20)));
        a6 = ADD(a6, MUL(s, LD(r + 24))); a7 = ADD(a7, MUL(s, LD(r + 28)));
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
        a0 = ADD(a0, MUL(s, LD(r))); a1 = ADD(a1, MUL(s, LD(r + 4)));
        a2 = ADD(a2, MUL(s, LD(r + 8))); a3 = ADD(a3, MUL(s, LD(r + 12)));
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
      for (int k = 0, m = cnt[t]; k < m; k++) a0 = ADD(a0, MUL(SPLAT(val[t][k]), LD(src + off[t] + idx[t][k] + j)));
    ST(o + j, relu ? MAXZ(a0) : a0);
  }
  for (; j < n; j++) {
    float a = init ? init[j] : 0.0f;
    for (int t = 0; t < nt; t++)
      for (int k = 0, m = cnt[t]; k < m; k++) a += val[t][k] * src[off[t] + idx[t][k] + j];
    o[j] = relu && a < 0.0f ? 0.0f : a;
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
              a = ADD(a, MUL(LD(base + ((long)ky * g->Wp + kx) * C + c), LD(w + (ky * g->KW + kx) * C + c)));
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
          for (; c + 4 <= C; c += 4) ST(r + c, ADD(LD(r + c), MUL(LD(xs + c), LD(d + c))));
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
          for (; c + 4 <= C; c += 4) ST(r + c, ADD(LD(r + c), MUL(LD(ws + c), LD(d + c))));
          for (; c < C; c++) r[c] += ws[c] * d[c];
        }
      }
    long img = (long)b * g->H * g->W * C;
    conv_crop(g, dxp, x ? x + img : 0, dx + img);
  }
}

// ---- scratch ----

// Floats of scratch the kernels below need (independent of n: they work one image at a time).
EXPORT int conv_scratch_floats(int H, int W, int C, int KH, int KW, int O, int sh, int sw, int pt, int pl, int OH,
                               int OW, int depthwise) {
  conv_geo g = conv_geometry(H, W, C, KH, KW, O, sh, sw, pt, pl, OH, OW);
  int T = KH * KW, P = OH * OW, pad = conv_round4(g.Hp * g.Wp * C);
  if (depthwise) return pad;
  int fwd = 2 * conv_round4(H * W * C) + conv_round4(H * W) + 4 * conv_round4(T);
  int gw = pad + 2 * conv_round4(P * O) + conv_round4(O + 1) + conv_round4(O * T * C);
  int gi = pad + 2 * conv_round4(O) + conv_round4(O * T * C);
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
  // Per image: each input pixel's nonzero channels (offsets c * O into a kernel tap, values).
  int T = KH * KW, HW = H * W;
  int *lidx = (int *)scratch;
  float *lval = scratch + conv_round4(HW * C);
  int *lcnt = (int *)(lval + conv_round4(HW * C));
  int *off = lcnt + conv_round4(HW);
  const int **tidx = (const int **)(off + conv_round4(T));
  const float **tval = (const float **)(tidx + conv_round4(T));
  int *tcnt = (int *)(tval + conv_round4(T));
  for (int b = 0; b < n; b++) {
    const float *img = x + (long)b * HW * C;
    for (int q = 0; q < HW; q++) {
      const float *xs = img + (long)q * C;
      int *li = lidx + (long)q * C;
      float *lv = lval + (long)q * C;
      int nz = 0;
      for (int c = 0; c < C; c++) {
        float v = xs[c];
        li[nz] = c * O;
        lv[nz] = v;
        nz += v != 0.0f;
      }
      lcnt[q] = nz;
    }
    for (int oy = 0; oy < OH; oy++) {
      int y0 = oy * sh - pt;
      for (int ox = 0; ox < OW; ox++) {
        int x0 = ox * sw - pl, nt = 0;
        for (int ky = 0; ky < KH; ky++) {
          int iy = y0 + ky;
          if (iy < 0 || iy >= H) continue;
          for (int kx = 0; kx < KW; kx++) {
            int ix = x0 + kx, q = iy * W + ix;
            if (ix < 0 || ix >= W || !lcnt[q]) continue;
            off[nt] = (ky * KW + kx) * C * O;
            tidx[nt] = lidx + (long)q * C;
            tval[nt] = lval + (long)q * C;
            tcnt[nt] = lcnt[q];
            nt++;
          }
        }
        conv_taps(out + (((long)b * OH + oy) * OW + ox) * O, bias, w, O, off, tidx, tval, tcnt, nt, relu);
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
  int T = KH * KW, P = OH * OW, KC = KW * C;
  float *rest = scratch + conv_round4(g.Hp * g.Wp * C);
  int *idx = (int *)rest;
  float *val = rest + conv_round4(O);
  float *wt = val + conv_round4(O);
  // wt[o, ky, kx, c]: for one o and ky the KW * C weights that reach one padded input row are contiguous.
  for (int t = 0; t < T; t++)
    for (int c = 0; c < C; c++) {
      const float *r = w + ((long)t * C + c) * O;
      for (int o = 0; o < O; o++) wt[((long)o * T + t) * C + c] = r[o];
    }
  long imgIn = (long)H * W * C;
  for (int b = 0; b < n; b++) {
    __builtin_memset(dxp, 0, sizeof(float) * (long)g.Hp * g.Wp * C);
    const float *d = dout + (long)b * P * O;
    for (int p = 0; p < P; p++) {
      const float *dp = d + (long)p * O;
      int nz = 0;
      for (int o = 0; o < O; o++) {
        float v = dp[o];
        idx[nz] = o * T * C;
        val[nz] = v;
        nz += v != 0.0f;
      }
      if (!nz) continue;
      int oy = p / OW, ox = p % OW;
      float *corner = dxp + ((long)oy * sh * g.Wp + (long)ox * sw) * C;
      for (int ky = 0; ky < KH; ky++) {
        float *r = corner + (long)ky * g.Wp * C;
        conv_rows(r, r, wt + ky * KC, KC, idx, val, nz, 0);
      }
    }
    conv_crop(&g, dxp, xRelu ? xRelu + b * imgIn : 0, dx + b * imgIn);
  }
}
