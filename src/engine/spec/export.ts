// Run-spec fields of the export concern: how the compressed ticket is written.
import { z } from 'zod';

export const EXPORT_FIELDS = {
  float16: z.boolean().default(false).describe('Store the compressed export values as float16'),
};
