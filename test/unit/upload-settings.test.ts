// The upload-gate settings: a tenant's share of the slots (half by default,
// at least one, never more than all), the idle timeout and the receive
// deadline, each checked when the service starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/runtime/config.js';

test('defaults: half the slots per tenant, 30 s idle, 300 s to receive, model archives expand at most 500-fold', () => {
  const c = loadConfig({});
  assert.equal(c.maxConcurrentUploads, 4);
  assert.equal(c.tenantMaxConcurrentUploads, 2);
  assert.equal(c.uploadIdleSeconds, 30);
  assert.equal(c.uploadReceiveSeconds, 300);
  assert.equal(c.modelLimits.maxRatio, 500);
  assert.equal(loadConfig({ TICKETSMITH_MAX_CONCURRENT_UPLOADS: '1' }).tenantMaxConcurrentUploads, 1);
  assert.equal(loadConfig({ TICKETSMITH_MAX_CONCURRENT_UPLOADS: '7' }).tenantMaxConcurrentUploads, 3);
  assert.equal(loadConfig({ TICKETSMITH_MAX_CONCURRENT_UPLOADS: '7', TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS: '7' }).tenantMaxConcurrentUploads, 7);
});

test('impossible upload settings are refused at start, naming the variable', () => {
  assert.throws(() => loadConfig({ TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS: '5' }), /TICKETSMITH_TENANT_MAX_CONCURRENT_UPLOADS: 5 is more than TICKETSMITH_MAX_CONCURRENT_UPLOADS \(4\)/);
  assert.throws(() => loadConfig({ TICKETSMITH_UPLOAD_IDLE_SECONDS: '0' }), /TICKETSMITH_UPLOAD_IDLE_SECONDS/);
  assert.throws(() => loadConfig({ TICKETSMITH_UPLOAD_IDLE_SECONDS: '60', TICKETSMITH_UPLOAD_RECEIVE_SECONDS: '30' }), /TICKETSMITH_UPLOAD_IDLE_SECONDS: longer than TICKETSMITH_UPLOAD_RECEIVE_SECONDS/);
});
