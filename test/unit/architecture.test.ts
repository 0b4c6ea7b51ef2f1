// The layer rules (.dependency-cruiser.cjs, `npm run lint:deps`) hold on src/,
// with no cycle; the rules really fire on a violating import (a config whose
// paths match nothing would pass everything); and docs/architecture.md names
// every folder under src/, so the map cannot fall behind the tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = join(REPO, '.dependency-cruiser.cjs');
const DEPCRUISE = join(REPO, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string; severity: string };
  cycle?: Array<{ name: string }>;
}
interface CruiseResult {
  modules: Array<{ source: string; dependencies: Array<{ resolved: string; circular: boolean }> }>;
  summary: { violations: Violation[]; error: number; totalCruised: number };
}

/** depcruise's JSON for `target` under the repo's config, run in `cwd`. It exits non-zero on errors; the JSON is still printed. */
function cruise(cwd: string, target: string): Promise<CruiseResult> {
  return new Promise((done, fail) => {
    execFile(process.execPath, [DEPCRUISE, target, '--config', CONFIG, '--output-type', 'json'], { cwd, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      try {
        done(JSON.parse(stdout) as CruiseResult);
      } catch {
        fail(new Error(`depcruise printed no JSON (${err?.message ?? 'exit 0'}): ${stderr.slice(-2000)}`));
      }
    });
  });
}

const describe = (v: Violation) => (v.cycle ? `${v.rule.name}: ${[v.from, ...v.cycle.map((c) => c.name)].join(' → ')}` : `${v.rule.name}: ${v.from} → ${v.to}`);

test('src/ keeps the layer rules and has no circular import', async () => {
  const r = await cruise(REPO, 'src');
  assert.ok(r.summary.totalCruised > 100, `cruised only ${r.summary.totalCruised} modules`);
  const layers = r.summary.violations.filter((v) => v.rule.name !== 'no-circular');
  // Cycles straight from the module graph, so a rule edited away cannot hide one.
  const cycles = r.modules
    .filter((m) => m.source.startsWith('src/') && !m.source.startsWith('src/generated/'))
    .flatMap((m) => m.dependencies.filter((d) => d.circular).map((d) => `${m.source} → ${d.resolved}`));
  assert.deepEqual({ layerViolations: layers.map(describe), cycles }, { layerViolations: [], cycles: [] });
  assert.equal(r.summary.error, 0);
});

test('each rule fires on an import that breaks it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arch-'));
  try {
    const files: Record<string, string> = {
      'src/engine/run.ts': "import { q } from '../store/jobs.js';\nimport { b } from '../bench/plan.js';\nexport const run = q + b;\n",
      'src/store/jobs.ts': "import { w } from '../queue/worker.js';\nexport const q = w;\n",
      'src/queue/worker.ts': "import { s } from '../service/jobs.js';\nexport const w = s;\n",
      'src/service/jobs.ts': "import { a } from '../api/app.js';\nexport const s = a;\n",
      'src/api/app.ts': "import { q } from '../store/jobs.js';\nexport const a = 1;\nexport const again = q;\n",
      'src/cli/main.ts': "import { boss } from '../queue/boss.js';\nimport { bench } from '../../scripts/bench.js';\nexport const m = boss + bench;\n",
      'src/queue/boss.ts': 'export const boss = 1;\n',
      'src/runtime/config.ts': "import { run } from '../engine/run.js';\nexport const c = run;\n",
      'src/bench/plan.ts': "import { s } from '../service/jobs.js';\nexport const b = s;\n",
      'src/web/page.ts': "import type { X } from '../generated/prisma/client.js';\nexport type Y = X;\n",
      'src/generated/prisma/client.ts': 'export type X = number;\n',
      'scripts/bench.ts': 'export const bench = 1;\n',
      'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true, noEmit: true } }),
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    const r = await cruise(dir, 'src');
    const found = new Set(r.summary.violations.map((v) => (v.cycle ? `${v.rule.name}` : `${v.rule.name}: ${v.from} → ${v.to}`)));
    for (const expected of [
      'engine-stays-pure: src/engine/run.ts → src/store/jobs.ts',
      'engine-stays-pure: src/engine/run.ts → src/bench/plan.ts',
      'store-below-queue: src/store/jobs.ts → src/queue/worker.ts',
      'queue-below-service: src/queue/worker.ts → src/service/jobs.ts',
      'service-knows-no-door: src/service/jobs.ts → src/api/app.ts',
      'doors-go-through-service: src/api/app.ts → src/store/jobs.ts',
      'doors-go-through-service: src/cli/main.ts → src/queue/boss.ts',
      'doors-go-through-service: src/web/page.ts → src/generated/prisma/client.ts',
      'runtime-is-the-floor: src/runtime/config.ts → src/engine/run.ts',
      'bench-measures-the-engine: src/bench/plan.ts → src/service/jobs.ts',
      'src-stands-alone: src/cli/main.ts → scripts/bench.ts',
      'no-circular',
    ]) {
      assert.ok(found.has(expected), `${expected} not reported; got:\n${[...found].join('\n')}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('nothing in src/ names a file under scripts/ or test/ to load or spawn', async () => {
  // Imports are depcruise's; this catches a path handed to spawn, new URL or resolve
  // (a string literal that starts with scripts/ or test/, or climbs to them).
  const src = join(REPO, 'src');
  const files = (await readdir(src, { recursive: true })).filter((f) => /\.(ts|mjs|js)$/.test(f) && !f.startsWith('generated'));
  assert.ok(files.length > 100, `${files.length} files`);
  const found: string[] = [];
  for (const f of files) {
    const text = await readFile(join(src, f), 'utf8');
    text.split('\n').forEach((line, i) => {
      if (/['"`](\.\.\/)*(scripts|test)\//.test(line)) found.push(`src/${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});

async function folders(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(root, entry.name);
    out.push(path, ...(await folders(path)));
  }
  return out;
}

test('docs/architecture.md names every folder under src/, with a section for each top-level one', async () => {
  const doc = await readFile(join(REPO, 'docs/architecture.md'), 'utf8');
  const src = join(REPO, 'src');
  const all = (await folders(src)).map((p) => relative(src, p)).filter((p) => p !== 'generated' && !p.startsWith('generated/'));
  assert.ok(all.includes('engine') && all.includes('api/rest'), `folders found: ${all.join(', ')}`);
  const missing = all.filter((p) => !doc.includes(`src/${p}/`));
  assert.deepEqual(missing, [], 'folders under src/ that docs/architecture.md does not name as src/<folder>/');
  const headings = doc.split('\n').filter((l) => /^#{2,4} /.test(l));
  const noSection = all.filter((p) => !p.includes('/')).filter((p) => !headings.some((h) => h.includes(`src/${p}/`)));
  assert.deepEqual(noSection, [], 'top-level folders without a section of their own');
});
