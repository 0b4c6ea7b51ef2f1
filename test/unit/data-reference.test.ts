// Reference syntax: what parses to what, and every way a reference can be wrong.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DatasetError, loadDataset, parseReference } from '../../src/engine/data/index.js';

function expectError(ref: string, field: string, message: RegExp): void {
  assert.throws(() => parseReference(ref), (err: unknown) => {
    assert.ok(err instanceof DatasetError, String(err));
    assert.equal(err.field, field, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe('parseReference', () => {
  test('builtins', () => {
    assert.deepEqual(parseReference('builtin:mnist'), { kind: 'builtin', name: 'mnist' });
    assert.deepEqual(parseReference(' builtin:fashion-mnist '), { kind: 'builtin', name: 'fashion-mnist' });
  });

  test('file directory: format left to the scan; options from query or fragment', () => {
    assert.deepEqual(parseReference('file:///data/mnist'), {
      kind: 'location', location: { kind: 'file', path: '/data/mnist' }, format: undefined, files: {}, classes: undefined, name: 'mnist',
    });
    const r = parseReference('file:///data/my%20set/?train_images=a.gz#classes=10');
    assert.deepEqual(r, {
      kind: 'location', location: { kind: 'file', path: '/data/my set/' }, format: 'idx', files: { train_images: 'a.gz' }, classes: 10, name: 'my set',
    });
  });

  test('.npz files are npz whatever the scheme', () => {
    const f = parseReference('file:///x/cifar.NPZ');
    assert.equal(f.kind === 'location' && f.format, 'npz');
    const h = parseReference('https://example.org/d/set.npz?token=1');
    assert.ok(h.kind === 'location', "h.kind === 'location'");
    assert.deepEqual(h.location, { kind: 'http', url: 'https://example.org/d/set.npz?token=1' });
    assert.equal(h.name, 'set');
  });

  test('http directory with a format in the fragment; the fragment is not part of the URL', () => {
    const r = parseReference('http://127.0.0.1:8080/ds/#format=cifar10&train=a.bin,b.bin');
    assert.deepEqual(r, {
      kind: 'location', location: { kind: 'http', url: 'http://127.0.0.1:8080/ds/' }, format: 'cifar10', files: { train: 'a.bin,b.bin' }, classes: undefined, name: 'ds',
    });
  });

  test('errors', () => {
    expectError('', 'reference', /empty/);
    expectError('builtin:cifar10', 'reference', /unknown builtin dataset 'cifar10' \(known: builtin:mnist, builtin:fashion-mnist\)/);
    expectError('s3://bucket/x', 'reference', /unknown reference scheme 's3:'/);
    expectError('/data/mnist', 'reference', /not a dataset reference/);
    expectError('file://host/data', 'reference', /bad file URL/);
    expectError('file:///d?fromat=idx', 'fromat', /unknown option 'fromat'/);
    expectError('file:///d?format=tfrecord', 'format', /unknown format 'tfrecord'/);
    expectError('file:///d?format=npy&train_images=a', 'train_images', /belongs to format 'idx', not 'npy'/);
    expectError('file:///d?x_train=a&train=b', 'train', /belongs to format 'cifar10', not 'npy'/);
    expectError('file:///d.npz?format=idx', 'format', /format 'idx' given for an \.npz file/);
    expectError('file:///d?classes=0', 'classes', /positive integer, got '0'/);
    expectError('file:///d?classes=ten', 'classes', /got 'ten'/);
    expectError('file:///d?classes=3#classes=4', 'classes', /given twice/);
    expectError('file:///d?x_test=', 'x_test', /is empty/);
    expectError('https://example.org/data/', 'format', /must name an \.npz file or carry #format=/);
  });

  test('loadDataset reports reference errors as DatasetError too', async () => {
    await assert.rejects(loadDataset('gopher://x'), (err: unknown) => err instanceof DatasetError && err.field === 'reference');
  });
});
