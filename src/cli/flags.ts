// CLI flags generated from the run-spec schema: every field is a
// `--kebab-case` flag with its type, default and description taken from the
// schema's field descriptors (engine/spec/fields.ts), the same ones REST and
// gRPC are generated from, so the CLI can never drift from what they accept.
import type { z } from 'zod';
import { describeFields, type FieldDescriptor } from '../engine/spec.js';

export interface FlagInfo {
  key: string;
  flag: string;
  type: 'string' | 'number' | 'boolean' | 'enum' | 'list';
  choices?: string[];
  defaultValue?: unknown;
  description: string;
}

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

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

export class UsageError extends Error {}

/**
 * Parse argv into (spec fields, other options). Lists are comma-separated;
 * booleans take no value (`--float16`) or `--no-float16`.
 */
export function parseFlags(
  argv: string[],
  flags: FlagInfo[],
  extra: Record<string, 'boolean' | 'string'> = {},
): { spec: Record<string, unknown>; options: Record<string, string | boolean>; positional: string[] } {
  const byFlag = new Map(flags.map((f) => [f.flag, f]));
  const spec: Record<string, unknown> = {};
  const options: Record<string, string | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    let [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const negated = name.startsWith('--no-') && byFlag.get(`--${name.slice(5)}`)?.type === 'boolean';
    if (negated) name = `--${name.slice(5)}`;
    const f = byFlag.get(name);
    const extraType = extra[name.slice(2)];
    if (!f && !extraType) throw new UsageError(`unknown flag ${name} (see --help)`);
    const isBool = f ? f.type === 'boolean' : extraType === 'boolean';
    let value: string | boolean;
    if (isBool) value = inline === undefined ? !negated : inline !== 'false';
    else {
      value = inline ?? argv[++i] ?? '';
      if (value === '' || (inline === undefined && value.startsWith('--'))) throw new UsageError(`${name} needs a value`);
    }
    if (!f) {
      options[name.slice(2)] = value;
      continue;
    }
    if (f.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`${name}: '${String(value)}' is not a number`);
      spec[f.key] = n;
    } else if (f.type === 'list') spec[f.key] = String(value).split(',').map((s) => s.trim()).filter(Boolean);
    else spec[f.key] = value;
  }
  return { spec, options, positional };
}

export function flagHelp(flags: FlagInfo[]): string {
  return flags
    .map((f) => {
      const type = f.choices ? f.choices.join('|') : f.type;
      const def = f.defaultValue === undefined ? '' : ` (default ${JSON.stringify(f.defaultValue)})`;
      return `  ${`${f.flag} <${type}>`.padEnd(44)} ${f.description}${def}`;
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
