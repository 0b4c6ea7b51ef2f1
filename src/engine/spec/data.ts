// Run-spec fields of the data concern: which dataset a run trains and tests
// on. How much of it trains, and how much is held out for validation, are
// training fields (they shape the training pool, not the reference).
import { z } from 'zod';
import { SPEC_LIMITS } from './limits.js';

export const DATA_FIELDS = {
  dataset: z
    .string()
    .min(1)
    .max(SPEC_LIMITS.refLength)
    .default('builtin:mnist')
    .describe('Dataset reference: builtin:mnist, builtin:fashion-mnist, file://..., http(s)://...'),
};
