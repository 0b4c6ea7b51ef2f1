// Run-spec field that picks the compression method; each method's own
// fields live in imp.ts and filter.ts.
import { z } from 'zod';

export const METHOD_FIELDS = {
  method: z.enum(['imp', 'filter']).default('imp').describe('imp: iterative magnitude pruning; filter: L1 filter pruning'),
};
