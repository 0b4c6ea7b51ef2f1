// The ONNX op registry: op type -> how it becomes a layer and how it folds on constants, one file per
// family. SUPPORTED_OPS and CONSTANT_OPS (the lists refusals quote) are its keys.
import type { OpEntry } from '../context.js';
import { activationOps } from './activations.js';
import { constantOps } from './constants.js';
import { convOps } from './conv.js';
import { denseOps } from './dense.js';
import { elementwiseOps } from './elementwise.js';
import { normOps } from './norm.js';
import { poolOps } from './pool.js';
import { shapeOps } from './shape.js';

const families = [activationOps, constantOps, convOps, denseOps, elementwiseOps, normOps, poolOps, shapeOps];

export const OPS: ReadonlyMap<string, OpEntry> = new Map(families.flatMap((f) => Object.entries(f)).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0)));

/** Ops that become layers (or vanish: Dropout, Identity). */
export const SUPPORTED_OPS: readonly string[] = Object.freeze([...OPS].filter(([, e]) => !e.constantsOnly).map(([op]) => op));

/** Ops accepted only where every input is constant: folded at import (shape arithmetic, weight preprocessing). */
export const CONSTANT_OPS: readonly string[] = Object.freeze([...OPS].filter(([, e]) => e.constantsOnly).map(([op]) => op));
