// The command line's parser, with no imports: every verb uses it, and the
// client verbs must start without loading the run-spec schema (zod) unless
// they need it (flags.ts builds the run-spec flags and their help from it).
// Booleans are switches: `--watch`, `--no-watch`.

export interface FlagInfo {
  key: string;
  flag: string;
  type: 'string' | 'number' | 'boolean' | 'enum' | 'list';
  choices?: string[];
  defaultValue?: unknown;
  description: string;
}

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export class UsageError extends Error {}

/**
 * Parse argv into (spec fields, other options). Lists are comma-separated;
 * booleans are switches: `--float16` or `--no-float16` (`--float16=false` too).
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
    // `--no-X` is the off switch of a boolean flag X (a run-spec one or an extra).
    const base = `--${name.slice(5)}`;
    const negated = name.startsWith('--no-') && (byFlag.get(base)?.type === 'boolean' || extra[base.slice(2)] === 'boolean');
    if (negated) name = base;
    const f = byFlag.get(name);
    const extraType = extra[name.slice(2)];
    if (!f && !extraType) throw new UsageError(`unknown flag ${name}`);
    const isBool = f ? f.type === 'boolean' : extraType === 'boolean';
    let value: string | boolean;
    if (isBool) {
      // A switch takes no value; `--x=true|false` is accepted, anything else is a mistake, not "true".
      if (inline !== undefined && (negated || (inline !== 'true' && inline !== 'false'))) throw new UsageError(`${arg}: a switch takes no value (use ${name} or --no-${name.slice(2)})`);
      value = inline === undefined ? !negated : inline === 'true';
    } else {
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
