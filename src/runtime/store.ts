import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KataError, errnoCode } from '../errors.js';
import { readFileIfExists, writeFileAtomic } from '../util/fsx.js';
import { lock, unlock } from '../util/lock.js';
import { isAlive, procInfo } from '../util/proc.js';
import { validateId } from './ids.js';
import { STATUSES, type Status } from './status.js';
import { isRecord } from '../util/json.js';
import type { HostCgroup } from '../cgroups/host.js';

export const STATE_FILE = 'state.json';

export interface ExitStatus {
  code: number | null;
  signal: number | null;
}

/** What state.json holds. Written by `create` (creating) and afterwards by the monitor only. */
export interface ContainerRecord {
  version: 1;
  id: string;
  ociVersion: string;
  bundle: string;
  rootfs: string;
  /** RFC 3339 with nanoseconds. */
  created: string;
  owner: string;
  annotations: Record<string, string>;
  status: Status;
  monitorPid: number;
  monitorStartTime: string;
  /** The container's init pid inside the guest. */
  guestPid: number;
  exit: ExitStatus | null;
  /** Host pids of the VM's processes, for cleanup after a monitor crash. */
  qemuPid: number;
  qemuStartTime: string;
  virtiofsdPid: number;
  virtiofsdStartTime: string;
  /**
   * The interfaces of the container's netns that carry our ingress qdisc, and the netns's path
   * when the spec named one: `delete` removes the qdiscs if the monitor could not.
   */
  network?: { netns: string | null; qdiscs: string[]; devices: string[] };
  /** The container's cgroup on the host (holds the monitor, QEMU, virtiofsd): `delete` removes it. */
  cgroup?: HostCgroup;
}

/**
 * Socket names, relative to the container's directory (unix socket paths are limited to 108 bytes,
 * so processes address them from that directory). virtiofsd derives a global pid-file name from
 * its socket path, so its name carries a hash of the directory to be unique on the host.
 */
export interface SocketNames {
  monitor: string;
  qmp: string;
  agent: string;
  virtiofsd: string;
}

export interface ContainerFiles {
  dir: string;
  state: string;
  sockets: SocketNames;
  sharedDir: string;
  monitorLog: string;
  consoleLog: string;
  virtiofsdLog: string;
  launch: string;
  hooks: string;
}

export function filesFor(dir: string): ContainerFiles {
  return {
    dir,
    state: path.join(dir, STATE_FILE),
    sockets: {
      monitor: 'monitor.sock',
      qmp: 'qmp.sock',
      agent: 'agent.sock',
      virtiofsd: `virtiofsd-${crypto.createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 16)}.sock`,
    },
    sharedDir: path.join(dir, 'shared'),
    monitorLog: path.join(dir, 'monitor.log'),
    consoleLog: path.join(dir, 'console.log'),
    virtiofsdLog: path.join(dir, 'virtiofsd.log'),
    launch: path.join(dir, 'launch.json'),
    hooks: path.join(dir, 'hooks.json'),
  };
}

/** Decodes state.json defensively: a damaged file is an error that names the file, not a crash. */
export function decodeRecord(text: string, file: string): ContainerRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new KataError('E_INTERNAL', `${file}: damaged state file`);
  }
  const ok =
    isRecord(v) &&
    v['version'] === 1 &&
    typeof v['id'] === 'string' &&
    typeof v['bundle'] === 'string' &&
    typeof v['status'] === 'string' &&
    (STATUSES as readonly string[]).includes(v['status']) &&
    typeof v['monitorPid'] === 'number';
  if (!ok) throw new KataError('E_INTERNAL', `${file}: damaged state file`);
  // Shape checked above for the fields the runtime relies on.
  const rec = v as unknown as ContainerRecord;
  // `network` drives cleanup in the container's netns: a record from an older build may lack its
  // lists, so they are made sure of here and `delete` can rely on them.
  const net: unknown = rec.network;
  if (net === undefined) return rec;
  const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((e): e is string => typeof e === 'string') : []);
  const { network: _dropped, ...rest } = rec;
  if (!isRecord(net)) return rest;
  const netns = typeof net['netns'] === 'string' ? net['netns'] : null;
  return { ...rest, network: { netns, qdiscs: strings(net['qdiscs']), devices: strings(net['devices']) } };
}

/**
 * Containers under --root: one 0700 directory per id. Loading reconciles the file with reality:
 * a record whose monitor is gone (or is another process now) is stopped, whatever the file says.
 */
export class StateStore {
  constructor(readonly root: string) {
    if (!path.isAbsolute(root)) throw new KataError('E_INVALID_ARGUMENT', `--root must be an absolute path: ${root}`);
  }

  dirFor(id: string): string {
    const dir = path.join(this.root, validateId(id));
    // validateId keeps ids to one path component; this guards the invariant.
    if (path.dirname(dir) !== path.resolve(this.root)) throw new KataError('E_INVALID_ID', `invalid container id ${JSON.stringify(id)}`);
    return dir;
  }

  /** Creates the container's directory; E_EXISTS if the id is taken. */
  createDir(id: string): ContainerFiles {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const dir = this.dirFor(id);
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') throw new KataError('E_EXISTS', `container ${id} already exists`);
      throw e;
    }
    fs.chmodSync(dir, 0o700);
    return filesFor(dir);
  }

  exists(id: string): boolean {
    return fs.existsSync(path.join(this.dirFor(id), STATE_FILE));
  }

  /** Raw record, or undefined if the directory or its state file is missing. */
  read(id: string): ContainerRecord | undefined {
    const file = path.join(this.dirFor(id), STATE_FILE);
    const text = readFileIfExists(file);
    return text === undefined ? undefined : decodeRecord(text, file);
  }

  /** The record reconciled with the live processes; E_NOT_FOUND if unknown. */
  load(id: string): ContainerRecord {
    const rec = this.read(id);
    if (rec === undefined) throw new KataError('E_NOT_FOUND', `container ${id} does not exist`);
    return reconcile(rec);
  }

  write(rec: ContainerRecord): void {
    writeFileAtomic(path.join(this.dirFor(rec.id), STATE_FILE), JSON.stringify(rec, null, 2) + '\n');
  }

  /** Every id with a directory under root, sorted. */
  ids(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
    return names.filter((n) => /^[A-Za-z0-9_.+-]+$/.test(n) && n !== '.' && n !== '..').sort();
  }

  /**
   * Runs fn holding the container's lock, `<dir>/lock` (flock(2), src/util/lock.ts): released by
   * the kernel when the holder exits or dies, so it is never stale. Serialises the CLI calls that
   * change a container (start, kill, pause, resume, delete) against each other. After
   * `timeoutMs`: E_TIMEOUT naming the holder; the container gone meanwhile: E_NOT_FOUND.
   */
  async withLock<T>(id: string, fn: () => Promise<T>, timeoutMs = 30000): Promise<T> {
    const file = path.join(this.dirFor(id), 'lock');
    const fd = await lock(file, timeoutMs, (f) =>
      f.kind === 'missing'
        ? new KataError('E_NOT_FOUND', `container ${id} does not exist`)
        : new KataError('E_TIMEOUT', `container ${id} is locked by ${f.holder === undefined ? 'another process' : `process ${f.holder}`} (waited ${timeoutMs / 1000} s)`),
    );
    try {
      return await fn();
    } finally {
      unlock(fd);
    }
  }

  remove(id: string): void {
    fs.rmSync(this.dirFor(id), { recursive: true, force: true });
  }
}

export function reconcile(rec: ContainerRecord): ContainerRecord {
  if (rec.status === 'stopped') return rec;
  if (isAlive(rec.monitorPid, rec.monitorStartTime)) return rec;
  return { ...rec, status: 'stopped' };
}

export function startTimeOf(pid: number): string {
  return procInfo(pid)?.startTime ?? '';
}
