// Where image folders come from: .zip members listed from the central
// directory and inflated when read, .tar.gz streamed through gunzip and tar,
// and directories walked under the file policy. Each cap is hit by a file
// made here: too many files, a member over its size, a zip member whose header
// lies about its size (a bomb), a gzip stream that inflates past the caps,
// unsafe paths, links in a tar and symlinks out of the file roots. Then the
// same folders end to end as references: loaded, fitted to a model's input,
// and probed with the same classes, counts and sha256.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import { pack as tarPack, type Header } from 'tar-stream';
import { DatasetError } from '../../src/engine/data/errors.js';
import { directoryEntries, tarGzEntries, zipEntries, zipHoldsOnlyNpy, type ArchiveCaps } from '../../src/engine/data/images/archive.js';
import type { FolderEntry } from '../../src/engine/data/images/folder.js';
import { loadDataset } from '../../src/engine/data/index.js';
import { probeDataset } from '../../src/engine/data/probe.js';
import { parseReference } from '../../src/engine/data/reference.js';
import { encodeNpy } from '../../src/engine/data/encode.js';
import { withEngineConfig } from '../../src/engine/data/access.js';
import { loadEngineConfig } from '../../src/runtime/config.js';
import { DEFAULT_IMAGE_LIMITS } from '../../src/runtime/engine-config.js';
import { runCompression } from '../../src/engine/run.js';
import { FileSink } from '../../src/engine/sinks/file.js';
import { initBackend } from '../../src/runtime/backend.js';

const CAPS: ArchiveCaps = { maxBytes: 1 << 20, maxRatio: 200, maxFiles: 100 };

/** An RGB PNG of one colour. */
function png(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const image = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) image.data.set([...rgb, 255], i * 4);
  return new Uint8Array(PNG.sync.write(image));
}

/** 3 classes of 8x8 images, `n` each, class k coloured k * 100 in red. */
function folderFiles(n = 4, size = 8): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  ['cat', 'dog', 'fox'].forEach((c, k) => {
    for (let i = 0; i < n; i++) out[`${c}/${i}.png`] = png(size, size, [k * 100, i * 10, 50]);
  });
  return out;
}

async function tarGz(entries: { header: Partial<Header> & Pick<Header, 'name'>; body?: Uint8Array }[]): Promise<Uint8Array> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of p as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const e of entries) {
    if (e.body === undefined) p.entry(e.header);
    else p.entry(e.header, Buffer.from(e.body));
  }
  p.finalize();
  await done;
  return new Uint8Array(gzipSync(Buffer.concat(chunks)));
}

const filesOf = (files: Record<string, Uint8Array>) => Object.entries(files).map(([name, body]) => ({ header: { name, size: body.length }, body }));

async function bytesOf(entries: FolderEntry[]): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const e of entries) if (!e.path.endsWith('/')) out[e.path] = e.bytes ?? (await e.read!());
  return out;
}

/** A DatasetError whose message matches (and so names the archive and member). */
function refused(message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof DatasetError, `expected a DatasetError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  };
}

/** A zip whose members `names` really hold `size` zeros each but whose headers claim `claimed` bytes. */
function lyingZip(names: string[], size: number, claimed: number): Uint8Array {
  const zip = zipSync(Object.fromEntries(names.map((n) => [n, new Uint8Array(size)])), { level: 9 });
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  for (let i = 0; i + 4 <= zip.length; i++) {
    const sig = view.getUint32(i, true);
    if (sig === 0x04034b50) view.setUint32(i + 22, claimed, true);
    if (sig === 0x02014b50) view.setUint32(i + 24, claimed, true);
  }
  return zip;
}

describe('zip', () => {
  test('members are listed with their folders and inflated when read, byte for byte', async () => {
    const files = folderFiles(2);
    const entries = zipEntries(zipSync({ 'cat/': new Uint8Array(0), ...files }), 'set.zip', CAPS);
    assert.ok(entries.some((e) => e.path === 'cat/'), 'folder entry kept');
    assert.ok(entries.filter((e) => !e.path.endsWith('/')).every((e) => e.bytes === undefined && e.read), 'read lazily');
    assert.deepEqual(await bytesOf(entries), files);
  });

  test('an NPZ is a zip of .npy members only', () => {
    const npz = zipSync({ 'x_train.npy': encodeNpy('|u1', [1], [1]), 'y_train.npy': encodeNpy('|u1', [1], [0]) });
    assert.equal(zipHoldsOnlyNpy(npz, 'd.zip', CAPS), true);
    assert.equal(zipHoldsOnlyNpy(zipSync(folderFiles(1)), 'd.zip', CAPS), false);
  });

  test('a member that claims a small size but inflates past it is a bomb, stopped at the claim', async () => {
    const entries = zipEntries(lyingZip(['cat/bomb.png', 'dog/bomb.png'], 50 * 1024 * 1024, 100), 'bomb.zip', CAPS);
    await assert.rejects(entries[0]!.read!(), refused(/^bomb\.zip: member 'cat\/bomb\.png' inflates past the 100 bytes its header declares \(a decompression bomb\)$/));
  });

  test('declared sizes are judged before anything is inflated: ratio, one member, the total', () => {
    const zeros = zipSync({ 'cat/a.png': new Uint8Array(4 * 1024 * 1024) }, { level: 9 });
    assert.throws(() => zipEntries(zeros, 'z.zip', { ...CAPS, maxBytes: 64 << 20 }), refused(/^z\.zip: member 'cat\/a\.png' expands more than 200-fold/));
    assert.throws(() => zipEntries(zeros, 'z.zip', { ...CAPS, maxRatio: 1e6, maxMemberBytes: 1000 }), refused(/member 'cat\/a\.png' unpacks to 4194304 bytes, over the 1000-byte limit for one file/));
    const many = zipSync(folderFiles(3), { level: 0 });
    assert.throws(() => zipEntries(many, 'm.zip', { ...CAPS, maxBytes: 500 }), refused(/^m\.zip: unpacks to more than the 500-byte limit/));
  });

  test('members each under the ratio floor cannot add up past the ratio of the whole archive', () => {
    // 16 members of 512 KiB zeros: each deflates to about 500 bytes, under the 16 KiB floor's 200-fold
    // allowance alone, but together 8 MiB from an archive of about 10 KiB.
    const members = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`c${i % 2}/f${i}.png`, new Uint8Array(512 * 1024)]));
    const zip = zipSync(members, { level: 9 });
    assert.ok(zip.length < 32 * 1024, `${zip.length}`);
    assert.throws(() => zipEntries(zip, 'floor.zip', { ...CAPS, maxBytes: 64 << 20 }), refused(/^floor\.zip: its members unpack to more than 200-fold the archive's \d+ bytes/));
  });

  test('too many files, an unsafe path, a symbolic link', () => {
    assert.throws(() => zipEntries(zipSync(folderFiles(1)), 'f.zip', { ...CAPS, maxFiles: 2 }), refused(/^f\.zip: too many files: 'fox\/0\.png' is past the cap of 2/));
    assert.throws(() => zipEntries(zipSync({ '../evil.png': png(2, 2, [1, 2, 3]) }), 'e.zip', CAPS), refused(/^e\.zip: member '\.\.\/evil\.png' has an unsafe path/));
    assert.throws(() => zipEntries(zipSync({ '/etc/evil.png': png(2, 2, [1, 2, 3]) }), 'e.zip', CAPS), refused(/member '\/etc\/evil\.png' has an unsafe path/));
    const link = zipSync({ 'cat/l.png': [new TextEncoder().encode('/etc/passwd'), { os: 3, attrs: (0o120777 << 16) >>> 0 }] });
    assert.throws(() => zipEntries(link, 'l.zip', CAPS), refused(/^l\.zip: member 'cat\/l\.png' is a symbolic link/));
  });
});

describe('tar.gz', () => {
  test('regular files and folders come through byte for byte', async () => {
    const files = folderFiles(2);
    const archive = await tarGz([{ header: { name: 'cat', type: 'directory' } }, ...filesOf(files)]);
    const entries = await tarGzEntries(archive, 'set.tar.gz', CAPS);
    assert.ok(entries.some((e) => e.path === 'cat/'));
    assert.deepEqual(await bytesOf(entries), files);
  });

  test('links, unsafe paths and too many files are refused, naming the member', async () => {
    const link = await tarGz([...filesOf(folderFiles(1)), { header: { name: 'cat/link.png', type: 'symlink', linkname: '/etc/passwd' } }]);
    await assert.rejects(tarGzEntries(link, 'l.tar.gz', CAPS), refused(/^l\.tar\.gz: member 'cat\/link\.png' is a symlink; only regular files and folders/));
    const hard = await tarGz([...filesOf(folderFiles(1)), { header: { name: 'cat/hard.png', type: 'link', linkname: 'cat/0.png' } }]);
    await assert.rejects(tarGzEntries(hard, 'h.tar.gz', CAPS), refused(/member 'cat\/hard\.png' is a link/));
    const evil = await tarGz(filesOf({ '../../evil.png': png(2, 2, [0, 0, 0]) }));
    await assert.rejects(tarGzEntries(evil, 'e.tar.gz', CAPS), refused(/^e\.tar\.gz: member '\.\.\/\.\.\/evil\.png' has an unsafe path/));
    await assert.rejects(tarGzEntries(await tarGz(filesOf(folderFiles(1))), 'f.tar.gz', { ...CAPS, maxFiles: 2 }), refused(/too many files: 'fox\/0\.png' is past the cap of 2/));
  });

  test('a gzip stream that inflates past the byte cap or the ratio cap is stopped while streaming', async () => {
    const bomb = await tarGz(filesOf({ 'cat/zeros.png': new Uint8Array(30 * 1024 * 1024) }));
    assert.ok(bomb.length < 100_000, `the bomb is small: ${bomb.length}`);
    await assert.rejects(tarGzEntries(bomb, 'b.tar.gz', { ...CAPS, maxBytes: 64 << 20 }), refused(/^b\.tar\.gz: expands more than 200-fold/));
    await assert.rejects(tarGzEntries(bomb, 'b.tar.gz', CAPS), refused(/^b\.tar\.gz: member 'cat\/zeros\.png' is 31457280 bytes, over the 1048576-byte limit for one file/));
    // Many members each under the cap: the running total stops the stream.
    const spread: Record<string, Uint8Array> = {};
    for (let i = 0; i < 40; i++) spread[`cat/${i}.png`] = new Uint8Array(512 * 1024);
    await assert.rejects(tarGzEntries(await tarGz(filesOf(spread)), 's.tar.gz', { ...CAPS, maxRatio: 1e6 }), refused(/^s\.tar\.gz: unpacks to more than the 1048576-byte limit/));
    await assert.rejects(tarGzEntries(new Uint8Array([0x1f, 0x8b, 1, 2, 3]), 'x.tar.gz', CAPS), refused(/^x\.tar\.gz: not a valid \.tar\.gz archive/));
  });
});

describe('directory', () => {
  let base: string;
  let root: string;
  let outside: string;
  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), 'ts-images-dir-')));
    root = join(base, 'root');
    outside = join(base, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'secret.png'), png(2, 2, [9, 9, 9]));
  });
  after(() => rm(base, { recursive: true, force: true }));

  async function tree(name: string, files: Record<string, Uint8Array>): Promise<string> {
    const dir = join(root, name);
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(join(dir, rel, '..'), { recursive: true });
      await writeFile(join(dir, rel), body);
    }
    return dir;
  }

  test('files are listed with their folders and read when asked; a symlink inside the roots is followed', async () => {
    const files = folderFiles(2);
    const dir = await tree('ok', files);
    await symlink(join(dir, 'cat', '0.png'), join(dir, 'dog', 'linked.png'));
    const entries = await directoryEntries(dir, 'ok', { kind: 'roots', roots: [root] }, CAPS);
    assert.ok(entries.some((e) => e.path === 'cat/'));
    assert.deepEqual(await bytesOf(entries), { ...files, 'dog/linked.png': files['cat/0.png'] });
  });

  test('a symlink out of the file roots is refused, naming the link and not its target', async () => {
    const dir = await tree('escape', folderFiles(1));
    await symlink(join(outside, 'secret.png'), join(dir, 'cat', 'secret.png'));
    await assert.rejects(directoryEntries(dir, 'escape', { kind: 'roots', roots: [root] }, CAPS), (e: unknown) => {
      assert.ok(e instanceof DatasetError);
      assert.match(e.message, /^escape\/cat\/secret\.png: dataset file is not allowed/);
      assert.ok(!e.message.includes(outside), e.message);
      return true;
    });
    // A file swapped for such a link after the walk is refused when read.
    const dir3 = await tree('swap', folderFiles(1));
    const entries = await directoryEntries(dir3, 'swap', { kind: 'roots', roots: [root] }, CAPS);
    await rm(join(dir3, 'cat', '0.png'));
    await symlink(join(outside, 'secret.png'), join(dir3, 'cat', '0.png'));
    await assert.rejects(entries.find((e) => e.path === 'cat/0.png')!.read!(), refused(/^swap\/cat\/0\.png: dataset file is not allowed/));
    // A linked folder that leads out is refused the same way.
    const dir2 = await tree('escape2', folderFiles(1));
    await symlink(outside, join(dir2, 'elk'));
    await assert.rejects(directoryEntries(dir2, 'escape2', { kind: 'roots', roots: [root] }, CAPS), refused(/^escape2\/elk: dataset file is not allowed/));
  });

  test('too many files and a file over its cap', async () => {
    const dir = await tree('many', folderFiles(2));
    await assert.rejects(directoryEntries(dir, 'many', undefined, { ...CAPS, maxFiles: 5 }), refused(/^many\/fox\/1\.png: too many files: more than the cap of 5/));
    await assert.rejects(directoryEntries(dir, 'many', undefined, { ...CAPS, maxMemberBytes: 10 }), refused(/^many\/cat\/0\.png: \d+ bytes, over the 10-byte limit for one file/));
  });
});

describe('image folders as references', () => {
  let dir: string;
  before(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), 'ts-images-ref-')));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('formats: .tar.gz and #format=images say images; a .zip is decided by its members; options are checked', () => {
    const at = (ref: string) => parseReference(ref) as Extract<ReturnType<typeof parseReference>, { kind: 'location' }>;
    assert.equal(at('file:///d/set.tar.gz').format, 'images');
    assert.equal(at('https://h/set.tgz').format, 'images');
    assert.equal(at('https://h/set.zip').format, undefined);
    assert.deepEqual(at('file:///d/set?format=images&resize=0&test_fraction=0.25').images, { resize: false, testFraction: 0.25 });
    assert.throws(() => parseReference('file:///d/x.npz?resize=0'), /option 'resize' applies to image folders only/);
    assert.throws(() => parseReference('file:///d/set.tgz?resize=maybe'), /resize must be 0 or 1/);
    assert.throws(() => parseReference('https://h/dir/#format=images'), /an http\(s\) image folder must be one \.zip or \.tar\.gz archive/);
  });

  test('a zip, a tar.gz and a directory load alike: class names, the model input, the probe agrees', async () => {
    const files = folderFiles(5);
    await writeFile(join(dir, 'set.zip'), zipSync(files));
    await writeFile(join(dir, 'set.tar.gz'), await tarGz(filesOf(files)));
    for (const [rel, body] of Object.entries(files)) {
      await mkdir(join(dir, 'set', rel, '..'), { recursive: true });
      await writeFile(join(dir, 'set', rel), body);
    }
    const digests = new Set<string>();
    for (const name of ['set.zip', 'set.tar.gz', 'set']) {
      const ref = pathToFileURL(join(dir, name)).href;
      const ds = await loadDataset(ref, { validationFraction: 0.1, modelInput: async () => [4, 4, 1] });
      assert.deepEqual(ds.classNames, ['cat', 'dog', 'fox'], name);
      assert.deepEqual(ds.inputShape, [4, 4, 1], name);
      assert.equal(ds.numClasses, 3);
      assert.equal(ds.train.n + ds.validation.n + ds.test.n, 15, name);
      const probe = await probeDataset(ref);
      assert.equal(probe.format, 'images');
      assert.deepEqual(probe.classNames, ['cat', 'dog', 'fox']);
      assert.deepEqual(probe.inputShape, [8, 8, 3]);
      assert.deepEqual(probe.counts, { train: ds.train.n + ds.validation.n, test: ds.test.n });
      assert.deepEqual(probe.images, { resize: true, sizes: ['8x8'] });
      assert.equal(probe.sha256, ds.sha256, `${name}: the probe hashes what the load hashes`);
      digests.add(ds.sha256);
    }
    assert.equal(digests.size, 1, 'the same tree has one sha256 whatever holds it');
    // Without a model input the first image's size is kept.
    assert.deepEqual((await loadDataset(pathToFileURL(join(dir, 'set.zip')).href)).inputShape, [8, 8, 3]);
  });

  test('refusals name the archive and the member: undecodable, one class, mixed sizes with resize off, a bomb', async () => {
    const write = async (name: string, files: Record<string, Uint8Array>) => {
      await writeFile(join(dir, name), zipSync(files));
      return pathToFileURL(join(dir, name)).href;
    };
    const broken = await write('broken.zip', { ...folderFiles(2), 'dog/bad.png': new TextEncoder().encode('not a png') });
    await assert.rejects(loadDataset(broken), refused(/^broken\.zip: dog\/bad\.png: cannot decode image/));
    await assert.rejects(probeDataset(broken), refused(/^broken\.zip: dog\/bad\.png: cannot decode image/));
    const one = await write('one.zip', { 'cat/a.png': png(8, 8, [1, 1, 1]), 'cat/b.png': png(8, 8, [2, 2, 2]) });
    await assert.rejects(probeDataset(one), refused(/^one\.zip: cat\/: only one class/));
    const mixed = await write('mixed.zip', { ...folderFiles(2), 'fox/big.png': png(16, 16, [0, 0, 0]) });
    await assert.rejects(probeDataset(`${mixed}?resize=0`), refused(/^mixed\.zip: fox\/big\.png: image is 16x16, not 8x8 like cat\/0\.png, and resizing is off/));
    await assert.rejects(loadDataset(`${mixed}?resize=0`), refused(/^mixed\.zip: fox\/big\.png: image is 16x16, not 8x8/));
    assert.equal((await probeDataset(mixed)).images?.sizes.length, 2, 'mixed sizes pass with resizing on');
    await writeFile(join(dir, 'bomb.zip'), lyingZip(['cat/bomb.png', 'dog/bomb.png'], 50 * 1024 * 1024, 100));
    await assert.rejects(probeDataset(pathToFileURL(join(dir, 'bomb.zip')).href), refused(/^bomb\.zip: member 'cat\/bomb\.png' inflates past the 100 bytes/));
    // An archive over the byte cap is named by its base name, never by the server's folder.
    for (const loaded of [probeDataset(broken, { maxBytes: 100 }), loadDataset(broken, { access: { limits: { maxBytes: 100, maxRatio: 200 } } })]) {
      await assert.rejects(loaded, (e: unknown) => {
        assert.ok(e instanceof DatasetError);
        assert.match(e.message, /^broken\.zip: larger than the 100-byte limit for a dataset file/);
        assert.ok(!e.message.includes(dir), e.message);
        return true;
      });
    }
    await assert.rejects(probeDataset(`${one}?classes=3`), refused(/^one\.zip: 'classes' does not apply to an image folder/));
    await writeFile(join(dir, 'flat.zip'), zipSync({ 'a.png': png(2, 2, [0, 0, 0]) }));
    await assert.rejects(probeDataset(pathToFileURL(join(dir, 'flat.zip')).href), refused(/^flat\.zip: .*(not inside a class folder|no class folders)/));
  });

  test('the image caps come from the engine config (TICKETSMITH_MAX_IMAGE_*) and reach load and probe', async () => {
    assert.equal(loadEngineConfig({}).images, undefined, 'unset: the defaults apply');
    const engine = loadEngineConfig({ TICKETSMITH_MAX_IMAGE_FILES: '5', TICKETSMITH_MAX_IMAGE_TOTAL_PIXELS: '300' });
    assert.deepEqual(engine.images, { maxFiles: 5, maxPixels: DEFAULT_IMAGE_LIMITS.maxPixels, maxTotalPixels: 300 });
    assert.throws(() => loadEngineConfig({ TICKETSMITH_MAX_IMAGE_PIXELS: '0' }), /TICKETSMITH_MAX_IMAGE_PIXELS/);
    await writeFile(join(dir, 'capped.zip'), zipSync(folderFiles(3)));
    const ref = pathToFileURL(join(dir, 'capped.zip')).href;
    const access = withEngineConfig({}, engine);
    await assert.rejects(loadDataset(ref, { access }), refused(/^capped\.zip: too many files: 'dog\/2\.png' is past the cap of 5/));
    await assert.rejects(probeDataset(ref, {}, withEngineConfig({}, { ...engine, images: { ...engine.images!, maxFiles: 100 } })), refused(/^capped\.zip: dog\/1\.png: images up to here hold 320 pixels, over the cap of 300/));
  });

  test('IMP and filter runs on an image folder carry its class names in the summary', async () => {
    await initBackend();
    await writeFile(join(dir, 'run.zip'), zipSync(folderFiles(6)));
    const dataset = pathToFileURL(join(dir, 'run.zip')).href;
    const common = { dataset, iterations: 6, evalEvery: 3, batchSize: 8, controls: 'none', seed: 1 };
    const imp = await runCompression({ ...common, model: 'lenet-30-10', rounds: 1 }, { sink: new FileSink(join(dir, 'imp')), parallelism: 1 });
    assert.deepEqual(imp.summary.classNames, ['cat', 'dog', 'fox']);
    const filter = await runCompression({ ...common, model: 'conv-2', method: 'filter', fineTuneIterations: 3, filterFraction: 0.5 }, { sink: new FileSink(join(dir, 'filter')), parallelism: 1 });
    assert.deepEqual(filter.summary.classNames, ['cat', 'dog', 'fox']);
  });

  test('an NPZ named .zip is still read as an NPZ', async () => {
    await writeFile(join(dir, 'arrays.zip'), zipSync({
      'x_train.npy': encodeNpy('|u1', [2, 3], [1, 2, 3, 4, 5, 6]),
      'y_train.npy': encodeNpy('|u1', [2], [0, 1]),
      'x_test.npy': encodeNpy('|u1', [1, 3], [7, 8, 9]),
      'y_test.npy': encodeNpy('|u1', [1], [1]),
    }));
    const ref = pathToFileURL(join(dir, 'arrays.zip')).href;
    assert.equal((await probeDataset(ref)).format, 'npz');
    assert.deepEqual((await loadDataset(ref, { validationFraction: 0 })).inputShape, [3]);
  });
});
