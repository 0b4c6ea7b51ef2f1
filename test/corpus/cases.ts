// The bad-input corpus: each case is one request a tenant (or an attacker)
// can send, over REST or gRPC, and the answer it must get: a 4xx (a gRPC
// client-error status) with the error table's code, the field at fault where
// there is one, and a message that names the problem. No case may get a 5xx,
// crash the process or leave /readyz red; corpus.test.ts runs them all.
import { gzipSync } from 'node:zlib';
import type { TicketsmithGrpcClient } from '../../src/client/grpc.js';
import {
  cifarSet,
  denseModel,
  encodeIdx,
  encodeNpy,
  goodModel,
  gzipIdxBomb,
  gzipZeros,
  idxSet,
  npySet,
  replaceFile,
  tarOf,
  tgzOf,
  utf8,
  withModelJson,
  zipOf,
  type NamedBytes,
} from './files.js';

export interface Expect {
  status: number;
  code: string;
  /** The `field` the error must name (exact string, or a pattern). */
  field?: string | RegExp;
  /** What the message must say. */
  message: RegExp;
}

export interface RestRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: string | Uint8Array | FormData;
  headers?: Record<string, string>;
  /** Default: the corpus tenant's key; null sends none. */
  key?: string | null;
}

export interface Env {
  /** file:// URL of the dataset folder `name` (see DATASETS) under the server's file root. */
  ds(name: string, options?: string): string;
  /** A model this tenant uploaded (784 → 16 → 10). */
  modelId: string;
  grpc: TicketsmithGrpcClient;
  grpcNoKey: TicketsmithGrpcClient;
  /** Sends raw bytes as the request message of a unary gRPC method. */
  grpcRaw(method: string, bytes: Uint8Array): Promise<unknown>;
}

export type Case =
  | { door: 'rest'; name: string; request: (env: Env) => RestRequest; expect: Expect }
  | { door: 'grpc'; name: string; call: (env: Env) => Promise<unknown>; expect: Expect };

/** Dataset folders written under the file root before the cases run: one defect each. */
export const DATASETS: Record<string, NamedBytes[]> = {
  good: idxSet(),
  'idx-wrong-magic': replaceFile(idxSet(), 'train-images-idx3-ubyte', new Uint8Array([0x1f, 0x8b, 8, 8, ...new Array(60).fill(1)])),
  'idx-bad-type': (() => {
    const b = encodeIdx('ubyte', [40, 28, 28], new Array(40 * 784).fill(0));
    b[2] = 0x42;
    return replaceFile(idxSet(), 'train-images-idx3-ubyte', b);
  })(),
  'idx-labels-out-of-range': idxSet(40, { labelOf: (i) => (i === 7 ? 42 : i % 10) }),
  'idx-truncated-images': replaceFile(idxSet(), 'train-images-idx3-ubyte', encodeIdx('ubyte', [40, 28, 28], new Array(40 * 784).fill(0)).subarray(0, 16 + 39 * 784 + 100)),
  'idx-count-mismatch': idxSet(40, { trainLabels: 39 }),
  'idx-shape-mismatch': idxSet(40, { rows: 20, cols: 20 }),
  'idx-huge-dims': replaceFile(idxSet(), 'train-images-idx3-ubyte', encodeIdx('ubyte', [0xffffffff, 0xffff, 0xffff], [])),
  'idx-gzip-bomb': replaceFile(idxSet(), 'train-images-idx3-ubyte', gzipIdxBomb(1024 ** 3)),
  'idx-gzip-truncated': replaceFile(idxSet(), 'train-images-idx3-ubyte', gzipSync(encodeIdx('ubyte', [40, 28, 28], new Array(40 * 784).fill(3))).subarray(0, 60)),
  'npy-wrong-magic': npySet(40, { xBytes: utf8('NOTNUMPY' + ' '.repeat(120)) }),
  'npy-huge-shape': npySet(40, { xBytes: encodeNpy('|u1', [2 ** 40, 28, 28], []) }),
  'npy-labels-out-of-range': npySet(40, { yValues: Array.from({ length: 40 }, (_, i) => (i === 3 ? -5 : i % 10)) }),
  'npy-count-mismatch': npySet(40, { xShape: [41, 28, 28], xBytes: encodeNpy('|u1', [41, 28, 28], new Array(41 * 784).fill(5)) }),
  'cifar-truncated': cifarSet(20, { truncate: 100 }),
  'cifar-label-out-of-range': cifarSet(20, { label: 200 }),
  'cifar-into-lenet': cifarSet(20),
  'npy-single-class': npySet(40, { yValues: new Array(40).fill(0) }),
};

const invalid = (field: string | RegExp, message: RegExp): Expect => ({ status: 400, code: 'INVALID_ARGUMENT', field, message });
const notFound = (message: RegExp, field?: string): Expect => ({ status: 404, code: 'NOT_FOUND', message, ...(field ? { field } : {}) });

const json = (path: string, body: unknown, headers: Record<string, string> = {}): RestRequest => ({
  method: 'POST',
  path,
  body: typeof body === 'string' ? body : JSON.stringify(body),
  headers: { 'content-type': 'application/json', ...headers },
});

/** A small valid job; each spec case changes one thing. */
const base = { model: 'lenet-20-10', dataset: 'builtin:mnist', rounds: 1, iterations: 20, evalEvery: 10, batchSize: 30, maxTrainExamples: 300, controls: 'none' };

function multipart(files: NamedBytes[], field = 'files'): FormData {
  const form = new FormData();
  for (const f of files) form.append(field, new Blob([f.bytes as Uint8Array<ArrayBuffer>]), f.name);
  return form;
}

const upload = (files: NamedBytes[]): RestRequest => ({ method: 'POST', path: '/v1/models', body: multipart(files) });
const rawArchive = (bytes: Uint8Array, type = 'application/zip'): RestRequest => ({ method: 'POST', path: '/v1/models', body: bytes, headers: { 'content-type': type } });

const cases: Case[] = [];
const rest = (name: string, request: (env: Env) => RestRequest, expect: Expect) => cases.push({ door: 'rest', name, request, expect });
const grpc = (name: string, call: (env: Env) => Promise<unknown>, expect: Expect) => cases.push({ door: 'grpc', name, call, expect });

// ---- job spec: every field out of range, over REST; a sample over gRPC ----
const OUT_OF_RANGE: Array<[string, unknown, RegExp?]> = [
  ['rounds', -1],
  ['rounds', 1e9],
  ['rounds', 1.5],
  ['iterations', 2 ** 53],
  ['iterations', 0],
  ['iterations', 'many'],
  ['epochs', 1e12],
  ['epochs', -2],
  ['batchSize', 0],
  ['batchSize', 1e7],
  ['evalEvery', 0],
  ['evalEvery', 1e15],
  ['warmupIterations', -1],
  ['warmupIterations', 1e15],
  ['rewindIteration', -3],
  ['rewindIteration', 1e15],
  ['rewindFraction', 1],
  ['maxTrainExamples', 0],
  ['maxTrainExamples', 1e15],
  ['seed', -1],
  ['seed', 2 ** 60],
  ['learningRate', 0],
  ['learningRate', 1e9],
  ['momentum', 1],
  ['fraction', 0],
  ['fraction', 1],
  ['convFraction', 2],
  ['denseFraction', -0.1],
  ['outputFraction', 'half'],
  ['targetDensity', 0],
  ['targetDensity', 1.5],
  ['filterFraction', 1],
  ['filterSteps', 0],
  ['filterSteps', 1e6],
  ['fineTuneIterations', 1e15],
  ['targetFlopReduction', 0],
  ['method', 'magic'],
  ['schedule', 'sometimes'],
  ['ranking', 'random'],
  ['rewind', 'never'],
  ['controls', 'some'],
  ['controlKinds', []],
  ['controlKinds', ['reinit', 'nope']],
  ['optimizer', 'lbfgs'],
  ['lrSchedule', 'wild'],
  ['filterImportance', 'l0'],
  ['filterSchedule', 'daily'],
  ['float16', 'yes'],
  ['skipLayers', 'fc1'],
  ['skipLayers', Array.from({ length: 5000 }, (_, i) => `l${i}`)],
  ['filterFractions', { conv1: 2 }],
];
for (const [field, value] of OUT_OF_RANGE) {
  rest(`spec.${field} = ${JSON.stringify(value).slice(0, 40)}`, () => json('/v1/jobs', { ...base, [field]: value }), invalid(new RegExp(`^(spec\\.)?${field}`), new RegExp(field)));
}
for (const [field, value] of OUT_OF_RANGE.filter((_, i) => i % 4 === 0)) {
  grpc(`SubmitJob spec.${field} = ${JSON.stringify(value).slice(0, 40)}`, (env) => env.grpc.submitJob({ ...base, [field]: value } as never), invalid(new RegExp(field), new RegExp(field)));
}

// ---- job spec: shape of the body, names and references ----
rest('empty JSON body', () => json('/v1/jobs', {}), invalid(/model|dataset/, /model|dataset/));
rest('no body at all', () => ({ method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' } }), invalid(/model|dataset|body/, /required|model|dataset/));
rest('body is null', () => json('/v1/jobs', 'null'), invalid('body', /object/));
rest('body is an array', () => json('/v1/jobs', [base]), invalid('body', /object/));
rest('body is not JSON', () => json('/v1/jobs', '{"model": "lenet'), invalid('body', /JSON/i));
rest('body is form data', () => ({ method: 'POST', path: '/v1/jobs', body: 'model=lenet', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), invalid(/body|content-type/, /JSON/i));
rest('unknown spec field', () => json('/v1/jobs', { ...base, turbo: true }), invalid('turbo', /turbo/));
rest('50,000 unknown fields (the answer does not grow with them)', () => json('/v1/jobs', { ...base, ...Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, 1])) }), invalid('k0', /k0.*and 49995 more: unknown fields/));
rest('a 10,000-character job id', () => ({ method: 'GET', path: `/v1/jobs/${'a'.repeat(10_000)}` }), invalid('id', /id: not an id/));
rest('only a model', () => json('/v1/jobs', { model: 'lenet-20-10' }), invalid(/dataset/, /dataset/));
rest('zoo name with huge widths', () => json('/v1/jobs', { ...base, model: 'lenet-99999999-99999999' }), invalid(/model/, /lenet|width|units|large/i));
rest('unknown zoo name', () => json('/v1/jobs', { ...base, model: 'gpt-5' }), invalid(/model/, /zoo|model/));
rest('model is a server path', () => json('/v1/jobs', { ...base, model: '/etc/passwd' }), invalid(/model/, /model/));
rest('model is a URL', () => json('/v1/jobs', { ...base, model: 'http://127.0.0.1:5432/model.json' }), invalid(/model/, /model/));
rest('model id not a uuid', () => json('/v1/jobs', { ...base, model: 'model:../../etc' }), notFound(/model/, 'model'));
rest('model id of nobody', () => json('/v1/jobs', { ...base, model: 'model:6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11' }), notFound(/model/, 'model'));
rest('dataset id of nobody', () => json('/v1/jobs', { ...base, dataset: 'dataset:6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11' }), notFound(/dataset/, 'dataset'));
rest('unknown skip layer', () => json('/v1/jobs', { ...base, skipLayers: ['fc9'] }), invalid(/skipLayers/, /fc9/));
rest('unknown filterFractions layer', (env) => json('/v1/jobs', { ...base, model: `model:${env.modelId}`, method: 'filter', filterFractions: { conv9: 0.5 } }), invalid(/filterFractions|method/, /conv9|conv/));
rest('filter pruning on a model without conv layers', () => json('/v1/jobs', { ...base, method: 'filter', filterFraction: 0.5 }), invalid(/method/, /conv/));
rest('maxTrainExamples too small to split', () => json('/v1/jobs', { ...base, maxTrainExamples: 1 }), invalid(/maxTrainExamples/, /maxTrainExamples/));
rest('job larger than the compute budget', () => json('/v1/jobs', { ...base, rounds: 100, iterations: 1_000_000, batchSize: 4096, controls: 'all' }), invalid(/iterations|rounds|spec|budget/, /budget|examples|limit/i));
rest('Idempotency-Key too long', () => json('/v1/jobs', base, { 'idempotency-key': 'k'.repeat(300) }), invalid('idempotencyKey', /Idempotency-Key/));
rest('Idempotency-Key with spaces', () => json('/v1/jobs', base, { 'idempotency-key': 'a b' }), invalid('idempotencyKey', /Idempotency-Key/));

// ---- dataset references: SSRF, file roots, schemes; at registration and at submit ----
const REFUSED_URLS: Array<[string, string]> = [
  ['loopback', 'http://127.0.0.1:5432/data.npz'],
  ['loopback v6', 'http://[::1]:8080/data.npz'],
  ['hex loopback', 'http://0x7f000001/data.npz'],
  ['decimal loopback', 'http://2130706433/data.npz'],
  ['octal loopback', 'http://0177.0.0.1/data.npz'],
  ['short loopback', 'http://127.1/data.npz'],
  ['localhost', 'http://localhost:5432/data.npz'],
  ['sub.localhost', 'http://db.localhost/data.npz'],
  ['link-local metadata', 'http://169.254.169.254/latest/meta-data/#format=npz'],
  ['private 10/8', 'http://10.0.0.1/data.npz'],
  ['private 192.168', 'https://192.168.1.1/data.npz'],
  ['CGNAT', 'http://100.64.0.1/data.npz'],
  ['unspecified', 'http://0.0.0.0:8080/data.npz'],
  ['IPv4-mapped v6', 'http://[::ffff:127.0.0.1]/data.npz'],
  ['IPv4-mapped hex v6', 'http://[::ffff:7f00:1]/data.npz'],
  ['unique-local v6', 'http://[fd00::1]/data.npz'],
  ['multicast', 'http://224.0.0.1/data.npz'],
];
for (const [label, url] of REFUSED_URLS) {
  rest(`register ${label} URL`, () => json('/v1/datasets', { reference: url }), invalid('reference', /not allowed|address/i));
}
for (const [label, url] of REFUSED_URLS.filter((_, i) => i % 2 === 0)) {
  rest(`submit with ${label} URL`, () => json('/v1/jobs', { ...base, dataset: url }), invalid(/dataset/, /not allowed|address/i));
}
for (const [label, url] of REFUSED_URLS.filter((_, i) => i % 3 === 0)) {
  grpc(`RegisterDataset ${label} URL`, (env) => env.grpc.registerDataset(url), invalid('reference', /not allowed|address/i));
}
rest('file outside the roots: /etc/passwd', () => json('/v1/datasets', { reference: 'file:///etc/passwd' }), invalid('reference', /not allowed|root/i));
rest('file outside the roots: /proc/self/environ', () => json('/v1/datasets', { reference: 'file:///proc/self/environ' }), invalid('reference', /not allowed|root/i));
rest('file escaping a root with ..', (env) => json('/v1/datasets', { reference: env.ds('good').replace(/good$/, 'good/../../../etc') }), invalid('reference', /not allowed|root|\.\./i));
rest('malformed percent-escape in a URL', () => json('/v1/datasets', { reference: 'https://example.com/%zz' }), invalid('reference', /percent-escape/));
rest('malformed percent-escape at submit', () => json('/v1/jobs', { ...base, dataset: 'https://example.com/a%E0%A4%A#format=idx' }), invalid(/dataset/, /percent-escape/));
grpc('RegisterDataset malformed percent-escape', (env) => env.grpc.registerDataset('https://example.com/%zz'), invalid('reference', /percent-escape/));
rest('ftp reference', () => json('/v1/datasets', { reference: 'ftp://example.com/mnist' }), invalid('reference', /ftp|scheme|reference/i));
rest('reference missing', () => json('/v1/datasets', {}), invalid('reference', /reference/));
rest('reference not a string', () => json('/v1/datasets', { reference: 42 }), invalid('reference', /reference/));
rest('reference too long', () => json('/v1/datasets', { reference: `builtin:${'x'.repeat(5000)}` }), invalid('reference', /reference/));
rest('unknown field on a dataset', () => json('/v1/datasets', { reference: 'builtin:mnist', owner: 'someone-else' }), invalid('owner', /owner/));
rest('unknown builtin', () => json('/v1/datasets', { reference: 'builtin:imagenet' }), invalid('reference', /imagenet/));

// ---- dataset files: one defect each, caught at registration (and at submit) ----
const BAD_DATA: Array<[string, RegExp, string?]> = [
  ['idx-wrong-magic', /IDX|magic/i],
  ['idx-bad-type', /type|IDX/i],
  ['idx-labels-out-of-range', /label/i, '#classes=10'],
  ['idx-truncated-images', /truncat|short|bytes/i],
  ['idx-count-mismatch', /count|labels|match/i],
  ['idx-huge-dims', /large|limit|bytes|dims/i],
  ['idx-gzip-bomb', /expand|fold|ratio|limit/i],
  ['idx-gzip-truncated', /gzip|truncat|corrupt/i],
  ['npy-wrong-magic', /NPY|magic/i],
  ['npy-huge-shape', /large|limit|bytes|shape/i],
  ['npy-labels-out-of-range', /label/i],
  ['npy-count-mismatch', /count|match|labels/i],
  ['cifar-truncated', /truncat|records|bytes|3073/i],
  ['cifar-label-out-of-range', /label/i],
  ['npy-single-class', /single class/i],
];
for (const [name, message, options] of BAD_DATA) {
  rest(`register dataset ${name}`, (env) => json('/v1/datasets', { reference: env.ds(name, options) }), invalid('reference', message));
}
for (const [name, message, options] of BAD_DATA.filter((_, i) => i % 3 === 0)) {
  rest(`submit dataset ${name}`, (env) => json('/v1/jobs', { ...base, dataset: env.ds(name, options) }), invalid(/dataset/, message));
  grpc(`gRPC RegisterDataset ${name}`, (env) => env.grpc.registerDataset(env.ds(name, options)), invalid('reference', message));
}
// Zoo models are built for the dataset's shape; an uploaded model (28x28x1 in, 10 classes out) is not.
rest('20x20 images into a 28x28 uploaded model', (env) => json('/v1/jobs', { ...base, model: `model:${env.modelId}`, dataset: env.ds('idx-shape-mismatch') }), invalid(/dataset|model/, /expects|shape|input/i));
rest('CIFAR images into a 28x28 uploaded model', (env) => json('/v1/jobs', { ...base, model: `model:${env.modelId}`, dataset: env.ds('cifar-into-lenet') }), invalid(/dataset|model/, /expects|shape|input/i));
rest('labels beyond an uploaded model\'s classes', (env) => json('/v1/jobs', { ...base, model: `model:${env.modelId}`, dataset: env.ds('idx-labels-out-of-range') }), invalid(/dataset|model/, /label|class/i));

// ---- model uploads: files ----
rest('model.json is not JSON', () => upload([{ name: 'model.json', bytes: utf8('{"modelTopology": ') }]), invalid(/model\.json/, /JSON/));
rest('model.json is a list', () => upload([{ name: 'model.json', bytes: utf8('[]') }]), invalid(/model\.json/, /object/));
rest('model.json without topology', () => upload(withModelJson(goodModel(), (j) => ({ weightsManifest: j.weightsManifest }))), invalid(/modelTopology/, /modelTopology/));
rest('unknown layer class', () => upload(denseModel(784, [16, 10], { className: 'EvilLayer' })), invalid(/files|layer|model\.json/, /EvilLayer/));
rest('weights shorter than the manifest', () => upload(denseModel(784, [16, 10], { dropBytes: 8 })), invalid(/files|weights/, /bytes|weights|manifest/i));
rest('weights longer than the manifest', () => upload(denseModel(784, [16, 10], { extraBytes: 8 })), invalid(/files|weights/, /bytes|weights|manifest/i));
rest('weight file missing', () => upload(goodModel().slice(0, 1)), invalid(/weightsManifest/, /missing/));
rest('manifest path escapes', () => upload(withModelJson(goodModel(), (j) => void ((j.weightsManifest as { paths: string[] }[])[0]!.paths = ['../../etc/passwd']))), invalid(/paths/, /unsafe|name/i));
rest('a 20M-unit Dense layer', () => upload(denseModel(784, [20_000_000, 10])), invalid(/files|layer|model\.json|d0/, /parameters|units|large|limit/i));
rest('a 1e12-parameter model', () => upload(denseModel(1_000_000, [1_000_000, 10])), invalid(/files|layer|model\.json|d0/, /parameters|large|limit/i));
rest('negative input shape', () => upload(denseModel(784, [16, 10], { inputShape: [null, -784] })), invalid(/files|layer|model\.json|shape/, /shape|dimension|-784/i));
rest('two model.json files', () => upload([...goodModel(), { name: 'b/model.json', bytes: goodModel()[0]!.bytes }]), invalid('files', /more than one/));
rest('no files', () => ({ method: 'POST', path: '/v1/models', body: new FormData() }), invalid(/files|body/, /files|no/i));
rest('unsafe file name', () => upload([{ name: '../model.json', bytes: goodModel()[0]!.bytes }, goodModel()[1]!]), invalid(/files/, /unsafe/));
rest('wrong content type', () => ({ method: 'POST', path: '/v1/models', body: '{}', headers: { 'content-type': 'application/json' } }), invalid('content-type', /multipart|archive/));
rest('upload over the size limit', () => upload([goodModel()[0]!, { name: 'weights.bin', bytes: new Uint8Array(2 * 1024 * 1024) }]), { status: 413, code: 'PAYLOAD_TOO_LARGE', message: /exceeds|large/ });

// ---- model uploads: broken multipart ----
const cut = (body: string): RestRequest => ({ method: 'POST', path: '/v1/models', body: utf8(body), headers: { 'content-type': 'multipart/form-data; boundary=XYZ' } });
rest('multipart: file part cut off', () => cut('--XYZ\r\nContent-Disposition: form-data; name="files"; filename="a.bin"\r\n\r\nxx'), invalid(/body|files/, /ended|malformed|unexpected/i));
rest('multipart: cut between parts', () => cut('--XYZ\r\nContent-Disposition: form-data; name="files"; filename="model.json"\r\n\r\n{}\r\n--XYZ\r\n'), invalid(/body|files/, /ended|malformed|unexpected/i));
rest('multipart: no boundary', () => ({ method: 'POST', path: '/v1/models', body: utf8('xx'), headers: { 'content-type': 'multipart/form-data' } }), invalid(/body/, /boundary|multipart/i));
rest('multipart: garbage', () => cut('this is not multipart at all'), invalid(/body|files/, /ended|malformed|unexpected|no files/i));
rest('multipart: cut inside headers', () => cut('--XYZ\r\nContent-Disposition: form-data; na'), invalid(/body|files/, /ended|malformed|unexpected/i));

// ---- model uploads: archives ----
rest('archive: zip with traversal', () => rawArchive(zipOf([{ name: '../../evil/model.json', bytes: goodModel()[0]!.bytes }, goodModel()[1]!])), invalid(/archive/, /unsafe/));
rest('archive: zip with an absolute name', () => rawArchive(zipOf([{ name: '/etc/model.json', bytes: goodModel()[0]!.bytes }])), invalid(/archive/, /unsafe/));
rest('archive: tar with traversal', () => rawArchive(tarOf([{ name: '../model.json', bytes: goodModel()[0]!.bytes }]), 'application/x-tar'), invalid(/archive/, /unsafe/));
rest('archive: tar with a symlink', () => rawArchive(tarOf([...goodModel().slice(0, 1), { name: 'weights.bin', bytes: new Uint8Array(0), type: '2', link: '/etc/passwd' }]), 'application/x-tar'), invalid(/archive/, /link|symlink|type/i));
rest('archive: tar.gz with a symlink', () => rawArchive(tgzOf([{ name: 'model.json', bytes: new Uint8Array(0), type: '2', link: '../../../etc/shadow' }]), 'application/gzip'), invalid(/archive/, /link|symlink|type/i));
rest('archive: zip bomb', () => rawArchive(zipOf([goodModel()[0]!, { name: 'weights.bin', bytes: new Uint8Array(64 * 1024 * 1024) }])), { status: 413, code: 'PAYLOAD_TOO_LARGE', message: /exceeds|large/ });
rest('archive: gzip bomb', () => rawArchive(gzipZeros(256 * 1024 * 1024), 'application/gzip'), { status: 413, code: 'PAYLOAD_TOO_LARGE', message: /exceeds|large/ });
rest('archive: not an archive', () => rawArchive(utf8('hello world, not a zip'), 'application/zip'), invalid(/archive/, /zip|archive/));
rest('archive: truncated zip', () => rawArchive(zipOf(goodModel()).subarray(0, 100)), invalid(/archive/, /zip|archive|corrupt|truncat/i));
rest('archive: truncated tar', () => rawArchive(tarOf(goodModel()).subarray(0, 700), 'application/x-tar'), invalid(/archive/, /truncat|corrupt|tar/i));

// ---- queries and ids ----
rest('?kind=bogus on artifacts', () => ({ method: 'GET', path: '/v1/artifacts?kind=bogus' }), invalid('kind', /kind/));
rest('?jobId not a uuid', () => ({ method: 'GET', path: '/v1/artifacts?jobId=../../x' }), invalid('jobId', /jobId/));
rest('?modelId not a uuid', () => ({ method: 'GET', path: '/v1/artifacts?modelId=abc' }), invalid('modelId', /modelId/));
rest('?status=bogus on jobs', () => ({ method: 'GET', path: '/v1/jobs?status=bogus' }), invalid('status', /status/));
rest('?limit=-1 on jobs', () => ({ method: 'GET', path: '/v1/jobs?limit=-1' }), invalid('limit', /limit/));
rest('?limit=abc on jobs', () => ({ method: 'GET', path: '/v1/jobs?limit=abc' }), invalid('limit', /limit/));
rest('?limit=1e9 on jobs', () => ({ method: 'GET', path: '/v1/jobs?limit=1000000000' }), invalid('limit', /limit/));
rest('?cursor=garbage on jobs', () => ({ method: 'GET', path: '/v1/jobs?cursor=%00%01' }), invalid('cursor', /cursor/));
rest('unknown query parameter', () => ({ method: 'GET', path: '/v1/jobs?sort=evil' }), invalid('sort', /sort/));
rest('job id not a uuid', () => ({ method: 'GET', path: '/v1/jobs/not-a-uuid' }), invalid('id', /id: not an id/));
rest('artifact id not a uuid', () => ({ method: 'GET', path: '/v1/artifacts/..%2F..%2Fetc' }), invalid('id', /id: not an id/));
rest('cancel a job of nobody', () => ({ method: 'POST', path: '/v1/jobs/6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11/cancel' }), notFound(/job/));
rest('events of a job of nobody', () => ({ method: 'GET', path: '/v1/jobs/6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11/events', headers: { accept: 'application/json' } }), notFound(/job/));
rest('bad Last-Event-ID', () => ({ method: 'GET', path: '/v1/jobs/6f1f7e0e-9a51-4c2b-8d36-1b8c1b0c0a11/events', headers: { 'last-event-id': 'abc' } }), { status: 400, code: 'INVALID_ARGUMENT', message: /Last-Event-ID/i });

// ---- keys ----
rest('no key', () => ({ method: 'GET', path: '/v1/jobs', key: null }), { status: 401, code: 'UNAUTHENTICATED', message: /key/i });
rest('malformed key', () => ({ method: 'GET', path: '/v1/jobs', key: 'x'.repeat(5000) }), { status: 401, code: 'UNAUTHENTICATED', message: /key/i });
rest('unknown key on upload', () => ({ ...upload(goodModel()), key: `tsk_${'A'.repeat(43)}` }), { status: 401, code: 'UNAUTHENTICATED', message: /key/i });

// ---- gRPC: the same classes through the other door ----
grpc('SubmitJob with an empty spec', (env) => env.grpc.submitJob({} as never), invalid(/model|dataset/, /model|dataset/));
grpc('SubmitJob with a huge zoo name', (env) => env.grpc.submitJob({ ...base, model: 'lenet-99999999-99999999' } as never), invalid(/model/, /lenet|width|units|large/i));
grpc('SubmitJob with an unknown skip layer', (env) => env.grpc.submitJob({ ...base, skipLayers: ['fc9'] } as never), invalid(/skipLayers/, /fc9/));
grpc('SubmitJob filter on an MLP', (env) => env.grpc.submitJob({ ...base, method: 'filter', filterFraction: 0.5 } as never), invalid(/method/, /conv/));
grpc('SubmitJob over the compute budget', (env) => env.grpc.submitJob({ ...base, rounds: 100, iterations: 1_000_000, batchSize: 4096, controls: 'all' } as never), invalid(/iterations|rounds|spec|budget/, /budget|examples|limit/i));
grpc('SubmitJob without a key', (env) => env.grpcNoKey.submitJob(base as never), { status: 401, code: 'UNAUTHENTICATED', message: /key/i });
grpc('GetJob with a bad id', (env) => env.grpc.getJob('../../etc'), invalid('jobId', /jobId: not an id/));
grpc('ListArtifacts with kind=bogus', (env) => env.grpc.listArtifacts({ kind: 'bogus' }), invalid('kind', /kind/));
grpc('UploadModel not JSON', (env) => env.grpc.uploadModel({ files: [{ name: 'model.json', bytes: utf8('{nope') }] }), invalid(/model\.json/, /JSON/));
grpc('UploadModel a 20M-unit Dense layer', (env) => env.grpc.uploadModel({ files: denseModel(784, [20_000_000, 10]) }), invalid(/files|layer|model\.json|d0/, /parameters|units|large|limit/i));
grpc('UploadModel zip with traversal', (env) => env.grpc.uploadModel({ archive: zipOf([{ name: '../model.json', bytes: goodModel()[0]!.bytes }]) }), invalid(/archive/, /unsafe/));
grpc('UploadModel tar with a symlink', (env) => env.grpc.uploadModel({ archive: tarOf([{ name: 'model.json', bytes: new Uint8Array(0), type: '2', link: '/etc/passwd' }]) }), invalid(/archive/, /link|symlink|type/i));
grpc('UploadModel over the size limit', (env) => env.grpc.uploadModel({ files: [goodModel()[0]!, { name: 'weights.bin', bytes: new Uint8Array(2 * 1024 * 1024) }] }), { status: 413, code: 'PAYLOAD_TOO_LARGE', message: /exceeds|large/ });
for (const m of ['GetJob', 'SubmitJob', 'RegisterDataset', 'ListJobs', 'ListArtifacts']) {
  grpc(`${m} with a malformed protobuf`, (env) => env.grpcRaw(m, new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])), { status: 400, code: 'INVALID_ARGUMENT', message: /runs past|wire type|malformed|protobuf|decode/i });
}

export const CASES: readonly Case[] = Object.freeze(cases);
