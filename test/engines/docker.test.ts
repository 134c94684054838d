/**
 * docker (Debian's docker.io 20.10) driving kata-runtime through a daemon.json `runtimes` entry
 * `kata` → /usr/local/bin/kata-runtime; `docker run --runtime kata`. dockerd and the containerd it
 * uses are started by `bash scripts/engines.sh start DIR` with everything under a fresh temporary
 * folder, and stopped with `stop DIR` (cleanup even when a case fails).
 *
 * KATA_ENGINE_RUNTIME=runc runs the same cases with `--runtime runc` as a self-check of the
 * harness; the VM assertion is then inverted (the kernel inside must be the host's). See harness.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { engineCases, type Engine, type Status } from './cases.js';
import { busyboxTarball, DOCKER_BIN, enginesSh, ok, parseSize, requireEngine, runtimeChoice, sh, show, suiteDir, type Res } from './harness.js';

const IMAGE = 'kbusybox:latest';

class Docker implements Engine {
  readonly name = 'docker';
  private readonly base: string[];
  private readonly runtime = runtimeChoice();

  constructor(readonly dir: string) {
    this.base = [DOCKER_BIN, '-H', `unix://${path.join(dir, 'docker', 'docker.sock')}`];
  }

  d(args: string[], timeoutMs = 240000): Promise<Res> {
    return sh([...this.base, ...args], { timeoutMs });
  }

  private cid(c: string): string {
    return path.join(this.dir, `${c}.cid`);
  }

  async setup(): Promise<void> {
    await enginesSh('start', this.dir);
    const tar = busyboxTarball(this.dir);
    await ok([...this.base, 'import', tar, IMAGE]);
  }

  run(c: string, args: string[]): Promise<Res> {
    return this.d(['run', '--rm', '--name', c, '--runtime', this.runtime, '--network', 'none', '--cidfile', this.cid(c), IMAGE, ...args]);
  }

  lastRunId(c: string): string {
    return fs.readFileSync(this.cid(c), 'utf8').trim();
  }

  async id(c: string): Promise<string> {
    return (await this.inspect(c, '{{.Id}}')) ?? `(no container ${c})`;
  }

  runDetached(c: string, args: string[]): Promise<Res> {
    return this.d(['run', '-d', '--name', c, '--runtime', this.runtime, '--network', 'none', IMAGE, ...args]);
  }

  async logs(c: string): Promise<string> {
    const r = await this.d(['logs', c], 60000);
    return r.stdout + r.stderr;
  }

  private async inspect(c: string, format: string): Promise<string | undefined> {
    const r = await this.d(['container', 'inspect', '--format', format, c], 60000);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async status(c: string): Promise<Status> {
    const s = await this.inspect(c, '{{.State.Status}}');
    return s === undefined ? 'absent' : (s as Status);
  }

  stop(c: string, timeoutSec: number): Promise<Res> {
    return this.d(['stop', '--time', String(timeoutSec), c]);
  }

  async exitCode(c: string): Promise<number> {
    return Number(await this.inspect(c, '{{.State.ExitCode}}'));
  }

  exec(c: string, args: string[]): Promise<Res> {
    return this.d(['exec', c, ...args]);
  }

  execTerminalArgv(c: string, args: string[]): string[] {
    return [...this.base, 'exec', '-it', c, ...args];
  }

  runTerminalArgv(c: string, args: string[]): string[] {
    return [...this.base, 'run', '-it', '--rm', '--name', c, '--runtime', this.runtime, '--network', 'none', '--cidfile', this.cid(c), IMAGE, ...args];
  }

  kill(c: string, signal: string): Promise<Res> {
    return this.d(['kill', '--signal', signal, c]);
  }

  pause(c: string): Promise<Res> {
    return this.d(['pause', c]);
  }

  resume(c: string): Promise<Res> {
    return this.d(['unpause', c]);
  }

  rmForce(c: string): Promise<Res> {
    return this.d(['rm', '-f', c]);
  }

  async remove(c: string): Promise<void> {
    await ok([...this.base, 'rm', c]);
  }

  async exists(c: string): Promise<boolean> {
    return (await this.d(['container', 'inspect', c], 60000)).code === 0;
  }

  async list(): Promise<string[]> {
    const r = await this.d(['ps', '-a', '--format', '{{.ID}} {{.Names}}'], 60000);
    return r.stdout.split('\n').filter((l) => l.trim() !== '');
  }

  stateDir(id: string): string {
    // docker 20.10 has the shim call every runtime, kata included, with --root <exec-root>/runtime-runc/moby
    return path.join(this.dir, 'docker', 'exec', 'runtime-runc', 'moby', id);
  }

  async memoryUsage(c: string): Promise<number> {
    // "132.3MiB / 768MiB": read by the runc shim from the cgroup of the state pid
    const r = await this.d(['stats', '--no-stream', '--format', '{{.MemUsage}}', c]);
    expect(r.code, show(r)).toBe(0);
    return parseSize(r.stdout);
  }

  async checkTop(c: string): Promise<void> {
    // docker top runs the HOST's ps and keeps the pids that `<runtime> ps` reported: it must list
    // exactly the container's host-visible process, the one docker knows as State.Pid.
    const pid = await this.inspect(c, '{{.State.Pid}}');
    const t = await this.d(['top', c]);
    expect(t.code, show(t)).toBe(0);
    const rows = t.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => r[1]), show(t)).toEqual([pid]);
  }
}

let engine: Docker | undefined;
let dir: string | undefined;

beforeAll(async () => {
  requireEngine(['dockerd', 'containerd', 'ctr', DOCKER_BIN]);
  dir = suiteDir('docker');
  engine = new Docker(dir);
  await engine.setup();
});

afterAll(async () => {
  if (dir !== undefined) {
    await enginesSh('stop', dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe(`docker --runtime ${runtimeChoice()}`, () => {
  engineCases(() => {
    if (engine === undefined) throw new Error('docker suite not set up (see the beforeAll error)');
    return engine;
  });
});
