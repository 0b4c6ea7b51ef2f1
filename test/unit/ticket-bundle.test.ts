// ticket.zip (engine/report/bundle.ts): the archive unpacks with fflate,
// every file the manifest lists is there with its size and sha256, mask.npz
// members parse as NPY with the weights' shapes and the mask's zeros, the
// NPY members are numpy's v1.0 layout, result.json carries every round and
// the class names, and the same result gives the same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { unzipSync } from 'fflate';
import * as tf from '@tensorflow/tfjs';
import { BUNDLE_FORMAT, MANIFEST, maskNpz, npyUint8, ticketBundle, type BundleManifest } from '../../src/engine/report/bundle.ts';
import { parseNpy, parseNpz } from '../../src/engine/data/npy.ts';
import { modelToFiles } from '../../src/engine/models/files.ts';
import { serializeMask } from '../../src/engine/pruning/mask.ts';
import { onnxTicket } from '../../src/engine/export/onnx-ticket.ts';
import type { RoundMetrics, RunResultRecord } from '../../src/engine/sink.ts';
import type { Mask } from '../../src/engine/types.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function round(index: number, density: number, acc: number, controls: boolean): RoundMetrics {
  const t = { finalTestAccuracy: acc, finalTestLoss: 1 - acc, earlyStopIteration: 10, earlyStopTestAccuracy: acc, earlyStopValidationLoss: 0.3, curve: [[10, 0.3, acc]] as Array<[number, number, number]>, trainSeconds: 1, examplesPerSecond: 100 };
  return {
    round: index, ...t, density, layerDensity: {}, paramsRemaining: 100, paramsTotal: 120, flops: 1000, denseBytes: 480, compressedBytes: 200, backend: 'cpu',
    controls: controls ? { reinit: { ...t, finalTestAccuracy: acc - 0.1 }, shuffle: { ...t, finalTestAccuracy: acc - 0.2 } } : {},
  };
}

/** A small dense model with a ticket-like mask (every third weight pruned) and its result record. */
async function impLikeResult(): Promise<{ result: RunResultRecord; mask: Mask }> {
  const m = tf.sequential({ name: 'tiny' });
  m.add(tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 3, padding: 'same', name: 'conv' }));
  m.add(tf.layers.flatten({ name: 'flat' }));
  m.add(tf.layers.dense({ units: 3, name: 'out' }));
  const mask: Mask = {};
  for (const [name, shape] of [['conv/kernel', [3, 3, 1, 2]], ['out/kernel', [32, 3]]] as Array<[string, number[]]>) {
    const n = shape.reduce((a, b) => a * b, 1);
    mask[name] = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 1));
  }
  const files = await modelToFiles(m);
  const onnxOut = onnxTicket(m, 'tiny-run');
  m.dispose();
  const result: RunResultRecord = {
    name: 'tiny-run',
    verdict: { ticketBeatsControls: [1], roundsCompared: [1, 2], summary: 'ticket beat every control in 1 of 2 compared rounds' },
    artifacts: {
      'ticket/model.json': files.json,
      'ticket/weights.bin': files.bin,
      'ticket/mask.json': serializeMask(mask),
      'ticket/compressed.bin': new Uint8Array([1, 2, 3]),
      'ticket/model.onnx': onnxOut.bytes!,
    },
    summary: { density: 0.64, rounds: [round(0, 1, 0.9, false), round(1, 0.8, 0.91, true), round(2, 0.64, 0.88, true)], classNames: ['cat', 'dog', 'eel'] },
  };
  return { result, mask };
}

test('ticket.zip: every listed file is present with its size and sha256', async () => {
  const { result } = await impLikeResult();
  const zip = ticketBundle(result);
  const files = unzipSync(zip);
  const manifest = JSON.parse(text(files[MANIFEST]!)) as BundleManifest;
  assert.equal(manifest.format, BUNDLE_FORMAT);
  assert.equal(manifest.name, 'tiny-run');
  const listed = manifest.files.map((f) => f.name);
  assert.deepEqual(listed, [
    'accuracy.svg', 'compressed.bin', 'mask.json', 'mask.npz', 'model.json', 'model.onnx', 'result.json', 'weights.bin',
  ]);
  assert.deepEqual(Object.keys(files).sort(), [...listed, MANIFEST].sort(), 'nothing unlisted but the manifest');
  for (const f of manifest.files) {
    assert.equal(files[f.name]!.length, f.bytes, `${f.name}: size`);
    assert.equal(sha256(files[f.name]!), f.sha256, `${f.name}: sha256`);
  }
  assert.equal(sha256(files['model.onnx']!), sha256(result.artifacts['ticket/model.onnx']!));
  assert.equal(sha256(files['weights.bin']!), sha256(result.artifacts['ticket/weights.bin']!));
  // model.json's manifest points at weights.bin beside it, as TF.js loads it.
  assert.deepEqual((JSON.parse(text(files['model.json']!)) as { weightsManifest: { paths: string[] }[] }).weightsManifest[0]!.paths, ['weights.bin']);

  const res = JSON.parse(text(files['result.json']!)) as { name: string; verdict: { summary: string }; summary: { rounds: RoundMetrics[]; classNames: string[] } };
  assert.equal(res.name, 'tiny-run');
  assert.match(res.verdict.summary, /1 of 2/);
  assert.deepEqual(res.summary.rounds.map((r) => r.round), [0, 1, 2], 'every round');
  assert.deepEqual(res.summary.classNames, ['cat', 'dog', 'eel']);
  const svg = text(files['accuracy.svg']!);
  assert.match(svg, /^<svg /);
  for (const label of ['ticket', 'reinit control', 'shuffle control']) assert.ok(svg.includes(label), `plot has the ${label} series`);
});

test('ticket.zip: mask.npz members are NPY v1.0 with the weights\' shapes and the mask\'s zeros', async () => {
  const { result, mask } = await impLikeResult();
  const files = unzipSync(ticketBundle(result));
  const members = parseNpz(files['mask.npz']!, 'mask.npz', 'test');
  assert.deepEqual([...members.keys()].sort(), ['conv/kernel', 'out/kernel']);
  const shapes: Record<string, number[]> = { 'conv/kernel': [3, 3, 1, 2], 'out/kernel': [32, 3] };
  for (const [name, bytes] of members) {
    // numpy's layout: magic, version 1.0, header padded so the data starts on a 64-byte boundary.
    assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLen = bytes[8]! | (bytes[9]! << 8);
    assert.equal((10 + headerLen) % 64, 0, `${name}: data aligned to 64`);
    const arr = parseNpy(bytes, name, 'test');
    assert.equal(arr.descr, '|u1');
    assert.deepEqual(arr.shape, shapes[name]);
    const m = mask[name]!;
    let zeros = 0;
    for (let i = 0; i < arr.length; i++) {
      assert.equal(arr.at(i), m[i], `${name}[${i}]`);
      if (arr.at(i) === 0) zeros++;
    }
    assert.equal(zeros, Math.ceil(m.length / 3), `${name}: every third weight is pruned`);
  }
});

test('ticket.zip: the same result gives the same bytes', async () => {
  const { result } = await impLikeResult();
  const a = ticketBundle(result);
  const b = ticketBundle({ ...result, artifacts: Object.fromEntries(Object.entries(result.artifacts).reverse()) });
  assert.equal(sha256(a), sha256(b), 'artifact order does not matter');
  const changed = ticketBundle({ ...result, summary: { ...result.summary, density: 0.5 } });
  assert.notEqual(sha256(a), sha256(changed), 'a different result gives a different archive');
});

test('ticket.zip: a filter result without a mask has its sensitivity plot and no mask files', async () => {
  const { result } = await impLikeResult();
  const { 'ticket/mask.json': _mask, ...rest } = result.artifacts;
  const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"></svg>');
  const files = unzipSync(ticketBundle({ ...result, artifacts: { ...rest, 'sensitivity.svg': svg }, summary: { rounds: [round(0, 1, 0.9, false), round(1, 0.4, 0.85, false)] } }));
  const listed = (JSON.parse(text(files[MANIFEST]!)) as BundleManifest).files.map((f) => f.name);
  assert.ok(listed.includes('sensitivity.svg') && !listed.includes('mask.npz') && !listed.includes('mask.json'), listed.join(', '));
  assert.deepEqual(files['sensitivity.svg'], svg);
  assert.equal((JSON.parse(text(files['result.json']!)) as { summary: Record<string, unknown> }).summary.classNames, undefined, 'no class names when the dataset has none');
});

test('npyUint8: 1-D shapes are written as (n,); a mask without a model is flat', () => {
  const one = parseNpy(npyUint8(new Uint8Array([1, 0, 1]), [3]), 'a', 'test');
  assert.deepEqual(one.shape, [3]);
  const npz = parseNpz(maskNpz(serializeMask({ 'w/kernel': new Float32Array([1, 0, 0, 1, 1]) })), 'm.npz', 'test');
  const arr = parseNpy(npz.get('w/kernel')!, 'w', 'test');
  assert.deepEqual(arr.shape, [5]);
  assert.deepEqual(Array.from({ length: 5 }, (_, i) => arr.at(i)), [1, 0, 0, 1, 1]);
});

test('mask.npz: a weight name with dot segments (a tenant\'s layer named a/../../x) never becomes a member path that climbs out', () => {
  // TF.js accepts 'a/../../../../tmp/evil' as a layer name (its tensor names may hold '.' and '/'); the model upload does too.
  const mask = { 'a/../../../../tmp/evil/kernel': new Float32Array([1, 0]), 'b/./c/kernel': new Float32Array([0, 1]), 'ok/kernel': new Float32Array([1, 1]) };
  const npz = unzipSync(maskNpz(serializeMask(mask)));
  const names = Object.keys(npz).sort();
  assert.deepEqual(names, ['a/%2E%2E/%2E%2E/%2E%2E/%2E%2E/tmp/evil/kernel.npy', 'b/%2E/c/kernel.npy', 'ok/kernel.npy']);
  // What any unzip would make of them stays inside its folder.
  for (const name of names) assert.ok(!name.split('/').some((p) => p === '..' || p === '.'), name);
  const ticket = unzipSync(ticketBundle({ name: 'r', verdict: { ticketBeatsControls: [], roundsCompared: [], summary: '' }, artifacts: { 'ticket/mask.json': serializeMask(mask) }, summary: {} }));
  assert.deepEqual(Object.keys(unzipSync(ticket['mask.npz']!)).sort(), names);
});
