import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { GuestProcess } from '../channel/messages.js';
import { NEWEST_RELEASE } from '../oci/schemas.js';
import type { StateOutput } from '../runtime/runtime.js';
import { packageRoot } from '../util/paths.js';

/** The newest OCI runtime-spec release we implement (`version` reports it). */
export const SPEC_VERSION = NEWEST_RELEASE;

function pad(cells: string[][], minWidth = 12, padding = 3): string {
  const widths: number[] = [];
  for (const row of cells) row.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length + padding, minWidth)));
  return cells.map((row) => row.map((c, i) => (i < row.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join('') + '\n').join('');
}

/** runc's `list`: a table (tabwriter, min width 12, padding 3), ids only with -q, or one JSON line. */
export function formatList(items: StateOutput[], format: 'table' | 'json', quiet: boolean): string {
  if (quiet) return items.map((s) => `${s.id}\n`).join('');
  if (format === 'json') return JSON.stringify(items.length === 0 ? null : items) + '\n';
  const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER']];
  for (const s of items) rows.push([s.id, String(s.pid), s.status, s.bundle, s.created, s.owner === '' ? 'root' : s.owner]);
  return pad(rows);
}

/**
 * runc's shape, which tools parse (docker info reads `<name> version X`, `commit: Y`, `spec: Z`):
 * the name and version, the commit when the package is a git checkout (runc leaves the line out
 * when it was built without one), the highest runtime-spec version, then the platform (runc: go,
 * libseccomp; we: node).
 */
export function versionText(): string {
  let version = '0.0.0';
  try {
    const v: unknown = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8'));
    if (typeof v === 'object' && v !== null && 'version' in v && typeof v.version === 'string') version = v.version;
  } catch {
    // keep the placeholder
  }
  const commit = gitCommit();
  return `kata-runtime version ${version}\n${commit === undefined ? '' : `commit: ${commit}\n`}spec: ${SPEC_VERSION}\nnode: ${process.version}\n`;
}

/** The commit of the package's own checkout (not of a repository it happens to sit in). */
function gitCommit(): string | undefined {
  const root = packageRoot();
  if (!fs.existsSync(path.join(root, '.git'))) return undefined;
  try {
    const out = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    return /^[0-9a-f]{40}$/.test(out) ? out : undefined;
  } catch {
    return undefined;
  }
}

/** `ps`: runc prints a JSON array of pids, or a table; ours are the guest's pids (docs/cli-compat.md). */
export function formatPs(procs: GuestProcess[], format: 'table' | 'json'): string {
  if (format === 'json') return JSON.stringify(procs.map((p) => p.pid)) + '\n';
  const rows = [['UID', 'PID', 'PPID', 'CMD']];
  for (const p of procs) rows.push([String(p.uid), String(p.pid), String(p.ppid), p.cmd]);
  return pad(rows, 6, 2);
}
