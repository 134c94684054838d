/**
 * podman (4.3, with conmon) driving kata-runtime: `podman --runtime kata` resolves the name `kata`
 * to /usr/local/bin/kata-runtime through podman's built-in list of paths, as a user would type it.
 *
 * KATA_ENGINE_RUNTIME=runc runs the same cases with `--runtime runc` as a self-check of the
 * harness; the VM assertion is then inverted (the kernel inside must be the host's). See
 * harness.ts. Storage (--root/--runroot/--tmpdir) lives in a fresh temporary folder per run, with
 * a containers.conf there (CONTAINERS_CONF) for this machine: cgroupfs, file events, and
 * default_ulimits under the hard nofile limit of 20000 (root lacks CAP_SYS_RESOURCE here).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { engineCases, type Engine, type Status } from './cases.js';
import { busyboxTarball, enginesSh, ok, parseSize, podmanSetup, requireEngine, runtimeChoice, sh, show, suiteDir, type Res } from './harness.js';

const IMAGE = 'localhost/kbusybox:latest';

class Podman implements Engine {
  readonly name = 'podman';
  private readonly env: NodeJS.ProcessEnv;
  private readonly base: string[];
  private readonly runtime = runtimeChoice() === 'kata' ? 'kata' : 'runc';

  constructor(readonly dir: string) {
    const p = podmanSetup(dir, this.runtime);
    this.env = p.env;
    this.base = p.base;
  }

  p(args: string[], timeoutMs = 240000): Promise<Res> {
    return sh([...this.base, ...args], { env: this.env, timeoutMs });
  }

  private cid(c: string): string {
    return path.join(this.dir, `${c}.cid`);
  }

  async setup(): Promise<void> {
    const tar = busyboxTarball(this.dir);
    await ok([...this.base, 'import', tar, IMAGE], { env: this.env });
  }

  run(c: string, args: string[]): Promise<Res> {
    return this.p(['run', '--rm', '--name', c, '--network', 'none', '--cidfile', this.cid(c), IMAGE, ...args]);
  }

  lastRunId(c: string): string {
    return fs.readFileSync(this.cid(c), 'utf8').trim();
  }

  async id(c: string): Promise<string> {
    return (await this.inspect(c, '{{.Id}}')) ?? `(no container ${c})`;
  }

  runDetached(c: string, args: string[]): Promise<Res> {
    return this.p(['run', '-d', '--name', c, '--network', 'none', IMAGE, ...args]);
  }

  async logs(c: string): Promise<string> {
    const r = await this.p(['logs', c], 60000);
    return r.stdout + r.stderr;
  }

  private async inspect(c: string, format: string): Promise<string | undefined> {
    const r = await this.p(['container', 'inspect', '--format', format, c], 60000);
    return r.code === 0 ? r.stdout.trim() : undefined;
  }

  async status(c: string): Promise<Status> {
    const s = await this.inspect(c, '{{.State.Status}}');
    if (s === undefined) return 'absent';
    if (s === 'stopped') return 'exited';
    return s as Status;
  }

  stop(c: string, timeoutSec: number): Promise<Res> {
    return this.p(['stop', '--time', String(timeoutSec), c]);
  }

  async exitCode(c: string): Promise<number> {
    return Number(await this.inspect(c, '{{.State.ExitCode}}'));
  }

  exec(c: string, args: string[]): Promise<Res> {
    return this.p(['exec', c, ...args]);
  }

  execTerminalArgv(c: string, args: string[]): string[] {
    return ['env', `CONTAINERS_CONF=${this.env['CONTAINERS_CONF'] ?? ''}`, ...this.base, 'exec', '-it', c, ...args];
  }

  runTerminalArgv(c: string, args: string[]): string[] {
    return ['env', `CONTAINERS_CONF=${this.env['CONTAINERS_CONF'] ?? ''}`, ...this.base, 'run', '-it', '--rm', '--name', c, '--network', 'none', '--cidfile', this.cid(c), IMAGE, ...args];
  }

  kill(c: string, signal: string): Promise<Res> {
    return this.p(['kill', '--signal', signal, c]);
  }

  pause(c: string): Promise<Res> {
    return this.p(['pause', c]);
  }

  resume(c: string): Promise<Res> {
    return this.p(['unpause', c]);
  }

  rmForce(c: string): Promise<Res> {
    return this.p(['rm', '-f', c]);
  }

  async remove(c: string): Promise<void> {
    await ok([...this.base, 'rm', c], { env: this.env });
  }

  async exists(c: string): Promise<boolean> {
    return (await this.p(['container', 'exists', c], 60000)).code === 0;
  }

  async list(): Promise<string[]> {
    const r = await this.p(['ps', '-a', '--format', '{{.ID}} {{.Names}}'], 60000);
    return r.stdout.split('\n').filter((l) => l.trim() !== '');
  }

  stateDir(id: string): string {
    // podman passes no --root to the OCI runtime: each uses its default (runc /run/runc, kata-runtime /run/kata)
    return path.join(this.runtime === 'kata' ? '/run/kata' : '/run/runc', id);
  }

  async memoryUsage(c: string): Promise<number> {
    // [{"mem_usage": "138.9MB / 268.4MB", ...}]: read from the spec's cgroupsPath
    const r = await this.p(['stats', '--no-stream', '--format', 'json', c]);
    expect(r.code, show(r)).toBe(0);
    const rows = JSON.parse(r.stdout) as { mem_usage?: string }[];
    return parseSize(rows[0]?.mem_usage ?? '');
  }

  async checkTop(c: string): Promise<void> {
    const t = await this.p(['top', c]);
    expect(t.code, show(t)).toBe(0);
    // podman top reads /proc of the container's pid namespace on the host. Under kata-runtime
    // that pid is the monitor's, a host process in the host's pid namespace, so podman lists the
    // host's processes, the monitor among them; the workload lives in the guest
    // (docs/cli-compat.md, `ps`). Under runc: exactly the workload.
    const rows = t.stdout.trim().split('\n').slice(1);
    if (this.runtime === 'runc') {
      expect(rows.length, show(t)).toBe(1);
      expect(rows[0], show(t)).toMatch(/sleep 4242/);
    } else {
      const pid = (await this.p(['inspect', '--format', '{{.State.Pid}}', c])).stdout.trim();
      expect(rows.some((r) => r.trim().split(/\s+/)[1] === pid), show(t)).toBe(true);
    }
  }

  async teardown(): Promise<void> {
    await this.p(['rm', '-a', '-f', '--time', '0']).catch(() => undefined);
  }
}

let engine: Podman | undefined;
let dir: string | undefined;

beforeAll(async () => {
  requireEngine(['podman', 'conmon']);
  dir = suiteDir('podman');
  engine = new Podman(dir);
  await engine.setup();
});

afterAll(async () => {
  try {
    await engine?.teardown();
  } finally {
    // no daemons here: `stop` removes whatever still runs or is mounted under the folder
    if (dir !== undefined) {
      await enginesSh('stop', dir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

describe(`podman --runtime ${runtimeChoice()}`, () => {
  engineCases(() => {
    if (engine === undefined) throw new Error('podman suite not set up (see the beforeAll error)');
    return engine;
  });
});
