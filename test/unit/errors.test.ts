// The one error classifier (store/errors.ts): each error class the service,
// the doors and the worker meet maps to its code, message and field, and a
// failed run is recorded under the job failure codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatasetError } from '../../src/engine/data/errors.js';
import { ModelBudgetError } from '../../src/engine/models/budget.js';
import { SpecError } from '../../src/engine/spec.js';
import { BlobIntegrityError, BlobNotFoundError, BlobStoreUnavailableError, BlobTooLargeError } from '../../src/store/blobs.js';
import { isDatabaseUnavailable } from '../../src/store/unavailable.js';
import { Prisma } from '../../src/store/db.js';
import { ERRORS, JOB_ERROR_CODES, ServiceError, classifyError, jobFailure, toServiceError } from '../../src/store/errors.js';
import * as viaService from '../../src/service/errors.js';

const known = (code: string) => new Prisma.PrismaClientKnownRequestError('raw prisma text', { code, clientVersion: '7' });
const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

/** [case, error, code, message, field, expected] */
const CASES: Array<[string, unknown, string, string, string | undefined, boolean]> = [
  ['ServiceError', new ServiceError('FAILED_PRECONDITION', 'job j already succeeded', 'id'), 'FAILED_PRECONDITION', 'job j already succeeded', 'id', true],
  ['SpecError', new SpecError('rounds: at most 100', 'rounds'), 'INVALID_ARGUMENT', 'rounds: at most 100', 'rounds', true],
  ['DatasetError', new DatasetError('train_images: not an IDX file', 'train_images'), 'INVALID_ARGUMENT', 'train_images: not an IDX file', 'train_images', true],
  // Re-made from a worker thread's message: only the name survives; the field falls back to the dataset.
  ['DatasetError by name', Object.assign(new Error('bad archive'), { name: 'DatasetError' }), 'INVALID_ARGUMENT', 'bad archive', 'dataset', true],
  ['ModelBudgetError', new ModelBudgetError("layer 'huge' (Dense) is too large", 'model.json'), 'INVALID_ARGUMENT', "layer 'huge' (Dense) is too large", 'model.json', true],
  ['BlobTooLargeError', new BlobTooLargeError(10), 'PAYLOAD_TOO_LARGE', 'blob exceeds 10 bytes', undefined, true],
  ['BlobNotFoundError', new BlobNotFoundError('/srv/blobs/ab/cd missing'), 'UNAVAILABLE', 'artifact bytes are not reachable in the blob store', undefined, true],
  ['BlobStoreUnavailableError', new BlobStoreUnavailableError('ENOSPC', 'disk full'), 'UNAVAILABLE', 'blob store unavailable: disk full (ENOSPC)', undefined, true],
  // An S3 endpoint that refuses connections: the blob store's fault, although its code is a socket's.
  ['BlobStoreUnavailableError (S3 socket)', new BlobStoreUnavailableError('ECONNREFUSED', 'the storage endpoint is unreachable'), 'UNAVAILABLE', 'blob store unavailable: the storage endpoint is unreachable (ECONNREFUSED)', undefined, true],
  ['BlobIntegrityError', new BlobIntegrityError('blob ab does not match its sha256'), 'UNAVAILABLE', 'artifact bytes in the blob store do not match their sha256', undefined, true],
  ['database unavailable (socket)', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'), 'UNAVAILABLE', 'database unavailable; retry shortly', undefined, true],
  ['database unavailable (Prisma)', known('P1001'), 'UNAVAILABLE', 'database unavailable; retry shortly', undefined, true],
  ['Prisma unique violation', known('P2002'), 'ALREADY_EXISTS', 'a resource with these identifiers exists already', undefined, true],
  ['Prisma record not found', known('P2025'), 'NOT_FOUND', 'not found', undefined, true],
  ['aborted', new DOMException('This operation was aborted', 'AbortError'), 'INTERNAL', 'internal error', undefined, false],
  ['unknown', new Error('password=hunter2 at db.internal'), 'INTERNAL', 'internal error', undefined, false],
  ['not an Error', 'a thrown string', 'INTERNAL', 'internal error', undefined, false],
];

test('classifyError: each error class maps to its code, message and field', () => {
  for (const [name, e, code, message, field, expected] of CASES) {
    const c = classifyError(e);
    assert.ok(c.error instanceof ServiceError, name);
    assert.deepEqual({ code: c.error.code, message: c.error.message, field: c.error.field, expected: c.expected }, { code, message, field, expected }, name);
    assert.equal(c.error.httpStatus, ERRORS[c.error.code].http, name);
    assert.equal(toServiceError(e).code, code, name);
  }
});

test('classifyError: a thrown ServiceError comes back as itself', () => {
  const e = new ServiceError('RATE_LIMITED', 'slow down');
  assert.equal(classifyError(e).error, e);
});

test('service/errors.ts re-exports the same classifier and table', () => {
  assert.equal(viaService.classifyError, classifyError);
  assert.equal(viaService.ServiceError, ServiceError);
  assert.equal(viaService.ERRORS, ERRORS);
});

test('jobFailure: request faults and the blob store keep their code, the rest is ENGINE_ERROR with its own message', () => {
  const want: Record<string, { code: string; message: string }> = {
    SpecError: { code: 'INVALID_ARGUMENT', message: 'rounds: at most 100' },
    DatasetError: { code: 'INVALID_ARGUMENT', message: 'train_images: not an IDX file' },
    'DatasetError by name': { code: 'INVALID_ARGUMENT', message: 'bad archive' },
    ModelBudgetError: { code: 'INVALID_ARGUMENT', message: "layer 'huge' (Dense) is too large" },
    BlobTooLargeError: { code: 'ENGINE_ERROR', message: 'blob exceeds 10 bytes' },
    BlobNotFoundError: { code: 'UNAVAILABLE', message: 'artifact bytes are not reachable in the blob store' },
    BlobStoreUnavailableError: { code: 'UNAVAILABLE', message: 'blob store unavailable: disk full (ENOSPC)' },
    'BlobStoreUnavailableError (S3 socket)': { code: 'UNAVAILABLE', message: 'blob store unavailable: the storage endpoint is unreachable (ECONNREFUSED)' },
    BlobIntegrityError: { code: 'UNAVAILABLE', message: 'artifact bytes in the blob store do not match their sha256' },
    // The worker hands the run back when the database is away; should one get here, it is the engine's failure.
    'database unavailable (socket)': { code: 'ENGINE_ERROR', message: 'connect ECONNREFUSED 127.0.0.1:5432' },
    'Prisma unique violation': { code: 'ENGINE_ERROR', message: 'raw prisma text' },
    aborted: { code: 'ENGINE_ERROR', message: 'This operation was aborted' },
    unknown: { code: 'ENGINE_ERROR', message: 'password=hunter2 at db.internal' },
    'not an Error': { code: 'ENGINE_ERROR', message: 'a thrown string' },
  };
  for (const [name, e] of CASES) {
    const w = want[name];
    if (!w) continue;
    const f = jobFailure(e);
    assert.deepEqual(f, w, name);
    assert.ok((JOB_ERROR_CODES as readonly string[]).includes(f.code), name);
  }
  assert.deepEqual(jobFailure(new Error('')), { code: 'ENGINE_ERROR', message: 'engine failed' });
});

test('a blob store fault is never a lost database, whatever socket code it carries (the worker retries them differently)', () => {
  assert.equal(isDatabaseUnavailable(new BlobStoreUnavailableError('ECONNREFUSED', 'the storage endpoint is unreachable')), false);
  assert.equal(isDatabaseUnavailable(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')), true);
});
