// ticket.zip: one archive of a run's result for pipelines, built by a pure
// function from the result record. It holds the TF.js model (model.json +
// weights.bin), model.onnx, the mask as JSON and as mask.npz (one .npy per
// masked weight, readable with numpy), the compressed export, result.json
// (verdict, summary, every round's metrics, class names when the dataset has
// them), the plots as SVG and MANIFEST.json with each file's size and sha256.
// The same result gives the same bytes: names sorted, one fixed timestamp,
// fixed compression, so the archive's sha256 is stable once the result is.
// It does not read or write anything; the sink stores it with the rest.
import { createHash } from 'node:crypto';
import { zipSync, type Zippable } from 'fflate';
import type { RoundMetrics } from '../metrics.js';
import type { RunResultRecord } from '../sink.js';
import { deserializeMask } from '../pruning/mask.js';
import { lineChartSvg, type Series } from './plot.js';

/** The artifact name of the archive in a run's result. */
export const TICKET_ZIP = 'ticket.zip';
export const BUNDLE_FORMAT = 'ticketsmith-ticket/1';
export const MANIFEST = 'MANIFEST.json';

/** A fixed DOS timestamp (1980-01-01 00:00, the zip epoch); built from local fields because fflate writes local time. */
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);

/** Result artifact -> name inside the archive. */
const FROM_RESULT: Record<string, string> = {
  'ticket/model.json': 'model.json',
  'ticket/weights.bin': 'weights.bin',
  'ticket/model.onnx': 'model.onnx',
  'ticket/mask.json': 'mask.json',
  'ticket/compressed.bin': 'compressed.bin',
  'sensitivity.svg': 'sensitivity.svg',
};

export interface ManifestEntry {
  name: string;
  bytes: number;
  sha256: string;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  name: string;
  /** Every other file of the archive, sorted by name. */
  files: ManifestEntry[];
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const utf8 = (s: string) => new TextEncoder().encode(s);

/** One .npy (format 1.0, C order) of uint8 `values` with `shape`. */
export function npyUint8(values: Uint8Array, shape: number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Preamble (10 bytes) + header + '\n' padded with spaces to a multiple of 64, as numpy writes it.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  if (header.length > 0xffff) throw new Error(`NPY header of ${header.length} bytes does not fit format 1.0`);
  const out = new Uint8Array(total + values.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(utf8(header), 10);
  out.set(values, total);
  return out;
}

/** Weight name -> shape from a TF.js model.json's weights manifest (the names getWeightMap and masks use). */
function weightShapes(modelJson: Uint8Array | undefined): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  if (!modelJson) return shapes;
  const parsed = JSON.parse(new TextDecoder().decode(modelJson)) as { weightsManifest?: { weights?: { name: string; shape: number[] }[] }[] };
  for (const group of parsed.weightsManifest ?? []) for (const w of group.weights ?? []) shapes.set(w.name, w.shape);
  return shapes;
}

/**
 * A weight name as an NPZ member path: a `.` or `..` segment becomes `%2E` or
 * `%2E%2E`. TF.js accepts a layer named `a/../../x` (its tensor names may hold
 * dots and slashes), and its weights' member paths must not climb out of the
 * folder an unzip writes them to. TF.js names hold no `%`, so this reads back.
 */
export function npzMemberName(weight: string): string {
  return weight
    .split('/')
    .map((part) => (part === '.' || part === '..' ? part.replaceAll('.', '%2E') : part))
    .join('/');
}

/** mask.npz: one uint8 .npy per masked weight, keyed by the weight's name, shaped as the weight (flat when the model does not say). */
export function maskNpz(maskJson: Uint8Array, modelJson?: Uint8Array): Uint8Array {
  const mask = deserializeMask(maskJson);
  const shapes = weightShapes(modelJson);
  const members: Zippable = {};
  for (const name of Object.keys(mask).sort()) {
    const m = mask[name]!;
    const shape = shapes.get(name);
    const fits = shape !== undefined && shape.reduce((a, b) => a * b, 1) === m.length;
    members[`${npzMemberName(name)}.npy`] = [npyUint8(Uint8Array.from(m, (v) => (v !== 0 ? 1 : 0)), fits ? shape : [m.length]), { mtime: FIXED_MTIME }];
  }
  return zipSync(members, { level: 6, mtime: FIXED_MTIME });
}

/** Test accuracy against % of weights remaining: the ticket and each control it was compared with. */
export function accuracySvg(rounds: RoundMetrics[], title: string): string {
  const ticket: Series = { label: 'ticket', color: '#1f77b4', points: rounds.map((r) => [r.density * 100, r.finalTestAccuracy * 100]) };
  const colors: Record<string, string> = { reinit: '#d62728', shuffle: '#2ca02c' };
  const controls = [...new Set(rounds.flatMap((r) => Object.keys(r.controls)))].sort();
  const series: Series[] = [ticket];
  for (const kind of controls) {
    const points = rounds.flatMap((r): Array<[number, number]> => {
      const c = r.controls[kind as keyof RoundMetrics['controls']];
      return c ? [[r.density * 100, c.finalTestAccuracy * 100]] : [];
    });
    series.push({ label: `${kind} control`, color: colors[kind] ?? '#7f7f7f', points, dashed: true });
  }
  return lineChartSvg([{ title, yLabel: 'test accuracy (%)', series }]);
}

/** The archive's bytes for `result`; deterministic for the same result. */
export function ticketBundle(result: RunResultRecord): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  for (const [from, to] of Object.entries(FROM_RESULT)) {
    const bytes = result.artifacts[from];
    if (bytes) files[to] = bytes;
  }
  const mask = result.artifacts['ticket/mask.json'];
  if (mask) files['mask.npz'] = maskNpz(mask, result.artifacts['ticket/model.json']);
  files['result.json'] = utf8(`${JSON.stringify({ name: result.name, verdict: result.verdict, summary: result.summary }, null, 2)}\n`);
  const rounds = result.summary.rounds;
  if (Array.isArray(rounds) && rounds.length > 0) files['accuracy.svg'] = utf8(accuracySvg(rounds as RoundMetrics[], `${result.name}: accuracy vs density`));

  const names = Object.keys(files).sort();
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    name: result.name,
    files: names.map((name) => ({ name, bytes: files[name]!.length, sha256: sha256(files[name]!) })),
  };
  files[MANIFEST] = utf8(`${JSON.stringify(manifest, null, 2)}\n`);

  const zippable: Zippable = {};
  for (const name of Object.keys(files).sort()) zippable[name] = [files[name]!, { mtime: FIXED_MTIME }];
  return zipSync(zippable, { level: 6, mtime: FIXED_MTIME });
}
