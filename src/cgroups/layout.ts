/**
 * The host's cgroup layout: which hierarchies are mounted where (from /proc/self/mountinfo) and
 * which cgroup this process is in within each (from /proc/self/cgroup). Pure parsers plus one
 * reader, so the path logic (paths.ts) can be tested against fake v1, hybrid and v2 tables.
 */
import fs from 'node:fs';
import { KataError } from '../errors.js';

/**
 * The cgroup v1 subsystems runc 1.1 joins (libcontainer/cgroups/fs), in its order; a hierarchy
 * whose options name none of them (e.g. `misc`) is not joined, as under runc.
 */
export const V1_SUBSYSTEMS = [
  'cpuset', 'devices', 'memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'hugetlb', 'net_cls', 'net_prio',
  'perf_event', 'freezer', 'rdma', 'name=systemd',
] as const;

export interface Hierarchy {
  version: 1 | 2;
  /** v1: the subsystems it carries (`name=systemd` included); v2: empty. */
  subsystems: string[];
  mountpoint: string;
  /** The mount's root within the hierarchy (not `/` inside a cgroup namespace). */
  root: string;
}

/** v1: v1 hierarchies only; hybrid: v1 plus a cgroup2 at <root>/unified; v2: one cgroup2 hierarchy. */
export type CgroupMode = 'v1' | 'hybrid' | 'v2';

export interface CgroupLayout {
  mode: CgroupMode;
  /** The v1 hierarchies to join (one per mount, first mount of each wins), then the cgroup2 one if any. */
  hierarchies: Hierarchy[];
  /** /proc/self/cgroup: hierarchy key (a v1 subsystem, `name=…`, or '' for cgroup2) → path. */
  own: Map<string, string>;
}

/** Undoes mountinfo's octal escapes (`\040` is a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

interface MountLine {
  root: string;
  mountpoint: string;
  fstype: string;
  superOptions: string[];
}

export function parseMountinfo(text: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    const root = f[3];
    const mountpoint = f[4];
    const fstype = f[sep + 1];
    if (sep < 0 || root === undefined || mountpoint === undefined || fstype === undefined) continue;
    out.push({ root: unescape(root), mountpoint: unescape(mountpoint), fstype, superOptions: (f[sep + 3] ?? '').split(',') });
  }
  return out;
}

/** `/proc/<pid>/cgroup` lines `id:controllers:path`; each controller (and '' for cgroup2) → path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^[0-9]+:([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    const [, ctrls = '', p = '/'] = m;
    if (ctrls === '') own.set('', p);
    else for (const c of ctrls.split(',')) own.set(c, p);
  }
  return own;
}

/**
 * The layout from a mount table and our own /proc/self/cgroup. The mode follows runc: cgroup2
 * mounted at `base` is v2; cgroup2 at `base`/unified next to v1 hierarchies is hybrid.
 */
export function layoutFrom(mountinfo: string, procCgroup: string, base = '/sys/fs/cgroup'): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);
  const own = parseProcCgroup(procCgroup);
  const v2 = mounts.find((m) => m.fstype === 'cgroup2' && m.mountpoint === base);
  if (v2 !== undefined) return { mode: 'v2', hierarchies: [{ version: 2, subsystems: [], mountpoint: v2.mountpoint, root: v2.root }], own };
  const hierarchies: Hierarchy[] = [];
  const seen = new Set<string>();
  for (const m of mounts) {
    if (m.fstype !== 'cgroup') continue;
    const subsystems = m.superOptions.filter((o) => (V1_SUBSYSTEMS as readonly string[]).includes(o) && !seen.has(o));
    if (subsystems.length === 0) continue;
    for (const s of subsystems) seen.add(s);
    hierarchies.push({ version: 1, subsystems, mountpoint: m.mountpoint, root: m.root });
  }
  const unified = mounts.find((m) => m.fstype === 'cgroup2' && m.mountpoint === `${base}/unified`);
  if (unified !== undefined) hierarchies.push({ version: 2, subsystems: [], mountpoint: unified.mountpoint, root: unified.root });
  if (hierarchies.length === 0) throw new KataError('E_UNSUPPORTED', 'no cgroup hierarchy is mounted on this host (/proc/self/mountinfo)');
  return { mode: unified === undefined ? 'v1' : 'hybrid', hierarchies, own };
}

/** This host's layout, as seen by the calling process. */
export function hostLayout(): CgroupLayout {
  return layoutFrom(fs.readFileSync('/proc/self/mountinfo', 'utf8'), fs.readFileSync('/proc/self/cgroup', 'utf8'));
}
