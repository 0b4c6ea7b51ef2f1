// CLI flags generated from the run-spec schema: every field is a
// `--kebab-case` flag with its type, default and description taken from zod,
// so the CLI can never drift from what REST and gRPC accept.
import { z } from 'zod';

export interface FlagInfo {
  key: string;
  flag: string;
  type: 'string' | 'number' | 'boolean' | 'enum' | 'list';
  choices?: string[];
  defaultValue?: unknown;
  description: string;
}

type Def = { type: string; innerType?: z.ZodType; element?: z.ZodType; entries?: Record<string, string>; defaultValue?: unknown };

const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Describe each field of an object schema as a CLI flag. */
export function flagsOf(schema: z.ZodObject): FlagInfo[] {
  const out: FlagInfo[] = [];
  for (const [key, field] of Object.entries(schema.shape) as Array<[string, z.ZodType]>) {
    let s = field;
    let description = s.description ?? '';
    let defaultValue: unknown;
    for (let d = defOf(s); d.type === 'default' || d.type === 'optional'; d = defOf(s)) {
      if (d.type === 'default') defaultValue = d.defaultValue;
      s = d.innerType!;
      description ||= s.description ?? '';
    }
    const d = defOf(s);
    const info: FlagInfo = { key, flag: `--${kebab(key)}`, type: 'string', description, defaultValue };
    if (d.type === 'number') info.type = 'number';
    else if (d.type === 'boolean') info.type = 'boolean';
    else if (d.type === 'enum') {
      info.type = 'enum';
      info.choices = Object.values(d.entries!);
    } else if (d.type === 'array') {
      info.type = 'list';
      const e = defOf(d.element!);
      if (e.type === 'enum') info.choices = Object.values(e.entries!);
    }
    out.push(info);
  }
  return out;
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
