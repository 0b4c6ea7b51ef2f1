// What a tenant's dataset load may reach: the outbound guard of a
// configuration and the file roots, as the engine's DataAccess. Apart from
// datasets.ts so that context.ts can hand it to the worker without importing
// the use cases (which import context.ts's types: a cycle).
import { FILES_DISABLED, type DataAccess } from '../engine/data/access.js';
import type { Config } from '../runtime/config.js';
import { OutboundGuard } from '../runtime/outbound.js';

const guards = new WeakMap<Config, OutboundGuard>();

/** The outbound guard of a configuration (one per config: the allow list is parsed once). */
export function outboundGuard(config: Config): OutboundGuard {
  let guard = guards.get(config);
  if (!guard) {
    guard = new OutboundGuard({ allow: config.outboundAllow });
    guards.set(config, guard);
  }
  return guard;
}

/** What a tenant's dataset load may fetch and read: the worker hands this to the engine. */
export function tenantDataAccess(config: Config): DataAccess {
  return {
    fetch: outboundGuard(config).fetch,
    files: config.allowFileDatasets ? { kind: 'roots', roots: config.fileRoots } : { kind: 'none', reason: FILES_DISABLED },
  };
}
