// The model zoo: maps a zoo name (e.g. `lenet-300-100`, `conv-4`, `resnet-20`)
// to the family file that builds it. Families hold all architecture knowledge;
// this file only dispatches and lists.
import * as tf from '@tensorflow/tfjs';
import type { ModelFamily, ModelOptions, ZooEntry } from './common.js';
import { convFamily } from './conv.js';
import { lenetFamily } from './lenet.js';
import { resnetFamily } from './resnet.js';
import { vggFamily } from './vgg.js';

export type { ModelOptions } from './common.js';

const FAMILIES: readonly ModelFamily[] = [lenetFamily, convFamily, vggFamily, resnetFamily];

export function isZooModel(name: string): boolean {
  return FAMILIES.some((f) => f.matches(name));
}

/** Why `name` is not a zoo model although it has a family's pattern (sizes out of bounds), else null. */
export function zooNameProblem(name: string): string | null {
  for (const f of FAMILIES) {
    const p = f.problem?.(name) ?? null;
    if (p !== null) return p;
  }
  return null;
}

/** Known names and accepted patterns, for "unknown model" messages. */
export function knownModelNames(): string {
  const names = new Set<string>();
  for (const f of FAMILIES) {
    for (const e of f.entries) names.add(e.name);
    for (const p of f.patterns) names.add(p);
  }
  return [...names].join(', ');
}

/**
 * Why the zoo model `name` cannot take examples of `inputShape` (one
 * sentence), or null. No model is built: submit asks this for every job.
 */
export function zooInputProblem(name: string, inputShape: number[]): string | null {
  const family = FAMILIES.find((f) => f.matches(name));
  if (family === undefined) return `unknown model '${name}'`;
  return family.inputProblem?.(name, inputShape) ?? null;
}

/**
 * Builds a freshly initialised zoo model. Outputs are logits. Every layer has
 * a stable name and every initialiser a seed derived from `opts.seed`, so
 * equal (name, opts) give identical weights.
 */
export function createModel(name: string, opts: ModelOptions): tf.LayersModel {
  const family = FAMILIES.find((f) => f.matches(name));
  if (family === undefined) {
    const problem = zooNameProblem(name);
    throw new Error(`unknown model '${name}'${problem === null ? '' : ` (${problem})`}; known models: ${knownModelNames()}`);
  }
  return family.build(name, opts);
}

export function listModels(): ZooEntry[] {
  return FAMILIES.flatMap((f) => f.entries.map((e) => ({ ...e, defaultInput: [...e.defaultInput] })));
}
