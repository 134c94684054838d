/**
 * The container's cgroup on the host: created by `create` before the monitor starts (limits
 * written first), joined by the monitor itself before it spawns anything (QEMU, virtiofsd, socat
 * inherit it) and by each exec helper, changed by `update`, removed by `delete` (and by a create
 * that failed) once its processes are gone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KataError, errnoCode } from '../errors.js';
import { sleep } from '../util/fsx.js';
import { limitWrites, type HostLimits, type Write } from './limits.js';
import type { CgroupDir, CgroupDriver } from './paths.js';

/** What state.json keeps of the host cgroup, so `delete` can remove it whatever happened. */
export interface HostCgroup {
  driver: CgroupDriver;
  /** The path within each hierarchy, as the driver names it. */
  path: string;
  dirs: CgroupDir[];
  /** Every directory create made (ancestors first): removed again if empty; others are left. */
  created: string[];
}

function fail(what: string, e: unknown): KataError {
  const msg = e instanceof Error ? e.message : String(e);
  return new KataError('E_CGROUP', `host cgroup: ${what}: ${msg}`, { cause: e });
}

function read(dir: string, file: string): string {
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8').trim();
  } catch {
    return '';
  }
}

function available(dir: CgroupDir): Set<string> {
  return new Set(dir.version === 2 ? read(dir.dir, 'cgroup.controllers').split(/\s+/).filter((c) => c !== '') : []);
}

/**
 * Writes in order; a write the kernel refuses with EINVAL is retried once after the others (a new
 * cfs period may be refused until the new quota is in place, as runc handles it).
 */
function writeAll(dir: string, writes: Write[]): void {
  const later: Write[] = [];
  const put = (w: Write, retry: boolean): void => {
    try {
      fs.writeFileSync(path.join(dir, w.file), w.value);
    } catch (e) {
      if (retry && errnoCode(e) === 'EINVAL') later.push(w);
      else throw fail(`${path.join(dir, w.file)} = ${w.value}`, e);
    }
  };
  for (const w of writes) put(w, true);
  for (const w of later) put(w, false);
}

/** A new v1 cpuset cgroup starts with no CPUs and no memory nodes: copy the parent's (as runc). */
function inheritCpuset(dir: string): void {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    if (read(dir, f) === '') fs.writeFileSync(path.join(dir, f), read(path.dirname(dir), f));
  }
}

/**
 * Creates the cgroup in every hierarchy (with missing ancestors) and writes its limits. Every
 * directory made is returned through `created` as soon as it exists, so a caller that fails later
 * (or dies) has them in its record; on failure here they are removed again.
 */
export function createCgroup(dirs: readonly CgroupDir[], limits: HostLimits, created: string[]): void {
  try {
    for (const d of dirs) {
      const missing: string[] = [];
      for (let p = d.dir; !fs.existsSync(p); p = path.dirname(p)) missing.unshift(p);
      for (const p of missing) {
        try {
          fs.mkdirSync(p, { mode: 0o755 });
        } catch (e) {
          if (errnoCode(e) !== 'EEXIST') throw e;
          continue;
        }
        created.push(p);
        if (d.version === 1 && d.subsystems.includes('cpuset')) inheritCpuset(p);
        // cgroup v2: a child gets only the controllers its parent enables for its children.
        if (d.version === 2) enableControllers(path.dirname(p));
      }
      writeAll(d.dir, limitWrites(limits, d.version, d.subsystems, available(d)));
    }
  } catch (e) {
    removeEmpty(created.splice(0).reverse());
    throw e instanceof KataError ? e : fail('cannot create it', e);
  }
}

/** cgroup v2: children get every controller the parent has (runc enables all; failures are ignored, as there). */
function enableControllers(parent: string): void {
  const ctrls = read(parent, 'cgroup.controllers').split(/\s+/).filter((c) => c !== '');
  if (ctrls.length === 0) return;
  try {
    fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), ctrls.map((c) => `+${c}`).join(' '));
  } catch {
    for (const c of ctrls) {
      try {
        fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), `+${c}`);
      } catch {
        // not available here (a delegated or threaded subtree): the limit write reports it
      }
    }
  }
}

/** Moves a process (all its threads) into the cgroup in every hierarchy. */
export function joinCgroup(dirs: readonly CgroupDir[], pid: number): void {
  for (const d of dirs) {
    try {
      fs.writeFileSync(path.join(d.dir, 'cgroup.procs'), String(pid));
    } catch (e) {
      throw fail(`cannot move process ${pid} into ${d.dir}`, e);
    }
  }
}

/** Changes the limits (`update`). */
export function setLimits(dirs: readonly CgroupDir[], limits: HostLimits): void {
  for (const d of dirs) writeAll(d.dir, limitWrites(limits, d.version, d.subsystems, available(d)));
}

/**
 * Memory the cgroup holds and the kernel cannot reclaim (bytes): its use less the file cache that
 * is not shared memory (guest RAM is a memfd, i.e. shmem, counted in the cache but not
 * reclaimable without swap). From the first hierarchy that accounts memory.
 */
export function memoryHeld(dirs: readonly CgroupDir[]): number | undefined {
  for (const d of dirs) {
    const v1 = d.version === 1;
    if (v1 && !d.subsystems.includes('memory')) continue;
    const usage = Number(read(d.dir, v1 ? 'memory.usage_in_bytes' : 'memory.current') || NaN);
    if (!Number.isFinite(usage)) continue;
    return Math.max(0, usage - reclaimableCache(read(d.dir, 'memory.stat'), v1));
  }
  return undefined;
}

/** File cache that is not shmem, from memory.stat (v1: hierarchical total_* fields). */
export function reclaimableCache(stat: string, v1: boolean): number {
  const field = (name: string): number => Number(new RegExp(`^${name} ([0-9]+)$`, 'm').exec(stat)?.[1] ?? 0);
  const cache = field(v1 ? 'total_cache' : 'file');
  const shmem = field(v1 ? 'total_shmem' : 'shmem');
  return Math.max(0, cache - shmem);
}

function pidsIn(dir: string): number[] {
  return read(dir, 'cgroup.procs').split('\n').filter((l) => /^[0-9]+$/.test(l)).map(Number);
}

/** rmdir of the cgroup and any child cgroup under it, deepest first; ENOENT is success. */
function rmTree(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) if (e.isDirectory()) rmTree(path.join(dir, e.name));
  try {
    fs.rmdirSync(dir);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

/** Best effort rmdir of directories we made, when nothing else uses them now. */
function removeEmpty(dirs: readonly string[]): void {
  for (const d of dirs) {
    try {
      fs.rmdirSync(d);
    } catch {
      // in use by another cgroup (EBUSY), or already gone
    }
  }
}

/** The process's working directory, '' if it is gone or unreadable. */
function cwdOf(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return '';
  }
}

/**
 * Removes the cgroup from every hierarchy, then the ancestors create made if they are empty. Its
 * processes should be gone already; a cgroup still busy is retried (exiting processes leave it a
 * moment later), and after `graceMs` the processes still in it that are ours are SIGKILLed. Ours
 * are recognised by their working directory, the container's state directory `ownDir` (the
 * monitor, QEMU, virtiofsd and exec helpers all run there): a cgroupsPath two containers share
 * (runc allows it, with a warning) holds the other one's processes, which are left alone, and so is
 * that cgroup. Returns what could not be removed, one line each.
 */
export async function removeCgroup(cg: HostCgroup, ownDir: string, timeoutMs = 5000, graceMs = 1000): Promise<string[]> {
  const start = Date.now();
  const failed: string[] = [];
  let own = ownDir;
  try {
    own = fs.realpathSync(ownDir); // /proc/<pid>/cwd is the real path (--root may be a symlink)
  } catch {
    // the state directory is gone: no process can be recognised as ours
  }
  for (const d of cg.dirs) {
    for (;;) {
      try {
        rmTree(d.dir);
        break;
      } catch (e) {
        const waited = Date.now() - start;
        if (errnoCode(e) !== 'EBUSY' || waited > timeoutMs) {
          failed.push(`${d.dir}: ${e instanceof Error ? e.message : String(e)}`);
          break;
        }
        const cwds = pidsIn(d.dir).map((pid) => ({ pid, cwd: cwdOf(pid) }));
        const ours = cwds.filter((p) => p.cwd === own).map((p) => p.pid);
        // Shared with another container: only live processes of theirs are left (one that is
        // exiting has no cwd any more, and is waited for). The cgroup is theirs now.
        if (cwds.length > 0 && cwds.every((p) => p.cwd !== '' && p.cwd !== own)) break;
        if (waited > graceMs) {
          for (const pid of ours) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // gone meanwhile
            }
          }
        }
        await sleep(20);
      }
    }
  }
  const leaves = new Set(cg.dirs.map((d) => d.dir));
  removeEmpty([...cg.created].filter((c) => !leaves.has(c)).reverse());
  return failed;
}
