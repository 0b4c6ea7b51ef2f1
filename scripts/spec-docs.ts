// Prints the run-spec table that README.md embeds between the
// `<!-- spec-table -->` markers; `--write` updates README.md in place.
import { readFile, writeFile } from 'node:fs/promises';
import { RunSpecSchema } from '../src/engine/spec.js';
import { flagsOf, flagTableMarkdown } from '../src/cli/flags.js';

const table = flagTableMarkdown(flagsOf(RunSpecSchema));
if (process.argv.includes('--write')) {
  const readme = await readFile('README.md', 'utf8');
  const next = readme.replace(/<!-- spec-table -->[\s\S]*<!-- \/spec-table -->/, `<!-- spec-table -->\n${table}\n<!-- /spec-table -->`);
  await writeFile('README.md', next);
} else {
  process.stdout.write(`${table}\n`);
}
