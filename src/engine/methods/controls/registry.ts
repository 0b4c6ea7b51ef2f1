// The random controls a ticket is compared with, by name (spec.controlKinds),
// like the pruning strategies: each control is one file that says how its
// trial starts (weights and mask) from the ticket's round.
import type { ControlKind } from '../../metrics.js';
import type { Control } from './control.js';
import { reinit } from './reinit.js';
import { shuffle } from './shuffle.js';

export type { Control, ControlRound } from './control.js';

const CONTROLS: Record<ControlKind, Control> = { reinit, shuffle };

export function getControl(kind: ControlKind): Control {
  const c = CONTROLS[kind];
  if (!c) throw new Error(`unknown control '${String(kind)}'; known: ${Object.keys(CONTROLS).join(', ')}`);
  return c;
}
