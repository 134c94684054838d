/**
 * `state` without oclif. Engines call `state` constantly and oclif's start-up costs more than the
 * answer (~200 ms here). bin/run.js tries this first: it handles only the plain successful case —
 * `state ID` with no flag but the global ones that do not change the output — and returns false
 * for anything else (other verbs, --help, --debug, an unknown id, a damaged record), which then
 * goes through oclif and gets its one error line, its --log line and its exit status there.
 */
import { StateStore } from '../runtime/store.js';
import { toStateOutput } from '../runtime/state-output.js';

const QUIET_GLOBALS = /^--(root|log|log-format|systemd-cgroup|rootless|criu|config)(=.*)?$/;

/** argv as normalizeArgv (src/cli/argv.ts) returns it: verb, flags, `--`, positionals. */
export function fastState(argv: readonly string[], write: (s: string) => void): boolean {
  if (argv[0] !== 'state' || argv.length < 3 || argv.at(-2) !== '--') return false;
  const flags = argv.slice(1, -2);
  if (!flags.every((f) => QUIET_GLOBALS.test(f))) return false;
  const id = argv.at(-1) ?? '';
  let root = '/run/kata';
  for (const f of flags) if (f.startsWith('--root=')) root = f.slice('--root='.length);
  try {
    const rec = new StateStore(root).load(id);
    write(JSON.stringify(toStateOutput(rec), null, 2) + '\n');
    return true;
  } catch {
    return false;
  }
}
