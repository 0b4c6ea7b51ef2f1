// Run-spec fields of the model concern: which network is compressed. The
// paper's training defaults per model family live with the training fields.
import { z } from 'zod';
import { SPEC_LIMITS } from './limits.js';

export const MODEL_FIELDS = {
  model: z
    .string()
    .min(1)
    .max(SPEC_LIMITS.refLength)
    .default('lenet-300-100')
    .describe('Zoo model name (lenet-300-100, lenet-N-M, conv-2/4/6, vgg-11/16, resnet-20) or a model directory / URL'),
};
