import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { loadConfig, type RuntimeConfig } from '../config.js';
import { KataError, toKataError } from '../errors.js';
import { loadBundle } from '../oci/bundle.js';
import { toGuestSpec } from '../oci/translate.js';
import { callMonitor, type ControlRequest } from '../monitor/control.js';
import type { Launch, ReadyReport } from '../monitor/launch.js';
import { sleep, writeFileAtomic } from '../util/fsx.js';
import { rfc3339Nano, type Logger } from '../util/log.js';
import { packageRoot } from '../util/paths.js';
import { isAlive } from '../util/proc.js';
import { validateId } from './ids.js';
import { filesFor, StateStore, type ContainerRecord } from './store.js';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  preserveFds?: number | undefined;
}

export interface RunOptions extends CreateOptions {
  detach: boolean;
  keep: boolean;
}

const RUN_FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** runc's `state` output. */
export interface StateOutput {
  ociVersion: string;
  id: string;
  pid: number;
  status: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

export interface Created {
  monitor: ChildProcess;
  pid: number;
}

/** The runtime library: every command is one call here. */
export class Runtime {
  readonly store: StateStore;

  constructor(
    root: string,
    private readonly log: Logger,
    private readonly config: RuntimeConfig = loadConfig(),
  ) {
    this.store = new StateStore(root);
  }

  /** Validates the bundle, starts the monitor (which boots the VM and creates the container), writes the pid file. */
  async create(opts: CreateOptions): Promise<Created> {
    validateId(opts.id);
    if (opts.consoleSocket !== undefined) throw new KataError('E_UNSUPPORTED', '--console-socket: terminals are not supported yet');
    if ((opts.preserveFds ?? 0) !== 0) throw new KataError('E_UNSUPPORTED', '--preserve-fds: passing extra fds into a VM is not supported');
    const bundle = loadBundle(opts.bundle);
    const pidFile = opts.pidFile === undefined || opts.pidFile === '' ? undefined : path.resolve(opts.pidFile);
    const files = this.store.createDir(opts.id);
    let monitor: ChildProcess | undefined;
    try {
      const rec: ContainerRecord = {
        version: 1,
        id: opts.id,
        ociVersion: bundle.spec.ociVersion,
        bundle: bundle.dir,
        rootfs: bundle.rootfs,
        created: rfc3339Nano(new Date()),
        owner: '',
        annotations: bundle.spec.annotations ?? {},
        status: 'creating',
        monitorPid: 0,
        monitorStartTime: '',
        guestPid: 0,
        exit: null,
        qemuPid: 0,
        qemuStartTime: '',
        virtiofsdPid: 0,
        virtiofsdStartTime: '',
      };
      this.store.write(rec);
      const launch: Launch = { id: opts.id, bundle: bundle.dir, rootfs: bundle.rootfs, guestSpec: toGuestSpec(bundle.spec, opts.id), config: this.config };
      writeFileAtomic(files.launch, JSON.stringify(launch));
      monitor = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'src', 'monitor', 'main.js'), files.dir], {
        cwd: files.dir,
        detached: true,
        stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
        env: { ...process.env, UV_THREADPOOL_SIZE: '8' },
      });
      const report = await readReady(monitor, (this.config.agentTimeoutSec + 90) * 1000);
      if (!report.ok) throw new KataError(isCode(report.code) ? report.code : 'E_VM', report.message);
      if (pidFile !== undefined) writeFileAtomic(pidFile, String(report.pid), 0o644);
      this.log.debug(`created ${opts.id}: monitor pid ${report.pid}`);
      return { monitor, pid: report.pid };
    } catch (e) {
      const err = toKataError(e);
      const cleanup: Error[] = [];
      if (monitor?.pid !== undefined && monitor.exitCode === null && monitor.signalCode === null) {
        const m = monitor;
        m.ref(); // readReady() unref'd it: without a ref the wait below would not keep us alive
        const gone = new Promise((r) => m.once('exit', r));
        m.kill('SIGKILL');
        await gone;
      }
      try {
        this.store.remove(opts.id);
      } catch (c) {
        cleanup.push(toKataError(c));
      }
      throw cleanup.length === 0 ? err : new KataError(err.code, err.message, { cause: err, cleanupErrors: cleanup });
    }
  }

  /**
   * create + start; in the foreground, relay signals to the container, wait for it, delete it
   * (unless --keep) and return its status as an exit code (128+N for a signal).
   */
  async run(opts: RunOptions): Promise<number> {
    const created = await this.create(opts);
    try {
      await this.start(opts.id);
    } catch (e) {
      await this.delete(opts.id, true).catch(() => undefined);
      throw e;
    }
    if (opts.detach) return 0;
    const monitor = created.monitor;
    monitor.ref();
    const forward = (s: NodeJS.Signals): void => {
      this.kill(opts.id, os.constants.signals[s], false).catch(() => undefined);
    };
    for (const s of RUN_FORWARDED) process.on(s, forward);
    const status = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      if (monitor.exitCode !== null || monitor.signalCode !== null) resolve({ code: monitor.exitCode, signal: monitor.signalCode });
      else monitor.once('exit', (code, signal) => resolve({ code, signal }));
    });
    for (const s of RUN_FORWARDED) process.removeListener(s, forward);
    if (!opts.keep) await this.delete(opts.id, true);
    return status.signal !== null ? 128 + os.constants.signals[status.signal] : (status.code ?? 0);
  }

  async start(id: string): Promise<void> {
    this.store.load(id);
    await this.store.withLock(id, async () => {
      const rec = this.store.load(id);
      if (rec.status !== 'created') throw new KataError('E_BAD_STATE', `cannot start a container that is ${rec.status}`);
      await this.call(rec, { op: 'start' });
    });
  }

  state(id: string): StateOutput {
    return toStateOutput(this.store.load(id));
  }

  list(): StateOutput[] {
    const out: StateOutput[] = [];
    for (const id of this.store.ids()) {
      try {
        out.push(toStateOutput(this.store.load(id)));
      } catch {
        // a container being deleted right now, or a damaged entry: not listed
      }
    }
    return out;
  }

  async kill(id: string, signal: number, all: boolean): Promise<void> {
    this.store.load(id);
    await this.store.withLock(id, async () => {
      const rec = this.store.load(id);
      if (rec.status === 'stopped') throw new KataError('E_BAD_STATE', 'container not running');
      await this.call(rec, { op: 'kill', signal, all });
    });
  }

  async delete(id: string, force: boolean): Promise<void> {
    validateId(id);
    const raw = this.store.read(id);
    if (raw === undefined) {
      if (force) {
        this.store.remove(id); // a directory left without a state file
        return;
      }
      throw new KataError('E_NOT_FOUND', `container ${id} does not exist`);
    }
    await this.store.withLock(id, () => this.deleteLocked(id, force));
  }

  private async deleteLocked(id: string, force: boolean): Promise<void> {
    const rec = this.store.load(id);
    if ((rec.status === 'running' || rec.status === 'paused') && !force) {
      throw new KataError('E_BAD_STATE', `cannot delete container ${id} that is not stopped: ${rec.status}`);
    }
    if (rec.status !== 'stopped') {
      try {
        await this.call(rec, { op: 'destroy' }, 20000);
      } catch (e) {
        this.log.debug(`destroy through the monitor failed (${toKataError(e).message}); killing it`);
      }
      await stopProcess(rec.monitorPid, rec.monitorStartTime, 15000);
    }
    // The VM's processes die with the monitor (pdeathsig); make sure of it before removing the state.
    // Only with a recorded start time: a bare pid may belong to another process by now.
    await Promise.all([
      rec.qemuStartTime === '' ? undefined : stopProcess(rec.qemuPid, rec.qemuStartTime, 5000),
      rec.virtiofsdStartTime === '' ? undefined : stopProcess(rec.virtiofsdPid, rec.virtiofsdStartTime, 5000),
    ]);
    this.store.remove(id);
  }

  private async call(rec: ContainerRecord, req: ControlRequest, timeoutMs?: number): Promise<void> {
    // Unix socket paths are limited to 108 bytes: talk to the monitor relative to its directory.
    const dir = this.store.dirFor(rec.id);
    process.chdir(dir);
    try {
      await callMonitor(filesFor(dir).sockets.monitor, req, timeoutMs);
    } catch (e) {
      const k = toKataError(e);
      if (k.code === 'E_MONITOR' && !isAlive(rec.monitorPid, rec.monitorStartTime)) {
        throw new KataError('E_BAD_STATE', req.op === 'kill' ? 'container not running' : `container ${rec.id} is stopped`);
      }
      throw k;
    }
  }
}

function isCode(c: string): c is KataError['code'] {
  return c.startsWith('E_');
}

function toStateOutput(rec: ContainerRecord): StateOutput {
  return {
    ociVersion: rec.ociVersion,
    id: rec.id,
    pid: rec.status === 'stopped' ? 0 : rec.monitorPid,
    status: rec.status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
    ...(Object.keys(rec.annotations).length > 0 ? { annotations: rec.annotations } : {}),
  };
}

/** Reads the monitor's one-line report from its fd 3; EOF without a report means it died. */
function readReady(child: ChildProcess, timeoutMs: number): Promise<ReadyReport> {
  const pipe = child.stdio[3] as Readable | null | undefined;
  return new Promise((resolve, reject) => {
    if (!pipe) {
      reject(new KataError('E_INTERNAL', 'no ready pipe'));
      return;
    }
    let buf = '';
    let done = false;
    const finish = (r: ReadyReport | KataError): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      pipe.removeAllListeners('data');
      pipe.destroy();
      child.unref();
      if (r instanceof KataError) reject(r);
      else resolve(r);
    };
    const timer = setTimeout(() => finish(new KataError('E_TIMEOUT', `the VM was not ready within ${timeoutMs / 1000} s`)), timeoutMs);
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const v: unknown = JSON.parse(buf.slice(0, nl));
        if (typeof v === 'object' && v !== null && 'ok' in v) finish(v as ReadyReport);
        else finish(new KataError('E_MONITOR', 'bad report from the monitor'));
      } catch {
        finish(new KataError('E_MONITOR', 'bad report from the monitor'));
      }
    });
    pipe.on('end', () => finish(new KataError('E_MONITOR', `the monitor exited during create (code ${child.exitCode ?? '?'}); see ${path.join(String(child.spawnargs[2] ?? ''), 'monitor.log')}`)));
  });
}

/** Waits for a process to end; SIGKILLs it once the deadline passes. */
async function stopProcess(pid: number, startTime: string, timeoutMs: number): Promise<void> {
  if (pid <= 0) return;
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid, startTime)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
      await sleep(50);
      if (Date.now() > deadline + 5000) return;
      continue;
    }
    await sleep(10);
  }
}

