// The compression methods, by the spec's `method` name. Each method is one
// file; a method that runs another (filter's "then IMP") imports it directly.
import type { RunSpec } from '../spec.js';
import { filter } from './filter.js';
import { imp } from './imp.js';
import type { RunMethod } from './method.js';

export type { RunMethod } from './method.js';

const METHODS: Record<RunSpec['method'], RunMethod> = { imp, filter };

export function getMethod(name: RunSpec['method']): RunMethod {
  const m = METHODS[name];
  if (!m) throw new Error(`unknown method '${String(name)}'; known: ${Object.keys(METHODS).join(', ')}`);
  return m;
}
