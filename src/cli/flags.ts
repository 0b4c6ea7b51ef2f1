// CLI flags generated from the run-spec schema: every field is a
// `--kebab-case` flag with its type, default and description taken from the
// schema's field descriptors (engine/spec/fields.ts), the same ones REST and
// gRPC are generated from, so the CLI can never drift from what they accept.
import type { z } from 'zod';
import { describeFields, type FieldDescriptor } from '../engine/spec.js';
import { kebab, type FlagInfo } from './argv.js';

export { kebab, parseFlags, UsageError, type FlagInfo } from './argv.js';


/** A map field is one string on the command line (`conv1=0.5,conv8=0.5`): the schema parses it. */
const FLAG_TYPES: Record<FieldDescriptor['kind'], FlagInfo['type']> = {
  number: 'number',
  int: 'number',
  boolean: 'boolean',
  enum: 'enum',
  string: 'string',
  list: 'list',
  map: 'string',
};

/** One field descriptor (engine/spec/fields.ts) as a CLI flag. */
export function flagOf(f: FieldDescriptor): FlagInfo {
  const info: FlagInfo = { key: f.name, flag: `--${kebab(f.name)}`, type: FLAG_TYPES[f.kind], description: f.description, defaultValue: f.default };
  if ((f.kind === 'enum' || f.kind === 'list') && f.values) info.choices = [...f.values];
  return info;
}

/** Describe each field of an object schema as a CLI flag. */
export function flagsOf(schema: z.ZodObject): FlagInfo[] {
  return describeFields(schema).fields.map(flagOf);
}

export function flagHelp(flags: FlagInfo[]): string {
  return flags
    .map((f) => {
      const type = f.choices ? f.choices.join('|') : f.type;
      const def = f.defaultValue === undefined ? '' : ` (default ${JSON.stringify(f.defaultValue)})`;
      // A boolean is a switch: `--float16` turns it on, `--no-float16` off.
      const name = f.type === 'boolean' ? `${f.flag}, --no-${f.flag.slice(2)}` : `${f.flag} <${type}>`;
      return `  ${name.padEnd(44)} ${f.description}${def}`;
    })
    .join('\n');
}

/** The run-spec reference table for the README, generated so docs cannot drift from the schema. */
export function flagTableMarkdown(flags: FlagInfo[]): string {
  const rows = flags.map((f) => {
    const type = f.choices ? f.choices.map((c) => `\`${c}\``).join(' \\| ') : f.type;
    const def = f.defaultValue === undefined ? '–' : `\`${JSON.stringify(f.defaultValue)}\``;
    return `| \`${f.key}\` | \`${f.flag}\` | ${type} | ${def} | ${f.description.replace(/\|/g, '\\|')} |`;
  });
  return ['| field | CLI flag | type | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}
