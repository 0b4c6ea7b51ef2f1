// TICKETSMITH_BLOB_STORE and the S3 settings (runtime/config.ts): one setting
// chooses the store, the S3 settings are checked at start with errors naming
// the variable, and settings of the store not chosen are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from '../../src/runtime/config.js';

const S3 = { TICKETSMITH_BLOB_STORE: 's3', TICKETSMITH_S3_BUCKET: 'artifacts-1' };

test('the folder store is the default, in the blob folder', () => {
  const c = loadConfig({ TICKETSMITH_DATA_DIR: '/srv/ts' });
  assert.deepEqual(c.blobStore, { kind: 'folder', dir: resolve('/srv/ts/blobs') });
});

test('s3 with every setting: prefix ends in /, endpoint and path style kept', () => {
  const c = loadConfig({
    ...S3,
    TICKETSMITH_S3_PREFIX: 'prod/ticketsmith',
    TICKETSMITH_S3_ENDPOINT: 'http://minio.internal:9000',
    TICKETSMITH_S3_REGION: 'eu-west-1',
    TICKETSMITH_S3_FORCE_PATH_STYLE: 'true',
  });
  assert.deepEqual(c.blobStore, {
    kind: 's3',
    bucket: 'artifacts-1',
    prefix: 'prod/ticketsmith/',
    endpoint: 'http://minio.internal:9000',
    region: 'eu-west-1',
    forcePathStyle: true,
  });
});

test('s3 with the bucket only: AWS S3 in AWS_REGION (or us-east-1), no prefix, virtual-hosted style', () => {
  assert.deepEqual(loadConfig({ ...S3, AWS_REGION: 'ap-south-1' }).blobStore, { kind: 's3', bucket: 'artifacts-1', prefix: '', region: 'ap-south-1', forcePathStyle: false });
  assert.deepEqual(loadConfig(S3).blobStore, { kind: 's3', bucket: 'artifacts-1', prefix: '', region: 'us-east-1', forcePathStyle: false });
});

test('bad S3 settings fail at start naming the variable', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ TICKETSMITH_BLOB_STORE: 's3' }, /TICKETSMITH_S3_BUCKET: required when TICKETSMITH_BLOB_STORE is s3/],
    [{ TICKETSMITH_BLOB_STORE: 'minio' }, /TICKETSMITH_BLOB_STORE/],
    [{ ...S3, TICKETSMITH_S3_BUCKET: 'ab' }, /TICKETSMITH_S3_BUCKET: a bucket name/],
    [{ ...S3, TICKETSMITH_S3_BUCKET: 'Upper_Case' }, /TICKETSMITH_S3_BUCKET/],
    [{ ...S3, TICKETSMITH_S3_ENDPOINT: 'minio:9000' }, /TICKETSMITH_S3_ENDPOINT/],
    [{ ...S3, TICKETSMITH_S3_ENDPOINT: 'ftp://minio.internal' }, /TICKETSMITH_S3_ENDPOINT: an http:\/\/ or https:\/\/ URL/],
    [{ ...S3, TICKETSMITH_S3_PREFIX: '/abs' }, /TICKETSMITH_S3_PREFIX/],
    [{ ...S3, TICKETSMITH_S3_PREFIX: 'a/../b' }, /TICKETSMITH_S3_PREFIX/],
    [{ ...S3, TICKETSMITH_S3_FORCE_PATH_STYLE: 'maybe' }, /TICKETSMITH_S3_FORCE_PATH_STYLE/],
    [{ ...S3, TICKETSMITH_S3_REGION: 'EU West' }, /TICKETSMITH_S3_REGION/],
    [{ ...S3, TICKETSMITH_BLOB_DIR: '/srv/blobs' }, /TICKETSMITH_BLOB_DIR is set but TICKETSMITH_BLOB_STORE is s3/],
    [{ TICKETSMITH_S3_BUCKET: 'artifacts-1' }, /TICKETSMITH_S3_BUCKET is set but TICKETSMITH_BLOB_STORE is folder/],
  ];
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(env));
  }
});
