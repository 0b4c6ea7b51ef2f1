// The store owns every query: outside src/store (and Prisma's generated
// client) no file calls Prisma or sends raw SQL. The layer rules on imports
// are dependency-cruiser's; this is the one rule it cannot see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');
const OUTSIDE = new Set([join(SRC, 'store'), join(SRC, 'generated')]);
/** A Prisma client call, raw SQL or a transaction, the way store/ writes them. */
const QUERY = /\bprisma\.|\$queryRaw|\$executeRaw|\$transaction|\btx\.[a-z]\w*\.(?:find|create|update|upsert|delete|count|groupBy|aggregate)/;

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!OUTSIDE.has(path)) yield* sources(path);
    } else if (/\.(ts|mts|mjs|js)$/.test(entry.name)) {
      yield path;
    }
  }
}

test('no Prisma call or raw SQL outside src/store', () => {
  const found: string[] = [];
  let files = 0;
  for (const file of sources(SRC)) {
    files++;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (QUERY.test(line)) found.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.ok(files > 50, `expected the source tree under ${SRC}, found ${files} files`);
  assert.deepEqual(found, []);
});

test('the pattern catches what it is meant to', () => {
  for (const line of ['await ctx.prisma.job.findMany({})', 'await tx.$queryRaw`SELECT 1`', 'prisma.$transaction(async (tx) => {})', 'await tx.job.update({})']) {
    assert.ok(QUERY.test(line), line);
  }
  assert.ok(!QUERY.test('const rows = await listJobRows(ctx.prisma, tenant, query);'));
});
