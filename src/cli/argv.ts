import { GLOBAL, VERBS, type VerbSurface } from './surface.js';

/**
 * Rewrites a runc-style command line into the shape oclif parses:
 *   [global flags] VERB [verb flags] ARGS...   →   VERB [global flags] [verb flags] -- ARGS...
 * Flags may come as `--flag value`, `--flag=value` or single-dash `-flag value` (Go's flag style,
 * which callers use). Everything from the first positional argument after the verb on is passed
 * through untouched (an exec'd command's own flags must not be parsed), as runc does.
 */
export function normalizeArgv(argv: readonly string[]): string[] {
  const globals: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--' || !a.startsWith('-') || a === '-') break;
    i = takeFlag(argv, i, GLOBAL, globals);
  }
  const verb = argv[i];
  if (verb === undefined || verb === '--') {
    if (globals.includes('--version')) return ['version'];
    return ['help', ...globals.filter((g) => g !== '--help')];
  }
  i++;
  if (verb === 'help') return ['help', ...argv.slice(i)];
  // runc: a --help before the verb shows the general help, whatever follows.
  if (globals.includes('--help')) return ['help'];
  const surface = VERBS[verb];
  // runc answers an unknown verb, with or without -h, like `help VERB`: "No help topic for 'VERB'".
  if (surface === undefined) return ['help', verb];
  const flags: string[] = [];
  for (; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    // global flags are accepted after the verb too
    const known = flagName(a, surface) ?? flagName(a, GLOBAL);
    if (known === undefined) {
      flags.push(a); // unknown: let oclif report it
      continue;
    }
    i = takeFlag(argv, i, flagName(a, surface) !== undefined ? surface : GLOBAL, flags);
  }
  return [verb, ...globals, ...flags, '--', ...argv.slice(i)];
}

/** The long name a token refers to in this surface, or undefined. */
function flagName(token: string, s: VerbSurface): string | undefined {
  const body = token.replace(/^--?/, '').split('=')[0] ?? '';
  if (token.startsWith('--')) return s.value.includes(body) || s.bool.includes(body) ? body : undefined;
  if (body.length === 1) return s.short[body];
  return s.value.includes(body) || s.bool.includes(body) ? body : undefined;
}

/** Appends the flag at argv[i] (and its value) in `--name[=value]` form; returns the last index used. */
function takeFlag(argv: readonly string[], i: number, s: VerbSurface, out: string[]): number {
  const token = argv[i] ?? '';
  const name = flagName(token, s);
  if (name === undefined) {
    out.push(token);
    return i;
  }
  const eq = token.indexOf('=');
  if (eq >= 0) {
    out.push(`--${name}=${token.slice(eq + 1)}`);
    return i;
  }
  if (s.value.includes(name)) {
    const v = argv[i + 1];
    if (v === undefined) {
      out.push(`--${name}`);
      return i;
    }
    out.push(`--${name}=${v}`);
    return i + 1;
  }
  out.push(`--${name}`);
  return i;
}
