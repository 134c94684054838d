/**
 * containerd (1.6, runc shim v2) driving kata-runtime, through `ctr`:
 * `ctr run --runtime io.containerd.runc.v2 --runc-binary /usr/local/bin/kata-runtime` sets the
 * shim's BinaryName, exactly what a `runtimes.kata` entry with `options.BinaryName` does in the
 * CRI configuration (docs/engines.md). containerd is started by
 * `bash scripts/engines.sh start DIR containerd` under a fresh temporary folder and stopped with
 * `stop DIR`. The image is an OCI layout built with umoci and `ctr images import`ed.
 *
 * ctr has no stop or rm -f: stop is `ctr task kill` (SIGTERM), then SIGKILL after the timeout,
 * as podman and docker do; rm -f is `ctr task delete --force` + `ctr container delete`. The exit
 * code comes from `ctr task delete`, which reports a non-zero one as a warning.
 *
 * KATA_ENGINE_RUNTIME=runc runs the same cases with --runc-binary /usr/sbin/runc as a self-check
 * of the harness; the VM assertion is then inverted (the kernel inside must be the host's).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { engineCases, type Engine, type Status } from './cases.js';
import { busyboxOciArchive, enginesSh, ok, requireEngine, runtimeBinary, runtimeChoice, sh, show, sleep, suiteDir, type Res } from './harness.js';

const IMAGE = 'localhost/kbusybox:latest';
const NS = 'kata-engines';

let execSeq = 0;

class Containerd implements Engine {
  readonly name = 'containerd';
  private readonly base: string[];
  private readonly runtimeFlags = ['--runtime', 'io.containerd.runc.v2', '--runc-binary', runtimeBinary()];
  private readonly exitCodes = new Map<string, number>();

  constructor(readonly dir: string) {
    this.base = ['ctr', '--address', path.join(dir, 'containerd', 'containerd.sock'), '--namespace', NS];
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  }

  ctr(args: string[], timeoutMs = 240000): Promise<Res> {
    return sh([...this.base, ...args], { timeoutMs });
  }

  private logFile(c: string): string {
    return path.join(this.dir, 'logs', `${c}.log`);
  }

  async setup(): Promise<void> {
    await enginesSh('start', this.dir, 'containerd');
    const tar = await busyboxOciArchive(this.dir);
    await ok([...this.base, 'images', 'import', '--base-name', 'localhost/kbusybox', tar]);
  }

  run(c: string, args: string[]): Promise<Res> {
    return this.ctr(['run', '--rm', ...this.runtimeFlags, IMAGE, c, ...args]);
  }

  lastRunId(c: string): string {
    return c;
  }

  id(c: string): Promise<string> {
    return Promise.resolve(c);
  }

  runDetached(c: string, args: string[]): Promise<Res> {
    return this.ctr(['run', '-d', '--log-uri', `file://${this.logFile(c)}`, ...this.runtimeFlags, IMAGE, c, ...args]);
  }

  logs(c: string): Promise<string> {
    return Promise.resolve(fs.existsSync(this.logFile(c)) ? fs.readFileSync(this.logFile(c), 'utf8') : '');
  }

  /** `ctr task ls`: TASK PID STATUS. */
  private async task(c: string): Promise<{ pid: number; status: string } | undefined> {
    const r = await this.ctr(['tasks', 'ls'], 60000);
    if (r.code !== 0) throw new Error(show(r));
    for (const l of r.stdout.split('\n').slice(1)) {
      const [id, pid, status] = l.trim().split(/\s+/);
      if (id === c && pid !== undefined && status !== undefined) return { pid: Number(pid), status };
    }
    return undefined;
  }

  async status(c: string): Promise<Status> {
    const t = await this.task(c);
    if (t === undefined) return (await this.exists(c)) ? 'exited' : 'absent';
    const map: Record<string, Status> = { CREATED: 'created', RUNNING: 'running', PAUSED: 'paused', PAUSING: 'running', STOPPED: 'exited' };
    return map[t.status] ?? (t.status as Status);
  }

  private async exitsWithin(c: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await this.status(c)) === 'exited') return true;
      await sleep(200);
    }
    return false;
  }

  /** What podman and docker do: SIGTERM, wait, SIGKILL after the timeout, wait. */
  async stop(c: string, timeoutSec: number): Promise<Res> {
    const t0 = Date.now();
    const term = await this.ctr(['tasks', 'kill', '--signal', 'SIGTERM', c]);
    if (term.code !== 0) return term;
    if (await this.exitsWithin(c, timeoutSec * 1000)) return { ...term, ms: Date.now() - t0 };
    const kill = await this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', c]);
    if (kill.code !== 0) return kill;
    if (await this.exitsWithin(c, 60000)) return { ...kill, ms: Date.now() - t0 };
    return { ...kill, code: -1, stderr: `${c} still not stopped 60 s after SIGKILL`, ms: Date.now() - t0 };
  }

  /** Deletes the stopped task; ctr reports a non-zero exit code as a warning on stderr. */
  async exitCode(c: string): Promise<number> {
    const known = this.exitCodes.get(c);
    if (known !== undefined) return known;
    const r = await this.ctr(['tasks', 'delete', c]);
    expect(r.code, show(r)).toBe(0);
    const m = /exit with non-zero exit code ([0-9]+)/.exec(r.stderr);
    const code = m?.[1] === undefined ? 0 : Number(m[1]);
    this.exitCodes.set(c, code);
    return code;
  }

  exec(c: string, args: string[]): Promise<Res> {
    return this.ctr(['tasks', 'exec', '--exec-id', `e${process.pid}-${++execSeq}`, c, ...args]);
  }

  execTerminalArgv(c: string, args: string[]): string[] {
    return [...this.base, 'tasks', 'exec', '--tty', '--exec-id', `e${process.pid}-${++execSeq}`, c, ...args];
  }

  runTerminalArgv(c: string, args: string[]): string[] {
    return [...this.base, 'run', '--tty', '--rm', ...this.runtimeFlags, IMAGE, c, ...args];
  }

  kill(c: string, signal: string): Promise<Res> {
    return this.ctr(['tasks', 'kill', '--signal', `SIG${signal}`, c]);
  }

  pause(c: string): Promise<Res> {
    return this.ctr(['tasks', 'pause', c]);
  }

  resume(c: string): Promise<Res> {
    return this.ctr(['tasks', 'resume', c]);
  }

  async rmForce(c: string): Promise<Res> {
    if ((await this.task(c)) !== undefined) {
      const t = await this.ctr(['tasks', 'delete', '--force', c]);
      if (t.code !== 0) return t;
    }
    return this.ctr(['containers', 'delete', c]);
  }

  async remove(c: string): Promise<void> {
    if ((await this.task(c)) !== undefined) await this.exitCode(c);
    await ok([...this.base, 'containers', 'delete', c]);
  }

  async exists(c: string): Promise<boolean> {
    return (await this.ctr(['containers', 'info', c], 60000)).code === 0;
  }

  async list(): Promise<string[]> {
    const cs = await this.ctr(['containers', 'ls', '--quiet'], 60000);
    const ts = await this.ctr(['tasks', 'ls', '--quiet'], 60000);
    const lines = (r: Res, what: string): string[] => r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => `${what} ${l.trim()}`);
    return [...lines(cs, 'container'), ...lines(ts, 'task')];
  }

  stateDir(id: string): string {
    // the runc shim v2 calls the runtime with --root /run/containerd/runc/<namespace>
    return path.join('/run/containerd/runc', NS, id);
  }

  async memoryUsage(c: string): Promise<number> {
    // `ctr task metrics`: a METRIC/VALUE table read by the runc shim from the state pid's cgroup
    const r = await this.ctr(['tasks', 'metrics', c]);
    expect(r.code, show(r)).toBe(0);
    const m = /^memory\.usage(?:_in_bytes)?\s+([0-9]+)\s*$/m.exec(r.stdout);
    expect(m, show(r)).not.toBeNull();
    return Number(m?.[1]);
  }

  async checkTop(c: string): Promise<void> {
    // `ctr task ps` shows the pids `<runtime> ps` reported: exactly the task's host-visible process
    const task = await this.task(c);
    const t = await this.ctr(['tasks', 'ps', c]);
    expect(t.code, show(t)).toBe(0);
    const pids = t.stdout.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(pids, show(t)).toEqual([task?.pid]);
  }
}

let engine: Containerd | undefined;
let dir: string | undefined;

beforeAll(async () => {
  requireEngine(['containerd', 'ctr', 'umoci']);
  dir = suiteDir('containerd');
  engine = new Containerd(dir);
  await engine.setup();
});

afterAll(async () => {
  if (dir !== undefined) {
    await enginesSh('stop', dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe(`containerd (ctr --runc-binary ${runtimeBinary()}, ${runtimeChoice()})`, () => {
  engineCases(() => {
    if (engine === undefined) throw new Error('containerd suite not set up (see the beforeAll error)');
    return engine;
  });
});
