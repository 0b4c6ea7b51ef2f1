// What a control is: how its trial starts from the ticket's round.
import type * as tf from '@tensorflow/tfjs';
import type { ModelSource } from '../../models/source.js';
import type { RunSpec } from '../../spec.js';
import type { Dataset, Mask, WeightMap } from '../../types.js';

export interface ControlRound {
  spec: RunSpec;
  /** The round's number within its method (0 = the dense round); it seeds the control's draws. */
  round: number;
  /** The ticket's mask and the weights its survivors were reset to. */
  mask: Mask;
  rewindTo: WeightMap;
  model: tf.LayersModel;
  source: ModelSource;
  dataset: Dataset;
}

export interface Control {
  /** Where the control's trial starts: its initial weights (masked) and its mask. */
  start(r: ControlRound): { start: WeightMap; mask: Mask };
}
