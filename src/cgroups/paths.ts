/**
 * Where the spec's `linux.cgroupsPath` lives on the host, named as runc 1.1.5 names it, for both of
 * its drivers. Pure: the layout (layout.ts) comes in, directories come out.
 *
 * cgroupfs (the default): an absolute path is taken under each hierarchy's mount point; a relative
 * one is relative to this process's (the caller's) cgroup in each v1 hierarchy, to the hierarchy's
 * root in the hybrid cgroup2 one (runc's GetOwnCgroupPath("") returns the mount point), and to the
 * parent of our cgroup on pure v2 (runc's fs2 default path); an empty one is the container's id,
 * relative. systemd (`--systemd-cgroup`, "slice:prefix:name"): these hosts have no systemd, so the
 * unit is not created through D-Bus; its directory is computed as systemd would make it
 * (system.slice/<prefix>-<name>.scope) and managed like a cgroupfs one (docs/architecture.md).
 */
import path from 'node:path';
import { KataError } from '../errors.js';
import type { CgroupLayout, Hierarchy } from './layout.js';

export type CgroupDriver = 'cgroupfs' | 'systemd';

export interface CgroupDir {
  /** Absolute directory of the container's cgroup in one hierarchy. */
  dir: string;
  version: 1 | 2;
  /** v1: the hierarchy's subsystems; v2: empty. */
  subsystems: string[];
}

export interface CgroupPlace {
  driver: CgroupDriver;
  /** The cgroup's path as the driver names it within a hierarchy (for messages and the state). */
  path: string;
  dirs: CgroupDir[];
}

const posix = path.posix;

/** runc's utils.CleanPath: cleans, and keeps a relative path from climbing above its base. */
export function cleanPath(p: string): string {
  if (p === '') return '';
  const clean = posix.normalize(p);
  if (posix.isAbsolute(clean)) return clean === '/' ? '/' : clean.replace(/\/$/, '');
  const rooted = posix.normalize('/' + clean);
  const rel = posix.relative('/', rooted);
  return rel === '' ? '.' : rel;
}

/** systemd's slice name to its path: `a-b.slice` → `/a.slice/a-b.slice` (runc's ExpandSlice). */
export function expandSlice(slice: string): string {
  const bad = (): never => {
    throw new KataError('E_INVALID_BUNDLE', `linux.cgroupsPath: invalid slice name: ${slice}`);
  };
  if (!slice.endsWith('.slice') || slice.length < '.slice'.length || slice.includes('/')) bad();
  const name = slice.slice(0, -'.slice'.length);
  if (name === '-') return '/';
  let out = '';
  let prefix = '';
  for (const part of name.split('-')) {
    if (part === '') bad();
    out += `/${prefix}${part}.slice`;
    prefix += `${part}-`;
  }
  return out;
}

/** The systemd driver's cgroup path for "slice:prefix:name" (empty: system.slice/runc-<id>.scope). */
export function systemdPath(cgroupsPath: string, id: string): string {
  let slice = '';
  let prefix = 'runc';
  let name = id;
  if (cgroupsPath !== '') {
    const parts = cgroupsPath.split(':');
    if (parts.length !== 3) {
      throw new KataError('E_INVALID_BUNDLE', `expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got ${JSON.stringify(cgroupsPath)} instead`);
    }
    [slice = '', prefix = '', name = ''] = parts;
  }
  const unit = name.endsWith('.slice') ? name : `${prefix}-${name}.scope`;
  return posix.join(expandSlice(slice === '' ? 'system.slice' : slice), unit);
}

function ownPath(layout: CgroupLayout, h: Hierarchy): string {
  const key = h.version === 2 ? '' : h.subsystems[0];
  const own = key === undefined ? undefined : layout.own.get(key);
  if (own === undefined) throw new KataError('E_UNSUPPORTED', `this process is in no cgroup of the ${h.version === 2 ? 'cgroup2' : h.subsystems.join(',')} hierarchy (/proc/self/cgroup)`);
  return own;
}

/** The container's cgroup directory in one hierarchy. */
function dirIn(layout: CgroupLayout, h: Hierarchy, inner: string): string {
  if (posix.isAbsolute(inner)) return posix.join(h.mountpoint, inner);
  if (h.version === 1) return posix.join(h.mountpoint, posix.relative(h.root, ownPath(layout, h)), inner);
  if (layout.mode === 'hybrid') return posix.join(h.mountpoint, inner);
  return posix.join(h.mountpoint, posix.dirname(ownPath(layout, h)), inner);
}

/** Where the container's cgroup is on this layout, for the spec's cgroupsPath and the driver. */
export function placeCgroup(layout: CgroupLayout, cgroupsPath: string | undefined, id: string, driver: CgroupDriver): CgroupPlace {
  const inner = driver === 'systemd' ? systemdPath(cgroupsPath ?? '', id) : cleanPath(cgroupsPath ?? '') || cleanPath(id);
  if (inner === '/' || inner === '.') throw new KataError('E_INVALID_BUNDLE', `linux.cgroupsPath: ${JSON.stringify(cgroupsPath)} names ${inner === '/' ? "the hierarchy's root" : "the caller's own cgroup"}, not a cgroup of the container's own`);
  const dirs: CgroupDir[] = [];
  for (const h of layout.hierarchies) {
    const dir = dirIn(layout, h, inner);
    if (dirs.some((d) => d.dir === dir)) continue;
    dirs.push({ dir, version: h.version, subsystems: [...h.subsystems] });
  }
  return { driver, path: inner, dirs };
}
