import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, sizingConfig, type RuntimeConfig } from '../config.js';
import { annotationOverrides, vmSize } from '../vm/sizing.js';
import { errnoCode, KataError, toKataError } from '../errors.js';
import { loadBundle } from '../oci/bundle.js';
import { unknownCapabilities } from '../oci/caps.js';
import { withDefaultHome } from '../oci/home.js';
import { hostHooks, runCreateHooks, runHooks, type HookState, type HostHookKind, type HostHooks } from '../oci/hooks.js';
import { parseProcLimits, toGuestPlan, translateResources } from '../oci/translate.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import tty from 'node:tty';
import type { GuestProcess, GuestStats } from '../channel/messages.js';
import { decodePsResult, decodeStatsResult } from '../channel/messages.js';
import { callMonitor, openMonitor, type ControlRequest } from '../monitor/control.js';
import type { ExecHelperRequest } from '../monitor/exec-helper.js';
import { makeRaw } from '../util/tty.js';
import { buildExecProcess, exitCodeOf, relayExec, type ExecFlags } from './exec.js';
import type { Launch } from '../monitor/launch.js';
import { detach } from '../net/host.js';
import { sandboxFor } from '../net/sandbox.js';
import { ReadyPipe, readReady } from './ready.js';
import { readFileIfExists, sleep, writeFileAtomic } from '../util/fsx.js';
import { rfc3339Nano, type Logger } from '../util/log.js';
import { packageRoot } from '../util/paths.js';
import { isAlive } from '../util/proc.js';
import { isRecord } from '../util/json.js';
import { validateId } from './ids.js';
import { createCgroup, removeCgroup, type HostCgroup } from '../cgroups/host.js';
import { hostLayout } from '../cgroups/layout.js';
import { hostLimits } from '../cgroups/limits.js';
import { placeCgroup, type CgroupDriver } from '../cgroups/paths.js';
import { filesFor, StateStore, type ContainerRecord } from './store.js';
import { toStateOutput, type StateOutput } from './state-output.js';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  preserveFds?: number | undefined;
  /** false for a foreground `run`, whose terminal is the caller's own. */
  detachedTerminal?: boolean;
}

export interface ExecOptions {
  id: string;
  flags: ExecFlags;
  detach: boolean;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  preserveFds?: number | undefined;
}

export interface RunOptions extends CreateOptions {
  detach: boolean;
  keep: boolean;
}

const RUN_FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export type { StateOutput } from './state-output.js';

export interface Created {
  monitor: ChildProcess;
  pid: number;
  /** The caller's own terminal is the container's (foreground `run -t`). */
  usesCallerTerminal: boolean;
}

export interface RuntimeOptions {
  /** runc's --systemd-cgroup: how the spec's cgroupsPath names the host cgroup. */
  cgroupDriver?: CgroupDriver;
}

/** The runtime library: every command is one call here. */
export class Runtime {
  readonly store: StateStore;

  private loaded: RuntimeConfig | undefined;

  /**
   * `config` is read only by the verbs that need it (create, run): a configuration.toml that
   * breaks while containers exist must not stop `state`, `kill` or `delete` from handling them.
   */
  constructor(
    root: string,
    private readonly log: Logger,
    private readonly loadConfigOnce: () => RuntimeConfig = () => loadConfig(),
    private readonly opts: RuntimeOptions = {},
  ) {
    this.store = new StateStore(root);
  }

  private get config(): RuntimeConfig {
    this.loaded ??= this.loadConfigOnce();
    return this.loaded;
  }

  /** Validates the bundle, starts the monitor (which boots the VM and creates the container), writes the pid file. */
  async create(opts: CreateOptions): Promise<Created> {
    validateId(opts.id);
    if ((opts.preserveFds ?? 0) !== 0) throw new KataError('E_UNSUPPORTED', '--preserve-fds: passing extra fds into a VM is not supported');
    const bundle = loadBundle(opts.bundle);
    const consoleSocket = opts.consoleSocket === undefined || opts.consoleSocket === '' ? undefined : path.resolve(opts.consoleSocket);
    const terminal = bundle.spec.process?.terminal === true;
    // runc's rules: a detached container with a terminal needs a console socket, and a console
    // socket needs a terminal.
    if (terminal && consoleSocket === undefined && opts.detachedTerminal !== false) {
      throw new KataError('E_INVALID_ARGUMENT', 'cannot allocate tty if kata-runtime will detach without setting console socket');
    }
    if (!terminal && consoleSocket !== undefined) {
      throw new KataError('E_INVALID_ARGUMENT', 'cannot use console socket if kata-runtime will not detach or allocate tty');
    }
    const unknownCaps = unknownCapabilities(bundle.spec);
    if (unknownCaps.length > 0) this.log.warn(`ignoring unknown or unavailable capabilities: [${unknownCaps.join(' ')}]`);
    // The container inherits the caller's rlimits where the spec sets none, as under runc.
    const plan = toGuestPlan(bundle.spec, opts.id, bundle.dir, parseProcLimits(fs.readFileSync('/proc/self/limits', 'utf8')));
    if (plan.spec.process) plan.spec.process.env = withDefaultHome(plan.spec.process.env ?? [], plan.spec.process.user?.uid ?? 0, bundle.rootfs);
    const sandbox = sandboxFor(bundle.spec, this.config);
    // The VM is sized for the container's limits (crun applies them inside); annotations the
    // configuration allows may override that.
    const size = vmSize(bundle.spec, sizingConfig(this.config));
    const over = annotationOverrides(bundle.spec.annotations ?? {}, this.config.enableAnnotations);
    const vmConfig: RuntimeConfig = {
      ...this.config,
      memoryMiB: over.memoryMiB ?? size.memoryMiB,
      vcpus: over.vcpus ?? size.vcpus,
      kernelParams: [...this.config.kernelParams, ...(over.kernelParams ?? [])],
    };
    this.log.debug(`VM for ${opts.id}: ${vmConfig.memoryMiB} MiB, ${vmConfig.vcpus} vCPU (${size.reason}${over.memoryMiB ?? over.vcpus ? '; annotations' : ''})`);
    const pidFile = pidFileTarget(opts.pidFile);
    const hooks = hostHooks(bundle.spec);
    // The spec's cgroup exists on the host too and holds the VM (src/cgroups): named as runc names
    // it, limited for a VM of this size.
    const place = placeCgroup(hostLayout(), bundle.spec.linux?.cgroupsPath, opts.id, this.opts.cgroupDriver ?? 'cgroupfs');
    const limits = hostLimits(bundle.spec.linux?.resources ?? {}, {
      vmMemoryMiB: vmConfig.memoryMiB,
      memoryOverheadMiB: this.config.memoryOverheadMiB,
      hostMemoryOverheadMiB: this.config.hostMemoryOverheadMiB,
    });
    const cgroup: HostCgroup = { driver: place.driver, path: place.path, dirs: place.dirs, created: [] };
    this.log.debug(`host cgroup of ${opts.id}: ${place.dirs.map((d) => d.dir).join(' ')}`);
    const files = this.store.createDir(opts.id);
    let monitor: ChildProcess | undefined;
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
      cgroup,
    };
    try {
      // Recorded before any directory exists: whatever happens next, `delete` knows what to remove.
      this.store.write(rec);
      try {
        createCgroup(cgroup.dirs, limits, cgroup.created);
      } finally {
        this.store.write(rec);
      }
      const launch: Launch = {
        id: opts.id,
        bundle: bundle.dir,
        rootfs: bundle.rootfs,
        guestSpec: plan.spec,
        binds: plan.binds,
        config: vmConfig,
        ...(consoleSocket === undefined ? {} : { consoleSocket }),
        network: sandbox.network,
      };
      writeFileAtomic(files.launch, JSON.stringify(launch));
      const monitorArgv = [...sandbox.wrapper, process.execPath, path.join(packageRoot(), 'dist', 'src', 'monitor', 'main.js'), files.dir];
      monitor = spawn(monitorArgv[0] ?? process.execPath, monitorArgv.slice(1), {
        cwd: files.dir,
        detached: true,
        // With a console socket the container's stdio is the pty: the monitor must not hold the
        // caller's fds, or a caller that reads our output to EOF (go-runc, i.e. containerd and
        // docker) waits for ever and never takes the pty master.
        stdio: consoleSocket === undefined ? ['inherit', 'inherit', 'inherit', 'pipe'] : ['ignore', 'ignore', 'ignore', 'pipe'],
        env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
      });
      writeFileAtomic(files.hooks, JSON.stringify(hooks));
      const ready = new ReadyPipe(monitor, files.dir);
      let report;
      try {
        const sandboxReport = await ready.next(30000, 'the monitor did not start');
        if (!sandboxReport.ok) throw new KataError(isCode(sandboxReport.code) ? sandboxReport.code : 'E_MONITOR', sandboxReport.message);
        // The sandbox exists (the monitor, in the container's network namespace): the spec's
        // createRuntime and prestart hooks run now, on the host, before the VM boots, so that what
        // they set up (docker's prestart hook wires the network) is what the VM gets, as in Kata 1.x.
        // prestart first, then createRuntime: the runtime-spec's lifecycle order, and runc's.
        await runCreateHooks(hooks, { ...this.hookState(rec, sandboxReport.pid), status: 'creating' });
        ready.send('go');
        report = await ready.next((this.config.agentTimeoutSec + 90) * 1000, 'the VM was not ready');
      } finally {
        ready.close();
      }
      if (!report.ok) throw new KataError(isCode(report.code) ? report.code : 'E_VM', report.message);
      if (pidFile !== undefined) writeFileAtomic(pidFile, String(report.pid), 0o644);
      this.log.debug(`created ${opts.id}: monitor pid ${report.pid}`);
      return { monitor, pid: report.pid, usesCallerTerminal: terminal && consoleSocket === undefined };
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
        // A monitor that died (kill -9) while creating could not undo its own work (reclaim
        // removes the recorded cgroup too, once QEMU and virtiofsd are gone).
        const left = this.store.read(opts.id);
        if (left !== undefined) await this.reclaim(left);
      } catch (c) {
        cleanup.push(toKataError(c));
      }
      // The cgroup create made, whether or not the record had it yet.
      for (const f of await removeCgroup(cgroup, files.dir)) cleanup.push(new KataError('E_CGROUP', `host cgroup not removed: ${f}`));
      try {
        this.store.remove(opts.id);
      } catch (c) {
        cleanup.push(toKataError(c));
      }
      // Whatever failed (a hook, the VM, the agent, crun), the container is gone: poststop runs,
      // as runc runs it when its create fails.
      await this.runHooksWarn('poststop', hooks, { ...this.hookState(rec, 0), status: 'stopped' });
      throw cleanup.length === 0 ? err : new KataError(err.code, err.message, { cause: err, cleanupErrors: cleanup });
    }
  }

  /**
   * create + start; in the foreground, relay signals to the container, wait for it, delete it
   * (unless --keep) and return its status as an exit code (128+N for a signal).
   */
  async run(opts: RunOptions): Promise<number> {
    const created = await this.create({ ...opts, detachedTerminal: opts.detach });
    const restore = created.usesCallerTerminal ? makeRaw() : (): void => undefined;
    try {
      return await this.runCreated(opts, created);
    } finally {
      restore();
    }
  }

  private async runCreated(opts: RunOptions, created: Created): Promise<number> {
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
    await this.withRecord(id, async (rec) => {
      if (rec.status !== 'created') throw new KataError('E_BAD_STATE', `cannot start a container that is ${rec.status}`);
      await this.call(rec, { op: 'start' });
      // poststart: the runtime-spec says a failure is only a warning; runc kills the container
      // and fails the operation, and we behave like runc (docs/cli-compat.md).
      try {
        await runHooks('poststart', this.hooksOf(id), { ...this.hookState(rec, rec.monitorPid), status: 'running' });
      } catch (e) {
        await this.call(rec, { op: 'kill', signal: os.constants.signals.SIGKILL, all: true }).catch(() => undefined);
        throw e;
      }
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
    await this.withRecord(id, async (rec) => {
      if (rec.status === 'stopped') throw new KataError('E_BAD_STATE', 'container not running');
      // Signal 0 delivers nothing: as kill(2) and runc, it only says the container is still
      // there — its monitor is alive (the record is reconciled) and it has not stopped.
      if (signal === 0) return;
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
    await this.reclaim(rec);
    const hooks = this.hooksOf(id);
    this.store.remove(id);
    await this.runHooksWarn('poststop', hooks, { ...this.hookState(rec, 0), status: 'stopped' });
  }

  /**
   * What a dead monitor may have left, from its record: its QEMU and virtiofsd (they die with it,
   * by parent-death signal; make sure of it, and only with a recorded start time, since a bare
   * pid may belong to another process by now) and its tc qdiscs and macvtaps in the container's
   * netns (the monitor removes them itself when it can).
   */
  private async reclaim(rec: ContainerRecord): Promise<void> {
    await Promise.all([
      rec.qemuStartTime === '' ? undefined : stopProcess(rec.qemuPid, rec.qemuStartTime, 5000),
      rec.virtiofsdStartTime === '' ? undefined : stopProcess(rec.virtiofsdPid, rec.virtiofsdStartTime, 5000),
    ]);
    if (rec.network?.netns != null) {
      for (const f of await detach(rec.network, rec.network.netns)) this.log.warn(`network teardown: ${f}`);
    }
    // The cgroup last, once nothing runs in it. One that cannot be removed fails the delete and
    // keeps the record, so that a later delete tries again: nothing may be left behind.
    if (rec.cgroup !== undefined) {
      const failed = await removeCgroup(rec.cgroup, this.store.dirFor(rec.id));
      if (failed.length > 0) throw new KataError('E_CGROUP', `cannot remove the host cgroup: ${failed.join('; ')}`);
    }
  }

  private hookState(rec: ContainerRecord, pid: number): HookState {
    return {
      ociVersion: rec.ociVersion,
      id: rec.id,
      status: rec.status,
      pid,
      bundle: rec.bundle,
      ...(Object.keys(rec.annotations).length > 0 ? { annotations: rec.annotations } : {}),
    };
  }

  /** The host hooks saved at create; a damaged file means none (it is ours, written atomically). */
  private hooksOf(id: string): HostHooks {
    try {
      const text = readFileIfExists(filesFor(this.store.dirFor(id)).hooks);
      return text === undefined ? {} : (JSON.parse(text) as HostHooks);
    } catch {
      return {};
    }
  }

  /** poststart and poststop failures are logged as warnings; the lifecycle goes on (runtime-spec). */
  private async runHooksWarn(kind: HostHookKind, hooks: HostHooks, state: HookState): Promise<void> {
    try {
      await runHooks(kind, hooks, state);
    } catch (e) {
      this.log.warn(toKataError(e).oneLine());
    }
  }

  async pause(id: string): Promise<void> {
    await this.withRecord(id, async (rec) => {
      if (rec.status !== 'running') throw new KataError('E_BAD_STATE', `container ${id} is not running`);
      await this.call(rec, { op: 'pause' });
    });
  }

  async resume(id: string): Promise<void> {
    await this.withRecord(id, async (rec) => {
      if (rec.status !== 'paused') throw new KataError('E_BAD_STATE', `container ${id} is not paused`);
      await this.call(rec, { op: 'resume' });
    });
  }

  /**
   * The host pids that stand for the container: its monitor (the pid engines know as State.Pid).
   * The container's own processes live in the guest and have no host pids.
   */
  hostPids(id: string): number[] {
    const rec = this.store.load(id);
    return rec.status === 'stopped' ? [] : [this.running(id).monitorPid];
  }

  /**
   * The container's processes, with guest pids. A stopped container has none: runc then prints
   * only the header of ps(1) run with the caller's arguments, and so do we (`header`).
   */
  async ps(id: string, psArgs: readonly string[]): Promise<{ header: string } | { processes: GuestProcess[] }> {
    const rec = this.store.load(id);
    if (rec.status === 'stopped') return { header: hostPsHeader(psArgs) };
    return { processes: decodePsResult(await this.call(this.running(id), { op: 'ps' })) };
  }

  async stats(id: string): Promise<GuestStats> {
    const rec = this.running(id);
    const r = await this.call(rec, { op: 'stats' });
    const s = r['stats'];
    if (typeof s !== 'object' || s === null) throw new KataError('E_MONITOR', 'bad stats from the monitor');
    return decodeStatsResult(s as Record<string, unknown>);
  }

  async update(id: string, resources: Record<string, unknown>): Promise<void> {
    const rec = this.running(id);
    // Newer fields crun 1.8.1 does not know are rewritten as for create (cpu.burst → unified).
    const translated = structuredClone(resources);
    translateResources({ linux: { resources: translated } });
    await this.call(rec, { op: 'update', resources: translated });
  }

  /**
   * `events`: one stats event per interval and every OOM kill as it happens, until the container
   * stops; with `once`, a single stats event.
   */
  async events(id: string, intervalMs: number, once: boolean, emit: (ev: Record<string, unknown>) => void): Promise<void> {
    const statsEvent = async (): Promise<void> => emit({ type: 'stats', id, data: runcStats(await this.stats(id)) });
    if (once) return statsEvent();
    const rec = this.running(id);
    const { sock, rest } = await openMonitor(this.monitorSocket(id), { op: 'events' });
    let buf = rest.toString('utf8');
    const onLines = (): void => {
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes('"oom"')) emit({ type: 'oom', id });
      }
    };
    onLines();
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf = (buf + d).slice(-65536);
      onLines();
    });
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.resume();
    let stopped = false;
    void closed.then(() => (stopped = true));
    while (!stopped) {
      try {
        await statsEvent();
      } catch {
        if (!isAlive(rec.monitorPid, rec.monitorStartTime)) break;
      }
      await Promise.race([sleep(intervalMs), closed]);
    }
    sock.destroy();
  }

  /** `exec`: runs a new process in the container; returns the exit code for the CLI. */
  async exec(opts: ExecOptions): Promise<number> {
    validateId(opts.id);
    // Paths are the caller's, relative to its cwd: resolve them before talking to the monitor.
    const consoleSocket = opts.consoleSocket === undefined || opts.consoleSocket === '' ? undefined : path.resolve(opts.consoleSocket);
    const flags: ExecFlags = { ...opts.flags, ...(opts.flags.processFile ? { processFile: path.resolve(opts.flags.processFile) } : {}) };
    const pidFile = pidFileTarget(opts.pidFile);
    if ((opts.preserveFds ?? 0) !== 0) throw new KataError('E_UNSUPPORTED', '--preserve-fds: passing extra fds into a VM is not supported');
    const rec = this.store.load(opts.id);
    if (rec.status === 'stopped') throw new KataError('E_BAD_STATE', 'cannot exec in a stopped container');
    if (rec.status === 'paused') throw new KataError('E_BAD_STATE', 'cannot exec in a paused container');
    const saved = savedBundle(rec.bundle);
    const proc = buildExecProcess(flags, saved.process);
    const uid = isRecord(proc['user']) && typeof proc['user']['uid'] === 'number' ? proc['user']['uid'] : 0;
    proc['env'] = withDefaultHome(Array.isArray(proc['env']) ? proc['env'].filter((e): e is string => typeof e === 'string') : [], uid, saved.rootfs);
    const withTty = proc['terminal'] === true;
    if (withTty && consoleSocket === undefined && opts.detach) {
      throw new KataError('E_INVALID_ARGUMENT', 'cannot allocate tty if kata-runtime will detach without setting console socket');
    }
    if (!withTty && consoleSocket !== undefined) {
      throw new KataError('E_INVALID_ARGUMENT', 'cannot use console socket if kata-runtime will not detach or allocate tty');
    }
    if (withTty && consoleSocket === undefined && tty.isatty(1)) {
      const out = process.stdout as tty.WriteStream;
      proc['consoleSize'] = { height: out.rows, width: out.columns };
    }
    const execId = crypto.randomBytes(8).toString('hex');
    this.log.debug(`exec ${execId} in ${opts.id}: ${JSON.stringify(proc['args'])}${opts.detach ? ' (detached)' : ''}${withTty ? ' with a terminal' : ''}`);
    const req: Extract<ControlRequest, { op: 'exec' }> = { op: 'exec', execId, process: proc, ...(consoleSocket === undefined ? {} : { consoleSocket }) };
    const stdio = consoleSocket === undefined;
    const dir = this.store.dirFor(opts.id);
    if (opts.detach) {
      const reqFile = path.join(dir, `exec-${execId}.json`);
      const helperReq: ExecHelperRequest = { req, stdio, tty: withTty, ...(rec.cgroup === undefined ? {} : { cgroup: rec.cgroup.dirs }) };
      fs.writeFileSync(reqFile, JSON.stringify(helperReq), { mode: 0o600 });
      const helper = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'src', 'monitor', 'exec-helper.js'), dir, reqFile], {
        cwd: dir,
        detached: true,
        stdio: stdio ? ['inherit', 'inherit', 'inherit', 'pipe'] : ['ignore', 'ignore', 'ignore', 'pipe'], // as for create
      });
      try {
        const report = await readReady(helper, dir, 150000, 'the exec helper did not report');
        if (!report.ok) throw new KataError(isCode(report.code) ? report.code : 'E_MONITOR', report.message);
        if (pidFile !== undefined) writeFileAtomic(pidFile, String(report.pid), 0o644);
        this.log.debug(`exec ${execId}: started; its helper is pid ${report.pid}`);
        return 0;
      } catch (e) {
        if (helper.exitCode === null && helper.signalCode === null) helper.kill('SIGKILL');
        fs.rmSync(reqFile, { force: true });
        throw e;
      }
    }
    const call = await openMonitor(this.monitorSocket(opts.id), req, 130000);
    // runc writes it in the foreground too. The host process that stands for the exec'd one is
    // this CLI: it lives as long as the process, relays signals to it and exits with its status.
    if (pidFile !== undefined) writeFileAtomic(pidFile, String(process.pid), 0o644);
    this.log.debug(`exec ${execId}: started`);
    const restore = withTty && stdio ? makeRaw() : (): void => undefined;
    try {
      const code = exitCodeOf(await relayExec(call, { stdio, tty: withTty }));
      this.log.debug(`exec ${execId}: exited with status ${code}`);
      return code;
    } finally {
      restore();
    }
  }

  /** The record of a container whose VM is up (created, running or paused). */
  private running(id: string): ContainerRecord {
    const rec = this.store.load(id);
    if (rec.status === 'stopped' || rec.status === 'creating') throw new KataError('E_BAD_STATE', `container ${id} is not running`);
    return rec;
  }

  /**
   * The monitor's socket as a path relative to the cwd, which becomes the container's directory:
   * unix socket paths are limited to 108 bytes and --root plus a 64-hex id can exceed that.
   */
  private monitorSocket(id: string): string {
    const dir = this.store.dirFor(id);
    process.chdir(dir);
    return filesFor(dir).sockets.monitor;
  }

  /** Runs fn with the container's lock held and its record read under it (unknown id: E_NOT_FOUND first). */
  private async withRecord(id: string, fn: (rec: ContainerRecord) => Promise<void>): Promise<void> {
    this.store.load(id);
    await this.store.withLock(id, () => fn(this.store.load(id)));
  }

  private async call(rec: ContainerRecord, req: ControlRequest, timeoutMs?: number): Promise<Record<string, unknown>> {
    try {
      return await callMonitor(this.monitorSocket(rec.id), req, timeoutMs);
    } catch (e) {
      const k = toKataError(e);
      if (k.code === 'E_MONITOR' && !isAlive(rec.monitorPid, rec.monitorStartTime)) {
        throw new KataError('E_BAD_STATE', req.op === 'kill' ? 'container not running' : `container ${rec.id} is stopped`);
      }
      throw k;
    }
  }
}

/** The first line of the host's ps(1) with `args` (runc's default: -ef). */
function hostPsHeader(args: readonly string[]): string {
  const r = spawnSync('ps', args.length > 0 ? [...args] : ['-ef'], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) throw new KataError('E_INVALID_ARGUMENT', `ps ${args.join(' ')}: ${(r.stderr ?? '').trim().split('\n')[0] ?? `exit ${String(r.status)}`}`);
  return `${(r.stdout ?? '').split('\n')[0] ?? ''}\n`;
}

/**
 * The absolute path of a --pid-file, checked before anything starts: a file that cannot be
 * written fails the verb (runc: "open …: no such file or directory") without leaving a process.
 */
function pidFileTarget(file: string | undefined): string | undefined {
  if (file === undefined || file === '') return undefined;
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  try {
    if (!fs.statSync(dir).isDirectory()) throw new KataError('E_INVALID_ARGUMENT', `pid file ${abs}: ${dir} is not a directory`);
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    if (e instanceof KataError) throw e;
    const why = errnoCode(e) === 'ENOENT' ? 'no such file or directory' : e instanceof Error ? e.message : String(e);
    throw new KataError('E_INVALID_ARGUMENT', `pid file ${abs}: ${dir}: ${why}`);
  }
  return abs;
}

function isCode(c: string): c is KataError['code'] {
  return c.startsWith('E_');
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


/** The container's own process from its bundle: the base that exec's flags modify (as runc does). */
/** The container's process and root filesystem, from its bundle (validated at create). */
function savedBundle(bundleDir: string): { process: Record<string, unknown>; rootfs: string } {
  try {
    const spec = JSON.parse(fs.readFileSync(path.join(bundleDir, 'config.json'), 'utf8')) as { process?: unknown; root?: { path?: unknown } };
    const rootfs = path.resolve(bundleDir, typeof spec.root?.path === 'string' ? spec.root.path : 'rootfs');
    if (typeof spec.process === 'object' && spec.process !== null) return { process: spec.process as Record<string, unknown>, rootfs };
  } catch {
    // the bundle went away since create: fall back to the spec's defaults
  }
  return { process: { cwd: '/', env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], user: { uid: 0, gid: 0 } }, rootfs: path.join(bundleDir, 'rootfs') };
}

/** runc's `events` stats document (the fields a cgroup v2 guest can fill). */
export function runcStats(s: GuestStats): Record<string, unknown> {
  return {
    cpu: { usage: { total: s.cpuUsageUsec * 1000, kernel: s.cpuSystemUsec * 1000, user: s.cpuUserUsec * 1000 }, throttling: {} },
    memory: {
      usage: { usage: s.memoryCurrent, ...(s.memoryMax === null ? {} : { limit: s.memoryMax }), failcnt: s.oomKills },
      ...(s.memorySwapCurrent === null ? {} : { swap: { usage: s.memorySwapCurrent } }),
      raw: s.memoryStat,
    },
    pids: { current: s.pidsCurrent, ...(s.pidsMax === null ? {} : { limit: s.pidsMax }) },
    blkio: {},
    hugetlb: {},
  };
}
