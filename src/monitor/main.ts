/**
 * The monitor: one long-lived process per container, started by `create`; its pid is the one in
 * --pid-file. It owns virtiofsd, QEMU, the agent channel and the control socket, relays the
 * caller's stdio (fds 0-2, inherited) to the container's init, and when init exits it tears the VM
 * down and exits with init's status (or dies by init's signal).
 */
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentConnection } from '../channel/connection.js';
import type { ExitEvent } from '../channel/messages.js';
import { resultInt } from '../channel/messages.js';
import { SerialTransport } from '../channel/transport.js';
import { KataError, toKataError } from '../errors.js';
import { GUEST_SHARED_DIR, HOOKS_STDERR } from '../oci/translate.js';
import { filesFor, startTimeOf, StateStore, type ContainerRecord, type ExitStatus } from '../runtime/store.js';
import { assertTransition, type Status } from '../runtime/status.js';
import { rfc3339 } from '../util/log.js';
import type { Supervised } from '../util/child.js';
import { sleep } from '../util/fsx.js';
import { exitLike } from '../util/exit.js';
import { exitNow } from '../native/index.js';
import { chooseAccelerator, probeHost, tscKhz } from '../vm/accel.js';
import type { RunningVm } from '../vm/hypervisor.js';
import { QemuHypervisor } from '../vm/qemu.js';
import { startVirtiofsd } from '../vm/virtiofsd.js';
import { decodePsResult, decodeStatsResult, type OomEvent } from '../channel/messages.js';
import { serveControl, type ControlReply, type ControlRequest } from './control.js';
import { consoleSize, ExecSession, ptyForConsoleSocket, TerminalRelay } from './exec.js';
import { awaitGo, decodeLaunch, reportReady, reportStage, type ReadyReport } from './launch.js';
import { connectTaps, createMacvtaps, detach, scanNetns, type Attached } from '../net/host.js';
import { EMPTY_PLAN, type NetPlan } from '../net/plan.js';
import { FdSink, pumpFd } from './stdio.js';
import { joinCgroup, memoryHeld, setLimits } from '../cgroups/host.js';
import { checkMemoryUpdate, hostLimits } from '../cgroups/limits.js';
import { RateLimited, Subscribers } from './events.js';

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

class Monitor {
  private readonly files;
  private readonly store: StateStore;
  private rec!: ContainerRecord;
  private vm: RunningVm | undefined;
  private virtiofsd: Supervised | undefined;
  private conn: AgentConnection | undefined;
  private server: net.Server | undefined;
  private readonly abort = new AbortController();
  private finishing = false;
  private readonly launch;
  private readonly execs = new Map<string, ExecSession>();
  private readonly subscribers = new Subscribers();
  /** A guest can send oom events at any rate: log at most one line a second. */
  private readonly oomLog = new RateLimited(1000, (skipped) =>
    this.log('warning', `the guest killed a process of the container: out of memory${skipped > 0 ? ` (${skipped} more oom events since the last line)` : ''}`),
  );
  /** The guest reported init's exit; later reports (a hostile or broken guest) are ignored. */
  private exitReported = false;
  private terminal: TerminalRelay | undefined;
  private pumpStdin: (() => void) | undefined;
  private netPlan: NetPlan = EMPTY_PLAN;
  /** What we added to the container's netns (removed again at teardown). */
  private readonly attached: Attached = { qdiscs: [], devices: [] };

  constructor(private readonly dir: string) {
    this.files = filesFor(dir);
    this.store = new StateStore(path.dirname(dir));
    this.launch = decodeLaunch(fs.readFileSync(this.files.launch, 'utf8'));
  }

  log(level: string, msg: string): void {
    try {
      fs.appendFileSync(this.files.monitorLog, `${rfc3339(new Date())} ${level} ${msg}\n`);
    } catch {
      // logging must not break the monitor
    }
  }

  async run(): Promise<void> {
    const rec = this.store.read(this.launch.id);
    if (rec === undefined) throw new KataError('E_INTERNAL', 'state file missing');
    this.rec = { ...rec, monitorPid: process.pid, monitorStartTime: startTimeOf(process.pid) };
    // Into the container's host cgroup before anything else: QEMU, virtiofsd and every helper
    // started from here inherit it, and the engine's stats see the whole VM.
    if (rec.cgroup !== undefined) {
      try {
        joinCgroup(rec.cgroup.dirs, process.pid);
      } catch (e) {
        const k = toKataError(e, 'E_CGROUP');
        this.log('error', k.oneLine());
        reportReady({ ok: false, code: k.code, message: k.oneLine() });
        exitNow(1);
      }
      this.log('info', `joined the host cgroup ${rec.cgroup.path} (${rec.cgroup.driver}, ${rec.cgroup.dirs.length} hierarchies)`);
    }
    this.store.write(this.rec);
    for (const s of FORWARDED_SIGNALS) process.on(s, () => this.forwardSignal(s));
    // The sandbox exists (this process, in the container's netns): the CLI runs the createRuntime
    // and prestart hooks now (docker's prestart hook moves the veth in), then says go.
    try {
      reportStage({ ok: true, pid: process.pid, stage: 'sandbox' });
    } catch {
      exitNow(1);
    }
    if (!awaitGo()) {
      this.log('info', 'create abandoned before the VM started (a hook failed, or the CLI went away)');
      exitNow(1);
    }

    let ready: ReadyReport;
    try {
      const pid = await this.boot();
      const uids = [...new Set([0, process.getuid?.() ?? 0])];
      this.server = await serveControl(this.files.sockets.monitor, (req) => this.onControl(req), {
        allowUids: uids,
        onRefused: (why) => this.log('warning', `control socket: ${why}`),
      });
      fs.chmodSync(this.files.sockets.monitor, 0o600); // already so by the umask; kept explicit
      this.setStatus('created', { guestPid: pid });
      ready = { ok: true, pid: process.pid };
    } catch (e) {
      const k = toKataError(e, 'E_VM');
      this.log('error', `create failed: ${k.oneLine()}`);
      await this.teardown();
      ready = { ok: false, code: k.code, message: k.oneLine() };
      reportReady(ready);
      exitNow(1);
    }
    reportReady(ready);
    this.log('info', 'container created');
  }

  /** An unexpected exception: record it, tear everything down, and go. */
  crash(e: unknown): void {
    this.log('error', `uncaught: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    if (this.finishing) return;
    // rec is unset only if run() has not read the state yet: nothing has been started.
    if (this.rec === undefined || this.rec.status === 'creating') {
      void this.teardown().finally(() => {
        reportReady({ ok: false, code: 'E_INTERNAL', message: `monitor failed: ${e instanceof Error ? e.message : String(e)}` });
        exitNow(1);
      });
      return;
    }
    void this.finish({ code: null, signal: 9 }, 'crashed');
  }

  private async boot(): Promise<number> {
    const cfg = this.launch.config;
    if (this.launch.network.mirror) {
      this.netPlan = await scanNetns();
      const nics = this.netPlan.interfaces.map((i) => `${i.name} ${i.mac} ${i.addresses.map((a) => `${a.address}/${a.prefixLen}`).join(' ')}`);
      this.log('info', `network: ${nics.length === 0 ? 'loopback only' : `${nics.join('; ')}; routes: ${this.netPlan.routes.length}`}`);
    }
    const macvtap = this.launch.network.model === 'macvtap';
    let netFds: number[] = [];
    if (macvtap && this.netPlan.links.length > 0) {
      try {
        netFds = await createMacvtaps(this.netPlan.links, this.dir, this.attached);
      } finally {
        this.recordNetwork();
      }
    }
    const probe = probeHost();
    const accel = chooseAccelerator(probe, cfg.accel);
    if (accel.warning) this.log('warning', accel.warning);
    this.virtiofsd = await startVirtiofsd(
      { binary: cfg.virtiofsdPath, workDir: this.dir, sharedDir: this.files.sharedDir, socket: this.files.sockets.virtiofsd, log: this.files.virtiofsdLog, binds: [{ host: this.launch.rootfs, name: 'rootfs', kind: 'dir' }, ...this.launch.binds] },
      this.abort.signal,
    );
    this.log('info', `virtiofsd pid ${this.virtiofsd.pid}`);
    const khz = tscKhz(probe.cpuinfo);
    const params = [
      'console=ttyS0',
      'panic=-1', // a guest panic reboots at once...
      'reboot=t', // ...by triple fault, which -no-reboot turns into QEMU exiting (~3 s sooner than the default)
      'quiet',
      ...(khz === undefined ? [] : [`tsc_early_khz=${khz}`]),
      'kata.transport=serial',
      'kata.port=agent.0',
      ...(cfg.agentDebug ? ['kata.debug=1'] : []),
      ...cfg.kernelParams,
    ];
    const hv = new QemuHypervisor(path.join(this.dir, 'qemu.log'));
    this.vm = await hv.start(
      {
        name: `kata-${this.launch.id}`,
        workDir: this.dir,
        qemuPath: cfg.qemuPath,
        machine: cfg.machine,
        accel: accel.accel,
        kernel: cfg.kernel,
        initrd: cfg.initrd,
        kernelParams: params,
        memoryMiB: cfg.memoryMiB,
        vcpus: cfg.vcpus,
        qmpSocket: this.files.sockets.qmp,
        consoleLog: this.files.consoleLog,
        devices: [
          { kind: 'virtio-fs', socket: this.files.sockets.virtiofsd, tag: 'kataShared' },
          { kind: 'serial-port', socket: this.files.sockets.agent, name: 'agent.0' },
          ...this.netPlan.links.map((l, k) => ({ kind: 'net' as const, mac: l.mac, vhost: false, tap: macvtap ? { fd: 3 + k } : { ifname: l.tap } })),
        ],
        passFds: netFds,
      },
      this.abort.signal,
    );
    this.rec = {
      ...this.rec,
      qemuPid: this.vm.pid,
      qemuStartTime: startTimeOf(this.vm.pid),
      virtiofsdPid: this.virtiofsd.pid,
      virtiofsdStartTime: startTimeOf(this.virtiofsd.pid),
    };
    for (const fd of netFds) fs.closeSync(fd); // QEMU has its own copies
    this.store.write(this.rec);
    if (!macvtap && this.netPlan.links.length > 0) {
      try {
        // a QEMU that dies now takes its taps along: report its death, not tc's "no such device"
        await this.explained(connectTaps(this.netPlan.links, this.attached, () => this.recordNetwork()));
      } finally {
        this.recordNetwork();
      }
    }
    this.log('info', `qemu pid ${this.vm.pid} (${accel.accel}, ${cfg.memoryMiB} MiB, ${cfg.vcpus} vCPU)`);
    void this.vm.exited.then((how) => this.onVmExit(how));
    void this.virtiofsd.exited.then(() => {
      if (!this.finishing) this.fatal(new KataError('E_VM', 'virtiofsd exited unexpectedly'));
    });

    const io = await new SerialTransport(this.files.sockets.agent).connect();
    const conn = new AgentConnection(io, {
      helloTimeoutMs: cfg.agentTimeoutSec * 1000,
      onEvent: (ev) => {
        if (ev.containerId !== this.launch.id) return;
        if (ev.type === 'oom') this.onOom(ev);
        else if (ev.execId !== undefined) void this.execs.get(ev.execId)?.onExit(ev);
        else void this.onExit(ev);
      },
      onFailure: (e) => this.fatal(e),
    });
    this.conn = conn;
    await this.explained(Promise.race([conn.handshake(), this.vmDeath()]));
    this.log('info', 'agent handshake done');
    if (this.netPlan.interfaces.length > 0) {
      const { interfaces, routes } = this.netPlan;
      await this.explained(Promise.race([conn.request({ op: 'network', interfaces, routes }, 30000), this.vmDeath()]));
      this.log('info', 'guest network configured');
    }

    let stdio: { stdin: number | null; stdout: number | null; stderr: number | null };
    const proc = (this.launch.guestSpec as { process?: { terminal?: boolean; consoleSize?: unknown } }).process;
    if (proc?.terminal === true) {
      const resize = (rows: number, cols: number): Promise<unknown> => conn.request({ op: 'resize', containerId: this.launch.id, rows, cols });
      const cs = this.launch.consoleSocket;
      if (cs === undefined) {
        this.terminal = new TerminalRelay(conn, 0, 1, resize, false);
      } else {
        const slave = ptyForConsoleSocket(cs, consoleSize(proc.consoleSize));
        this.terminal = new TerminalRelay(conn, slave, slave, resize, true);
      }
      stdio = { stdin: this.terminal.stdin, stdout: this.terminal.stdout, stderr: null };
    } else {
      const stdin = conn.openOutbound();
      stdio = { stdin, stdout: conn.openInbound(new FdSink(1)), stderr: conn.openInbound(new FdSink(2)) };
      this.pumpStdin = () => void pumpFd(0, (b) => conn.write(stdin, b), this.abort.signal).then(() => conn.closeStream(stdin));
    }
    const ok = await this.explained(Promise.race([
      conn.request({ op: 'create', containerId: this.launch.id, spec: this.launch.guestSpec, stdio }, 120000).catch((e: unknown) => this.withHookStderr(e)),
      this.vmDeath(),
    ]));
    const pid = resultInt(ok, 'pid', 1, 0x7fffffff);
    if (this.terminal !== undefined) this.terminal.run();
    else this.pumpStdin?.();
    return pid;
  }

  /**
   * A channel that breaks during start-up usually means the VM died (a guest panic resets the
   * connection before QEMU's exit is seen): prefer the VM's own story when it follows shortly.
   */
  private async explained<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      const vm = this.vm;
      if (vm === undefined) throw e;
      const died = await Promise.race([vm.exited.then(() => true), sleep(2000).then(() => false)]);
      if (died) await this.vmDeath();
      throw e;
    }
  }

  /**
   * crun reports a failed createContainer/startContainer hook by its exit code only; the hooks'
   * stderr goes to the share (src/oci/translate.ts). Its last line is added to the error, as runc
   * quotes a failed hook's stderr. Never more than the file's last 4 KiB is read: the guest wrote it.
   */
  private withHookStderr(e: unknown): never {
    const k = toKataError(e);
    if (!k.message.includes('error executing hook')) throw k;
    const tail = lastLineOf(path.join(this.files.sharedDir, HOOKS_STDERR), 4096);
    throw tail === '' ? k : new KataError(k.code, `${k.message}, stderr: ${tail}`);
  }

  /**
   * Rejects when the VM or virtiofsd dies: used to bound waits that only the guest could end.
   * Without virtiofsd the guest cannot reach the rootfs, so `create` would otherwise wait out
   * its 120 s deadline.
   */
  private vmDeath(): Promise<never> {
    const vm = this.vm;
    if (vm === undefined) return new Promise<never>(() => undefined);
    const vmExit = vm.exited.then((how) => {
      const tail = lastConsoleLine(this.files.consoleLog);
      throw new KataError('E_VM', `the VM exited during start-up (${how.signal ?? `code ${how.code}`})${tail === '' ? '' : `; console: ${tail}`}`);
    });
    const fsd = this.virtiofsd;
    if (fsd === undefined) return vmExit;
    const fsdExit = fsd.exited.then((how) => {
      throw new KataError('E_VM', `virtiofsd exited during start-up (${how.signal ?? `code ${how.code}`})`);
    });
    return Promise.race([vmExit, fsdExit]);
  }

  /** Records what we added to the netns, so `delete` can remove it if this process is killed. */
  private recordNetwork(): void {
    this.rec = { ...this.rec, network: { netns: this.launch.network.netns, qdiscs: [...this.attached.qdiscs], devices: [...this.attached.devices] } };
    this.store.write(this.rec);
  }

  private setStatus(status: Status, extra: Partial<ContainerRecord> = {}): void {
    assertTransition(this.rec.status, status, this.rec.id);
    this.rec = { ...this.rec, ...extra, status };
    this.store.write(this.rec);
  }

  private async onControl(req: ControlRequest): Promise<ControlReply> {
    const conn = this.conn;
    const vm = this.vm;
    if (conn === undefined || vm === undefined || this.finishing) throw new KataError('E_BAD_STATE', `container ${this.rec.id} is stopped`);
    const id = this.rec.id;
    const paused = this.rec.status === 'paused';
    const notPaused = (): void => {
      if (paused) throw new KataError('E_BAD_STATE', `container ${id} is paused`);
    };
    switch (req.op) {
      case 'start':
        if (this.rec.status !== 'created') throw new KataError('E_BAD_STATE', `cannot start a container that is ${this.rec.status}`);
        await conn.request({ op: 'start', containerId: id }).catch((e: unknown) => this.withHookStderr(e));
        this.setStatus('running');
        this.log('info', 'container started');
        return {};
      case 'kill':
        if (paused) {
          // The guest is frozen and cannot answer. SIGKILL ends the VM at once; any other signal is
          // queued and delivered on resume, as the kernel does for a frozen cgroup.
          if (req.signal === 9) setImmediate(() => void this.finish({ code: null, signal: 9 }, 'killed while paused'));
          else void conn.request({ op: 'signal', containerId: id, signal: req.signal, all: req.all }, 24 * 3600 * 1000).catch(() => undefined);
          return {};
        }
        await conn.request({ op: 'signal', containerId: id, signal: req.signal, all: req.all });
        return {};
      case 'destroy':
        this.log('info', 'destroy requested');
        setImmediate(() => void this.finish({ code: null, signal: 9 }, 'destroyed'));
        return {};
      case 'pause':
        if (this.rec.status !== 'running') throw new KataError('E_BAD_STATE', `container ${id} is not running`);
        await vm.pause();
        this.setStatus('paused');
        this.log('info', 'VM paused');
        return {};
      case 'resume':
        if (!paused) throw new KataError('E_BAD_STATE', `container ${id} is not paused`);
        await vm.resume();
        this.setStatus('running');
        this.log('info', 'VM resumed');
        return {};
      case 'ps':
        notPaused();
        return { result: { processes: decodePsResult(await conn.request({ op: 'ps', containerId: id })) } };
      case 'stats':
        notPaused();
        return { result: { stats: decodeStatsResult(await conn.request({ op: 'stats', containerId: id })) } };
      case 'update':
        await this.update(conn, req.resources, paused);
        return {};
      case 'events':
        return { attach: (sock) => this.subscribe(sock) };
      case 'exec': {
        notPaused();
        if (this.execs.has(req.execId)) throw new KataError('E_EXISTS', `exec id ${req.execId} is in use`);
        const session = new ExecSession(conn, id, req, (l, m) => this.log(l, m));
        this.execs.set(req.execId, session);
        void session.done.then(() => this.execs.delete(req.execId));
        const pid = await session.begin();
        return { result: { pid }, attach: (sock, rest) => session.attach(sock, rest) };
      }
    }
  }

  /**
   * `update`: the guest's cgroup (crun, as at create) and the host's. A host memory limit below what
   * the VM already holds is refused before anything changes: guest memory, once touched, stays with
   * QEMU, and the kernel would OOM-kill the whole VM (v2) or refuse the write (v1).
   */
  private async update(conn: AgentConnection, resources: Record<string, unknown>, paused: boolean): Promise<void> {
    const cg = this.rec.cgroup;
    const cfg = this.launch.config;
    const limits = hostLimits(resources, { vmMemoryMiB: cfg.memoryMiB, memoryOverheadMiB: cfg.memoryOverheadMiB, hostMemoryOverheadMiB: cfg.hostMemoryOverheadMiB });
    if (cg !== undefined) checkMemoryUpdate(limits, memoryHeld(cg.dirs));
    if (paused) {
      // runc updates a frozen cgroup. The guest is stopped and cannot answer: the request waits
      // in the channel and crun applies it as soon as the VM resumes, before the container has
      // had more than a moment to run; a failure then can only be logged. The host cgroup is
      // updated now.
      void conn
        .request({ op: 'update', containerId: this.rec.id, resources }, 24 * 3600 * 1000)
        .catch((e: unknown) => this.log('warn', `update queued while paused failed: ${e instanceof Error ? e.message : String(e)}`));
    } else {
      await conn.request({ op: 'update', containerId: this.rec.id, resources });
    }
    if (cg !== undefined) {
      setLimits(cg.dirs, limits);
      this.log('info', `host cgroup limits updated: ${JSON.stringify(limits)}`);
    }
  }

  /** `events`: one JSON line per event until the container stops. */
  private subscribe(sock: net.Socket): void {
    this.subscribers.add(sock);
    sock.resume(); // nothing is expected from the CLI; reading notices its close
  }

  private onOom(ev: OomEvent): void {
    this.oomLog.hit();
    this.subscribers.send(JSON.stringify({ type: 'oom' }) + '\n');
  }

  private forwardSignal(s: NodeJS.Signals): void {
    const n = os.constants.signals[s];
    const conn = this.conn;
    if (conn === undefined || this.finishing || this.rec.status === 'creating') return;
    conn.request({ op: 'signal', containerId: this.rec.id, signal: n, all: false }).catch(() => undefined);
  }

  private async onExit(ev: ExitEvent): Promise<void> {
    if (this.exitReported) return;
    this.exitReported = true;
    this.log('info', `container exited: ${ev.signal === null ? `code ${ev.code}` : `signal ${ev.signal}`}`);
    await this.conn?.flushInbound();
    await this.finish({ code: ev.code, signal: ev.signal }, 'exited');
  }

  private onVmExit(how: { code: number | null; signal: NodeJS.Signals | null }): void {
    if (this.finishing) return;
    this.fatal(new KataError('E_VM', `the VM exited unexpectedly (${how.signal ?? `code ${how.code}`}); console: ${lastConsoleLine(this.files.consoleLog)}`));
  }

  private fatal(e: KataError): void {
    if (this.finishing) return;
    this.log('error', e.oneLine());
    if (this.rec.status === 'creating') return; // boot() is failing and will clean up
    void this.finish({ code: null, signal: 9 }, 'failed');
  }

  /** Tears down the VM and its helpers; safe to call more than once. */
  private async teardown(): Promise<void> {
    this.finishing = true;
    this.abort.abort();
    for (const x of this.execs.values()) x.abort();
    this.terminal?.stop();
    this.subscribers.endAll();
    this.conn?.close();
    this.server?.close();
    await Promise.allSettled([this.vm?.kill(), this.virtiofsd?.kill()]);
    // Taps went with QEMU; qdiscs on the engine's interfaces and macvtaps are ours to remove.
    const failed = await detach({ qdiscs: this.attached.qdiscs.splice(0), devices: this.attached.devices.splice(0) }, null);
    for (const f of failed) this.log('warning', `network teardown: ${f}`);
    for (const f of Object.values(this.files.sockets)) fs.rmSync(path.join(this.dir, f), { force: true });
  }

  private async finish(status: ExitStatus, why: string): Promise<void> {
    if (this.finishing) return;
    await this.teardown();
    try {
      const cur: Status = this.rec.status;
      this.rec = { ...this.rec, status: 'stopped', exit: status };
      if (cur !== 'stopped') this.store.write(this.rec);
    } catch (e) {
      this.log('error', `cannot record the exit: ${String(e)}`);
    }
    this.log('info', `monitor exiting (${why})`);
    exitLike(status, FORWARDED_SIGNALS);
  }
}

function lastLineOf(file: string, maxBytes: number): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, maxBytes));
    const n = fs.readSync(fd, buf, 0, buf.length, Math.max(0, size - buf.length));
    const lines = buf.subarray(0, n).toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
    return (lines.at(-1) ?? '').slice(0, 300);
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function lastConsoleLine(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
    return lines.slice(-2).join(' | ').slice(0, 300);
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined || !path.isAbsolute(dir)) {
    process.stderr.write('usage: monitor <container state dir>\n');
    process.exit(2);
  }
  process.chdir(dir);
  // Every socket and file the monitor, QEMU and virtiofsd create is private to the owner from
  // the moment it exists (a socket's mode is set at bind(2), before any chmod could run).
  process.umask(0o077);
  const m = new Monitor(dir);
  // A bug in the monitor must not leave a VM without its owner: tear down and exit like a
  // container killed by SIGKILL (or fail create, if it is still in progress).
  process.on('uncaughtException', (e) => m.crash(e));
  await m.run();
}

void main().catch(async (e: unknown) => {
  process.stderr.write(`kata-runtime monitor: ${String(e)}\n`);
  await sleep(0);
  exitNow(1);
});
