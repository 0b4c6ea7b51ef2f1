// Seeded pseudo-random numbers for everything that must replay exactly: data
// order, the validation carve, control masks, fresh initialisations. A tiny
// local generator keeps results identical across Node versions and TF.js
// backends (Math.random and tf.randomUniform give no such promise).

/** mulberry32: 32-bit state, fast, good enough for shuffles; floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates in place. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(arr: T, next: () => number): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const tmp = arr[i]!;
    arr[i] = arr[j]!;
    arr[j] = tmp;
  }
  return arr;
}

/** A permutation of 0..n-1 driven by `mulberry32(seed)`. */
export function permutation(n: number, seed: number): Int32Array {
  return shuffleInPlace(Int32Array.from({ length: n }, (_, i) => i), mulberry32(seed));
}

/** Derive a child seed from a parent and labels, so streams do not collide. */
export function childSeed(seed: number, ...labels: Array<string | number>): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const label of labels) {
    const s = String(label);
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
    h = Math.imul(h ^ 0x2f, 0x01000193) >>> 0;
  }
  return h;
}
