// Adam with the bias corrections folded into two scalars per step, for the
// native 'tensorflow' backend, where every eager op costs a call into
// TensorFlow and a pass over the tensor. TF.js's AdamOptimizer spends 14 ops
// and 6 fresh scalars per variable (and divides both moments by their
// corrections); this spends 12 ops per variable and 6 scalars per step:
//   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr_t m / (sqrt(v) + eps_t),  lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),  eps_t = eps sqrt(1 - b2^t)
// which is TF.js's update (lr m_hat / (sqrt(v_hat) + eps)) rewritten exactly
// (Kingma & Ba 2015, section 2, "the efficiency ... can be improved").
// Defaults are tf.train.adam's: beta1 0.9, beta2 0.999, eps = the backend's epsilon.
import * as tf from '@tensorflow/tfjs';

export class FoldedAdam {
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  private t = 0;

  constructor(
    public learningRate: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly epsilon = tf.backend().epsilon(),
  ) {}

  /** One update of every variable named in `grads` (a missing gradient leaves its variable alone). */
  applyGradients(grads: tf.NamedTensorMap): void {
    this.t += 1;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = Math.sqrt(1 - this.beta2 ** this.t);
    tf.tidy(() => {
      const b1 = tf.scalar(this.beta1);
      const a1 = tf.scalar(1 - this.beta1);
      const b2 = tf.scalar(this.beta2);
      const a2 = tf.scalar(1 - this.beta2);
      const lr = tf.scalar((this.learningRate * c2) / c1);
      const eps = tf.scalar(this.epsilon * c2);
      for (const [name, g] of Object.entries(grads)) {
        if (g == null) continue;
        const p = tf.engine().registeredVariables[name];
        if (p === undefined) throw new Error(`FoldedAdam: no variable named '${name}'`);
        let s = this.moments.get(name);
        if (s === undefined) {
          s = { m: tf.variable(tf.zerosLike(p), false), v: tf.variable(tf.zerosLike(p), false) };
          this.moments.set(name, s);
        }
        const m = tf.add(tf.mul(s.m, b1), tf.mul(g, a1));
        const v = tf.add(tf.mul(s.v, b2), tf.mul(tf.square(g), a2));
        s.m.assign(m);
        s.v.assign(v);
        p.assign(tf.sub(p, tf.mul(tf.div(m, tf.add(tf.sqrt(v), eps)), lr)));
      }
    });
  }

  dispose(): void {
    for (const s of this.moments.values()) tf.dispose([s.m, s.v]);
    this.moments.clear();
  }
}
