// Upper bounds of the run spec's numbers, lists and strings, and the field
// types more than one concern uses.
import { z } from 'zod';

/**
 * Upper bounds of the spec's numbers, lists and strings. A spec is a tenant's
 * request for compute, so nothing in it is unbounded: each bound lies well
 * above what a paper run uses (LeNet: 50,000 iterations) and below what
 * would tie a worker up for months or overflow a counter. The job's total
 * cost is bounded separately (engine/cost.ts) and checked at submit.
 */
export const SPEC_LIMITS = Object.freeze({
  rounds: 100,
  iterations: 1_000_000,
  epochs: 1_000,
  batchSize: 4096,
  evalEvery: 1_000_000,
  warmupIterations: 1_000_000,
  rewindIteration: 1_000_000,
  fineTuneIterations: 1_000_000,
  maxTrainExamples: 10_000_000,
  filterSteps: 50,
  /** Names and references: a URL or a path fits, a megabyte does not. */
  refLength: 2048,
  layerNameLength: 256,
  /** Entries of skipLayers / filterFractions (a ResNet-1202 has about 1,200 conv layers). */
  layers: 2000,
} as const);

/** A fraction strictly between 0 and 1. */
export const fraction = (desc: string) => z.number().gt(0).lt(1).describe(desc);

export const layerName = z.string().min(1).max(SPEC_LIMITS.layerNameLength);
