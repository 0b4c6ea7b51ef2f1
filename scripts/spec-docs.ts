// Prints the run-spec table that README.md embeds between the
// `<!-- spec-table -->` markers, one row per field descriptor
// (src/engine/spec/fields.ts); `--write` updates README.md in place, `--check`
// exits 1 when README.md's table is not the one the schema gives.
import { readFile, writeFile } from 'node:fs/promises';
import { RUN_SPEC_FIELDS } from '../src/engine/spec.js';
import { flagOf, flagTableMarkdown } from '../src/cli/flags.js';

const table = flagTableMarkdown(RUN_SPEC_FIELDS.map(flagOf));
const block = `<!-- spec-table -->\n${table}\n<!-- /spec-table -->`;
const markers = /<!-- spec-table -->[\s\S]*<!-- \/spec-table -->/;
if (process.argv.includes('--write')) {
  const readme = await readFile('README.md', 'utf8');
  await writeFile('README.md', readme.replace(markers, block));
} else if (process.argv.includes('--check')) {
  const readme = await readFile('README.md', 'utf8');
  if (readme.match(markers)?.[0] !== block) {
    process.stderr.write('README.md: the run-spec table is stale; run `npm run docs:spec`\n');
    process.exit(1);
  }
} else {
  process.stdout.write(`${table}\n`);
}
