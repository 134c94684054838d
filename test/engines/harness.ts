/**
 * Shared machinery of the real-engine compatibility suites (podman, docker, containerd's ctr).
 *
 * The runtime the engines drive is chosen with KATA_ENGINE_RUNTIME:
 *   kata (default)  the engines run /usr/local/bin/kata-runtime (podman `--runtime kata`, docker's
 *                   `kata` runtimes entry, ctr `--runc-binary /usr/local/bin/kata-runtime`). Every
 *                   case asserts that the kernel seen inside is the guest's (it differs from the
 *                   host's and equals /usr/local/share/kata-runtime/guest/kernel-version).
 *   runc            harness self-check: the same cases against Debian's runc. The VM assertion is
 *                   INVERTED (the kernel inside must equal the host's), which proves that the
 *                   harness really reads the kernel from inside the container; everything else is
 *                   asserted identically. Every case must pass this way.
 * Anything else fails the suite. A missing prerequisite (root, an engine, the guest image, ...)
 * fails the suite loudly in beforeAll: nothing here skips itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { mountsMentioning, processesMentioning, requirePrerequisites } from '../e2e/helpers.js';
import { makeBusyboxRootfs } from '../../src/oci/demo.js';
import { GUEST_DIR } from '../../src/config.js';

export type RuntimeChoice = 'kata' | 'runc';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const ENGINES_SH = path.join(REPO, 'scripts', 'engines.sh');
export const KATA_BIN = '/usr/local/bin/kata-runtime';
export const RUNC_BIN = '/usr/sbin/runc';
/** Debian's docker.io client; a newer static docker may shadow it earlier on PATH. */
export const DOCKER_BIN = '/usr/bin/docker';

export function runtimeChoice(): RuntimeChoice {
  const v = process.env['KATA_ENGINE_RUNTIME'] ?? 'kata';
  if (v !== 'kata' && v !== 'runc') throw new Error(`KATA_ENGINE_RUNTIME=${v}: must be kata or runc`);
  return v;
}

/** The runtime binary the engines are pointed at. */
export function runtimeBinary(): string {
  return runtimeChoice() === 'kata' ? KATA_BIN : RUNC_BIN;
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Throws, listing everything missing, unless this machine can run an engine suite. */
export function requireEngine(tools: string[]): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const t of ['tmux', ...tools]) if (!(t.startsWith('/') ? fs.existsSync(t) : which(t))) missing.push(t);
  if (runtimeChoice() === 'kata') {
    if (!fs.existsSync(KATA_BIN)) missing.push(`${KATA_BIN} (bash scripts/setup.sh)`);
    try {
      requirePrerequisites();
    } catch (e) {
      missing.push((e as Error).message);
    }
  } else {
    for (const p of [RUNC_BIN, '/bin/busybox']) if (!fs.existsSync(p)) missing.push(p);
  }
  if (missing.length > 0) {
    throw new Error(`engine suite prerequisites missing (run 'bash scripts/setup.sh' and 'bash scripts/engines.sh install'): ${missing.join(', ')}`);
  }
}

// --- processes ----------------------------------------------------------------------------------

export interface Res {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  argv: string[];
}

/** A compact description of a finished command, for assertion messages. */
export function show(r: Res): string {
  return `$ ${r.argv.join(' ')}\n→ exit ${r.code ?? r.signal} after ${r.ms} ms\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`;
}

/**
 * Runs a command to completion with stdin from /dev/null (or `input`), collecting its output. A
 * timeout kills it and is reported as a failure, never as a hang.
 */
export function sh(argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Res> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty argv');
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.input !== undefined && child.stdin) child.stdin.end(opts.input);
    const timeoutMs = opts.timeoutMs ?? 180000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms: ${argv.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, argv });
    });
  });
}

/** sh(), and the command must succeed. */
export async function ok(argv: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Res> {
  const r = await sh(argv, opts);
  if (r.code !== 0) throw new Error(`command failed:\n${show(r)}`);
  return r;
}

export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/**
 * Polls `probe` until it returns a value other than undefined; `what` explains a timeout. A probe
 * that throws ends the wait at once with its error (the thing waited for cannot happen any more).
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// --- the VM assertion ---------------------------------------------------------------------------

let guestKernel: string | undefined;

/**
 * The kernel release printed inside the container proves where it ran: under kata-runtime the
 * guest's (different from the host's), under the runc self-check the host's.
 */
export function expectKernelInside(printed: string, context = ''): void {
  const inside = printed.trim();
  expect(inside, `no kernel release printed inside the container ${context}`).toMatch(/^[0-9]+\.[0-9]+\S*$/);
  if (runtimeChoice() === 'runc') {
    expect(inside, `runc self-check: the container must see the host kernel ${context}`).toBe(os.release());
    return;
  }
  guestKernel ??= fs.readFileSync(path.join(GUEST_DIR, 'kernel-version'), 'utf8').trim();
  expect(inside, `the workload did not run in a VM: it saw the host kernel ${context}`).not.toBe(os.release());
  expect(inside, `the workload saw a kernel that is not the guest image's ${context}`).toBe(guestKernel);
}

/** The first line of output that looks like a kernel release (workloads print `uname -r` first). */
export function kernelLine(text: string): string {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => /^[0-9]+\.[0-9]+\.[0-9]+\S*$/.test(l));
  return line ?? `(no kernel release in: ${JSON.stringify(text.slice(0, 500))})`;
}

// --- leftovers ----------------------------------------------------------------------------------

/** Mount points under `dir`, in the host's mount namespace. */
export function mountsUnder(dir: string): string[] {
  return mountsMentioning(dir)
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** QEMU or virtiofsd processes whose command line or working directory mentions `needle`. */
export function vmProcessesFor(needle: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!/^(qemu-system|virtiofsd)/.test(comm)) continue;
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // exiting
      }
      if (cmd.includes(needle) || cwd.includes(needle)) out.push(`${pid} (${comm}, cwd ${cwd}): ${cmd.slice(0, 200)}`);
    } catch {
      // gone
    }
  }
  return out;
}

export interface LeftoverScope {
  /** The engine's full container id (the runtime sees this id). */
  id: string;
  /** The runtime's state directory for this container (`<root>/<id>`). */
  stateDir: string;
  /** A folder owned by this suite, and the mounts that were there before the case started. */
  dir: string;
  baselineMounts: string[];
  /** What the engine itself still lists (containers, tasks); must be empty. */
  engineList: () => Promise<string[]>;
}

export function leftoversNow(s: LeftoverScope): string[] {
  const left = [
    ...processesMentioning(s.id).map((p) => `process ${p}`),
    ...vmProcessesFor(s.id).map((p) => `vm process ${p}`),
    ...mountsMentioning(s.id).map((m) => `mount ${m}`),
    ...mountsUnder(s.dir).filter((m) => !s.baselineMounts.includes(m)).map((m) => `mount under the suite's folder: ${m}`),
  ];
  if (fs.existsSync(s.stateDir)) left.push(`runtime state dir ${s.stateDir}`);
  return [...new Set(left)];
}

/**
 * Nothing of the container is left: no process mentions its id (conmon, shim, monitor, QEMU,
 * virtiofsd), no mount mentions it or appeared under the suite's folder, the runtime's state dir
 * is gone and the engine lists nothing. Engines tear down asynchronously (a shim exits a moment
 * after delete), so this waits up to 30 s for the last of it to go, then reports what remains.
 */
export async function expectNoLeftovers(s: LeftoverScope): Promise<void> {
  const deadline = Date.now() + 30000;
  let left: string[] = [];
  for (;;) {
    left = [...leftoversNow(s), ...(await s.engineList()).map((c) => `the engine still lists ${c}`)];
    if (left.length === 0 || Date.now() > deadline) break;
    await sleep(500);
  }
  expect(left, `left behind by ${s.id}`).toEqual([]);
}

// --- terminals ----------------------------------------------------------------------------------

export interface TerminalStep {
  /** Wait until the screen matches this... */
  waitFor: RegExp;
  /** ...then type this text and Enter. */
  type?: string;
}

export interface TerminalResult {
  screen: string;
  /** The exit status of the command run in the terminal (128+N for death by signal N). */
  code: number;
}

let tmuxSeq = 0;

/**
 * Runs `argv` in a real terminal: a private tmux server (its own socket under `dir`), 160×50.
 * Follows `steps` (wait for text on the screen, type a line), then waits for the command to exit
 * and returns the whole screen and its exit status. The server is killed whatever happens.
 */
export async function inTerminal(dir: string, argv: string[], steps: TerminalStep[], timeoutMs = 240000): Promise<TerminalResult> {
  const sock = path.join(dir, `tmux-${process.pid}-${++tmuxSeq}.sock`);
  const conf = path.join(dir, 'tmux.conf');
  fs.writeFileSync(conf, 'set -g remain-on-exit on\nset -g history-limit 10000\n');
  const tmux = (...a: string[]): Promise<Res> => sh(['tmux', '-S', sock, ...a], { timeoutMs: 20000 });
  const screen = async (): Promise<string> => (await tmux('capture-pane', '-p', '-J', '-S', '-', '-t', 'w')).stdout;
  try {
    // A shell in the pane runs the command and records its exit status in a file: tmux's own
    // #{pane_dead_status} is sometimes never filled in when the pty closes before the reap.
    const statusFile = `${sock}.status`;
    const wrapper = '"$@"; echo $? > "$STATUS_FILE.tmp" && mv "$STATUS_FILE.tmp" "$STATUS_FILE"';
    await ok(['tmux', '-S', sock, '-f', conf, 'new-session', '-d', '-x', '160', '-y', '50', '-s', 'w', '-e', `STATUS_FILE=${statusFile}`, '--', 'sh', '-c', wrapper, 'sh', ...argv], { timeoutMs: 20000 });
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(1000, deadline - Date.now());
    for (const step of steps) {
      await waitFor(`${String(step.waitFor)} on the terminal running ${argv.join(' ')}`, async () => {
        const s = await screen();
        if (step.waitFor.test(s)) return true;
        const dead = (await tmux('display-message', '-p', '-t', 'w', '#{pane_dead}')).stdout.trim();
        if (dead === '1' || fs.existsSync(statusFile)) throw new Error(`the command exited before ${String(step.waitFor)} appeared; screen:\n${s}`);
        return undefined;
      }, left()).catch(async (e: unknown) => {
        throw new Error(`${(e as Error).message}\nscreen:\n${await screen().catch(() => '?')}`);
      });
      if (step.type !== undefined) {
        await ok(['tmux', '-S', sock, 'send-keys', '-t', 'w', '-l', step.type]);
        await ok(['tmux', '-S', sock, 'send-keys', '-t', 'w', 'Enter']);
      }
    }
    const code = await waitFor(`${argv.join(' ')} to exit in its terminal`, async () => {
      if (!fs.existsSync(statusFile)) return undefined;
      return Number(fs.readFileSync(statusFile, 'utf8').trim());
    }, left()).catch(async (e: unknown) => {
      throw new Error(`${(e as Error).message}\nscreen:\n${await screen().catch(() => '?')}`);
    });
    return { screen: await screen(), code };
  } finally {
    await tmux('kill-server').catch(() => undefined);
    fs.rmSync(sock, { force: true });
    fs.rmSync(`${sock}.status`, { force: true });
  }
}

// --- images -------------------------------------------------------------------------------------

/** A busybox root filesystem as a tarball (for `podman import` / `docker import`). */
export function busyboxTarball(dir: string): string {
  const rootfs = path.join(dir, 'busybox-rootfs');
  makeBusyboxRootfs(rootfs);
  const tar = path.join(dir, 'busybox.tar');
  const r = spawnSync('tar', ['-C', rootfs, '-cf', tar, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return tar;
}

/**
 * The same busybox rootfs as an OCI image layout tarball (for `ctr images import`), built with
 * umoci; its single tag is `latest`.
 */
export async function busyboxOciArchive(dir: string): Promise<string> {
  const layout = path.join(dir, 'oci-layout');
  const bundle = path.join(dir, 'oci-unpack');
  await ok(['umoci', 'init', '--layout', layout]);
  await ok(['umoci', 'new', '--image', `${layout}:latest`]);
  await ok(['umoci', 'unpack', '--image', `${layout}:latest`, bundle]);
  makeBusyboxRootfs(path.join(bundle, 'rootfs'));
  await ok(['umoci', 'repack', '--image', `${layout}:latest`, bundle]);
  await ok(['umoci', 'config', '--image', `${layout}:latest`, '--config.cmd', 'sh']);
  const tar = path.join(dir, 'busybox-oci.tar');
  await ok(['tar', '-C', layout, '-cf', tar, '.']);
  fs.rmSync(bundle, { recursive: true, force: true });
  return tar;
}

/**
 * podman set up for these machines (docs/engines.md): writes `dir`/containers.conf (cgroupfs, file
 * events, default_ulimits under the hard nofile limit of 20000, then `extra` lines) and returns
 * the environment that points podman at it and the argv prefix with podman's storage under `dir`.
 */
export function podmanSetup(dir: string, runtime: RuntimeChoice, extra: string[] = []): { env: NodeJS.ProcessEnv; base: string[] } {
  const conf = path.join(dir, 'containers.conf');
  const lines = ['[containers]', 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]', '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', ...extra, ''];
  fs.writeFileSync(conf, lines.join('\n'));
  return {
    env: { ...process.env, CONTAINERS_CONF: conf },
    base: ['podman', '--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'runroot'), '--tmpdir', path.join(dir, 'tmp'), '--runtime', runtime],
  };
}

/** A fresh temporary folder for one suite. */
export function suiteDir(engine: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kata-engines-${engine}-`));
}

/** `bash scripts/engines.sh start|stop DIR [containerd]`. */
export async function enginesSh(verb: 'start' | 'stop', dir: string, only?: 'containerd'): Promise<void> {
  await ok(['bash', ENGINES_SH, verb, dir, ...(only === undefined ? [] : [only])], { timeoutMs: 240000 });
}

/** "132.3MiB", "138.9MB", "1.5kB", "0B" (docker's binary units, podman's decimal ones) → bytes. */
export function parseSize(text: string): number {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKMGT]?)(i?)B\b/.exec(text);
  if (m === null) throw new Error(`not a size: ${JSON.stringify(text)}`);
  const power = ' KMGT'.indexOf((m[2] ?? '').toUpperCase() || ' ');
  return Math.round(Number(m[1]) * (m[3] === 'i' ? 1024 : 1000) ** power);
}
