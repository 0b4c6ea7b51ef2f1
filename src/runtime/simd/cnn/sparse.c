// Sparse conv rounds: a stride-1 Conv2D whose kernel is mostly pruned trains
// only its surviving weights (wrappers: src/engine/training/cnn/kernels/sparse.ts,
// which builds the survivor lists once per training, as masks are fixed).
//
// Layout: each image is transposed into zero-padded channel planes
// xp[c][Hp][Wp] (Hp = OH + KH - 1, Wp = OW + KW - 1, the input at (pt, pl)),
// and outputs / output gradients into planes of OH rows of Wp floats (columns
// OW .. Wp hold zeros or ignored values). In those planes a kernel tap (kh, kw)
// is a constant offset kh * Wp + kw, so with stride 1:
// - forward: plane o = sum over survivors (kh, kw, c) of w * xp[c] shifted by
//   the tap: conv_rows (conv.c) over the whole plane, register-blocked SIMD;
// - input gradient: plane c of dx = sum over survivors (kh, kw, o) of w * the
//   output-gradient plane o shifted back by the tap (planes sit between zero
//   gaps, so the shift reads zeros past either edge): conv_rows again;
// - weight gradient: one dot product of two planes per survivor, summed over
//   the images; pruned entries of dw are written 0.
// Cost scales with the survivors; nothing is skipped by value (unlike conv.c's
// zero skipping), so results are the dense maths' up to summation order.
//
// Lists (i32): forward, by output channel: ostart[O + 1] and pairs
// fent[2 k] = c * P + kh * Wp + kw (P = Hp * Wp), fent[2 k + 1] = weight index
// ((kh * KW + kw) * C + c) * O + o. Input gradient, by input channel:
// cstart[C + 1] and pairs bent[2 k] = gap + o * S - (kh * Wp + kw) (S = OH * Wp
// + gap, gap = (KH - 1) * Wp + KW - 1), bent[2 k + 1] = weight index.
#include "common.h"

typedef struct {
  int Hp, Wp, P, Q, gap, S;
} sparse_geo;

static sparse_geo sparse_geometry(int KH, int KW, int OH, int OW) {
  sparse_geo g;
  g.Hp = OH + KH - 1;
  g.Wp = OW + KW - 1;
  g.P = g.Hp * g.Wp;
  g.Q = OH * g.Wp;
  g.gap = (KH - 1) * g.Wp + KW - 1;
  g.S = g.Q + g.gap;
  return g;
}

// Result planes are made SPARSE_BLOCK channels at a time and then written out
// together: NHWC rows hold a block's channels side by side, so the write-out
// touches each output row once per block instead of once per channel.
#define SPARSE_BLOCK 16

// Scratch: padded input planes (+ KW slack), output-gradient planes with gaps,
// SPARSE_BLOCK result planes, and one channel's survivor values and offsets.
typedef struct {
  float *xp, *yp, *plane, *vals;
  int total;
} sparse_scratch;

static sparse_scratch sparse_layout(float *base, int C, int KH, int KW, int O, sparse_geo g) {
  sparse_scratch s;
  int xp = conv_round4(C * g.P + KW + 4), yp = conv_round4(g.gap + O * g.S + 4), plane = SPARSE_BLOCK * conv_round4(g.P + 4);
  int vals = conv_round4(2 * KH * KW * (C > O ? C : O) + 4);
  s.xp = base;
  s.yp = base + xp;
  s.plane = s.yp + yp;
  s.vals = s.plane + plane;
  s.total = xp + yp + plane + vals;
  return s;
}

EXPORT int sparse_conv_scratch_floats(int C, int KH, int KW, int O, int OH, int OW) {
  return sparse_layout(0, C, KH, KW, O, sparse_geometry(KH, KW, OH, OW)).total;
}

// xp[c][(h + pt) * Wp + w + pl] = x[h][w][c], zeros elsewhere (incl. the slack).
static void sparse_pad_input(const float *x, float *xp, int H, int W, int C, int pt, int pl, sparse_geo g, int KW) {
  __builtin_memset(xp, 0, (unsigned long)(C * g.P + KW + 4) * 4);
  for (int h = 0; h < H; h++)
    for (int w = 0; w < W; w++) {
      const float *px = x + (h * W + w) * C;
      float *dst = xp + (h + pt) * g.Wp + w + pl;
      for (int c = 0; c < C; c++) dst[c * g.P] = px[c];
    }
}

// Output-gradient planes: yp[gap + o * S + oh * Wp + ow] = dout[oh][ow][o], zeros elsewhere.
static void sparse_pad_output(const float *dout, float *yp, int O, int OH, int OW, sparse_geo g) {
  __builtin_memset(yp, 0, (unsigned long)(g.gap + O * g.S + 4) * 4);
  for (int oh = 0; oh < OH; oh++)
    for (int ow = 0; ow < OW; ow++) {
      const float *pd = dout + (oh * OW + ow) * O;
      float *dst = yp + g.gap + oh * g.Wp + ow;
      for (int o = 0; o < O; o++) dst[o * g.S] = pd[o];
    }
}

EXPORT void sparse_conv_forward(int n, int H, int W, int C, int KH, int KW, int O, int pt, int pl, int OH, int OW,
                                const float *x, const float *w, const float *bias, float *out, int relu,
                                const int *ostart, const int *fent, float *scratch) {
  sparse_geo g = sparse_geometry(KH, KW, OH, OW);
  sparse_scratch sc = sparse_layout(scratch, C, KH, KW, O, g);
  float *xp = sc.xp, *plane = sc.plane, *vals = sc.vals;
  for (int i = 0; i < n; i++) {
    const float *xi = x + (long)i * H * W * C;
    float *oi = out + (long)i * OH * OW * O;
    sparse_pad_input(xi, xp, H, W, C, pt, pl, g, KW);
    int stride = conv_round4(g.P + 4);
    for (int o0 = 0; o0 < O; o0 += SPARSE_BLOCK) {
      int nb = O - o0 < SPARSE_BLOCK ? O - o0 : SPARSE_BLOCK;
      for (int ob = 0; ob < nb; ob++) {
        int o = o0 + ob, a = ostart[o], nz = ostart[o + 1] - a;
        const int *e = fent + 2 * a;
        // conv_rows wants offsets and values as two lists: offsets go to the value list's tail.
        int *offs = (int *)(vals + nz);
        for (int k = 0; k < nz; k++) {
          vals[k] = w[e[2 * k + 1]];
          offs[k] = e[2 * k];
        }
        conv_rows(plane + ob * stride, 0, xp, g.Q, offs, vals, nz, 0);
      }
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          float *dst = oi + (oh * OW + ow) * O + o0;
          const float *src = plane + oh * g.Wp + ow;
          for (int ob = 0; ob < nb; ob++) {
            float v = src[ob * stride] + (bias ? bias[o0 + ob] : 0.0f);
            dst[ob] = relu && v < 0.0f ? 0.0f : v;
          }
        }
    }
  }
}

// dot and mlp_hsum come from mlp.c, which cnn.c includes before its parts.
static void sparse_dot4(const float *a0, const float *a1, const float *a2, const float *a3, const float *b, int n,
                        float *r) {
  vf s0 = SPLAT(0.0f), s1 = s0, s2 = s0, s3 = s0;
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    vf bj = LD(b + j);
    s0 = ADD(s0, MUL(LD(a0 + j), bj));
    s1 = ADD(s1, MUL(LD(a1 + j), bj));
    s2 = ADD(s2, MUL(LD(a2 + j), bj));
    s3 = ADD(s3, MUL(LD(a3 + j), bj));
  }
  float t0 = mlp_hsum(s0), t1 = mlp_hsum(s1), t2 = mlp_hsum(s2), t3 = mlp_hsum(s3);
  for (; j < n; j++) {
    t0 += a0[j] * b[j];
    t1 += a1[j] * b[j];
    t2 += a2[j] * b[j];
    t3 += a3[j] * b[j];
  }
  r[0] = t0;
  r[1] = t1;
  r[2] = t2;
  r[3] = t3;
}

// dw (every entry: pruned ones 0) and db (0 = none) over n images; both overwritten.
EXPORT void sparse_conv_grad_weights(int n, int H, int W, int C, int KH, int KW, int O, int pt, int pl, int OH, int OW,
                                     const float *x, const float *dout, float *dw, float *db, const int *ostart,
                                     const int *fent, float *scratch) {
  sparse_geo g = sparse_geometry(KH, KW, OH, OW);
  sparse_scratch sc = sparse_layout(scratch, C, KH, KW, O, g);
  float *xp = sc.xp, *yp = sc.yp;
  __builtin_memset(dw, 0, (unsigned long)KH * KW * C * O * 4);
  if (db) __builtin_memset(db, 0, (unsigned long)O * 4);
  for (int i = 0; i < n; i++) {
    const float *xi = x + (long)i * H * W * C;
    const float *di = dout + (long)i * OH * OW * O;
    sparse_pad_input(xi, xp, H, W, C, pt, pl, g, KW);
    sparse_pad_output(di, yp, O, OH, OW, g);
    if (db)
      for (int p = 0; p < OH * OW; p++)
        for (int o = 0; o < O; o++) db[o] += di[p * O + o];
    for (int o = 0; o < O; o++) {
      const float *yo = yp + g.gap + o * g.S;
      int k = ostart[o], end = ostart[o + 1];
      for (; k + 4 <= end; k += 4) {
        const int *e = fent + 2 * k;
        float r[4];
        sparse_dot4(xp + e[0], xp + e[2], xp + e[4], xp + e[6], yo, g.Q, r);
        dw[e[1]] += r[0];
        dw[e[3]] += r[1];
        dw[e[5]] += r[2];
        dw[e[7]] += r[3];
      }
      for (; k < end; k++) dw[fent[2 * k + 1]] += dot(xp + fent[2 * k], yo, g.Q);
    }
  }
}

// dx[n, H, W, C] (overwritten) from dout and the survivors; xRelu (0 = none): dx *= (xRelu > 0).
EXPORT void sparse_conv_grad_input(int n, int H, int W, int C, int KH, int KW, int O, int pt, int pl, int OH, int OW,
                                   const float *dout, const float *w, float *dx, const float *xRelu,
                                   const int *cstart, const int *bent, float *scratch) {
  sparse_geo g = sparse_geometry(KH, KW, OH, OW);
  sparse_scratch sc = sparse_layout(scratch, C, KH, KW, O, g);
  float *yp = sc.yp, *plane = sc.plane, *vals = sc.vals;
  for (int i = 0; i < n; i++) {
    const float *di = dout + (long)i * OH * OW * O;
    float *dxi = dx + (long)i * H * W * C;
    const float *xr = xRelu ? xRelu + (long)i * H * W * C : 0;
    sparse_pad_output(di, yp, O, OH, OW, g);
    int stride = conv_round4(g.P + 4);
    for (int c0 = 0; c0 < C; c0 += SPARSE_BLOCK) {
      int nb = C - c0 < SPARSE_BLOCK ? C - c0 : SPARSE_BLOCK;
      for (int cb = 0; cb < nb; cb++) {
        int c = c0 + cb, a = cstart[c], nz = cstart[c + 1] - a;
        const int *e = bent + 2 * a;
        int *offs = (int *)(vals + nz);
        for (int k = 0; k < nz; k++) {
          vals[k] = w[e[2 * k + 1]];
          offs[k] = e[2 * k];
        }
        // Only the rows and columns that hold the input matter.
        int first = pt * g.Wp + pl, len = (H - 1) * g.Wp + W;
        conv_rows(plane + cb * stride, 0, yp + first, len, offs, vals, nz, 0);
      }
      for (int h = 0; h < H; h++)
        for (int w_ = 0; w_ < W; w_++) {
          long at = (long)(h * W + w_) * C + c0;
          const float *src = plane + h * g.Wp + w_;
          for (int cb = 0; cb < nb; cb++) {
            float v = src[cb * stride];
            dxi[at + cb] = xr && !(xr[at + cb] > 0.0f) ? 0.0f : v;
          }
        }
    }
  }
}
