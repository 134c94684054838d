import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { GUEST_DIR } from '../../src/config.js';
import { makeDemoBundle } from '../../src/oci/demo.js';

/** The real CLI, as installed by setup (the checkout's bin/run.js on a fresh clone). */
export const CLI = path.resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');

/**
 * The runtime a raw-CLI test drives. `kata` (the default) is this checkout's CLI; `runc` is
 * Debian's runc, the reference, for checking a test itself: `KATA_E2E_RUNTIME=runc` selects it in
 * the test files that support it (they say so at the top and assert runc's behaviour where the
 * two differ on purpose).
 */
export type E2eRuntime = 'kata' | 'runc';

export const RUNC = '/usr/sbin/runc';

export function e2eRuntime(): E2eRuntime {
  const v = process.env['KATA_E2E_RUNTIME'] ?? 'kata';
  if (v !== 'kata' && v !== 'runc') throw new Error(`KATA_E2E_RUNTIME=${v}: must be kata or runc`);
  return v;
}

/** argv of `runtime --root root args...`. */
export function runtimeArgv(runtime: E2eRuntime, root: string, args: string[]): [string, string[]] {
  return runtime === 'runc' ? [RUNC, ['--root', root, ...args]] : [process.execPath, [CLI, '--root', root, ...args]];
}

/**
 * A missing prerequisite fails the suite loudly: e2e tests never skip themselves.
 */
export function requirePrerequisites(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const p of ['/usr/bin/qemu-system-x86_64', '/bin/busybox', `${GUEST_DIR}/vmlinux`, `${GUEST_DIR}/initrd.img`, `${GUEST_DIR}/kernel-version`]) {
    if (!fs.existsSync(p)) missing.push(p);
  }
  if (!fs.existsSync(path.resolve(import.meta.dirname, '..', '..', 'dist', 'src', 'monitor', 'main.js'))) missing.push('dist/ (npm run build)');
  if (missing.length > 0) throw new Error(`e2e prerequisites missing (run the setup command from the README): ${missing.join(', ')}`);
}

export { makeBusyboxRootfs as makeRootfs } from '../../src/oci/demo.js';

export interface TestEnv {
  root: string;
  tmp: string;
  bundle(name: string, args: string[], edit?: (spec: Record<string, unknown>) => void): string;
  cleanup(): void;
}

/**
 * A private --root and temp dir per test file; cleanup() removes both, whatever happened
 * (containers still under the root are force-deleted with `runtime`).
 */
export function testEnv(prefix: string, runtime: E2eRuntime = 'kata'): TestEnv {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `kata-e2e-${prefix}-`));
  const root = path.join(tmp, 'root');
  return {
    root,
    tmp,
    bundle(name, args, edit) {
      return makeDemoBundle(path.join(tmp, name), args, edit);
    },
    cleanup() {
      // Anything still registered under our root is force-deleted first.
      if (fs.existsSync(root)) {
        for (const id of fs.readdirSync(root)) spawnSync(...runtimeArgv(runtime, root, ['delete', '--force', id]), { stdio: 'ignore', timeout: 60000 });
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs the CLI (or `opts.runtime`) to completion. `detached`: the container keeps the stdio it was
 * given (as with runc), so a detached run gets /dev/null and we wait for the CLI's exit, not for EOF.
 */
export function kr(root: string, args: string[], opts: { input?: Buffer | string; timeoutMs?: number; cwd?: string; detached?: boolean; runtime?: E2eRuntime } = {}): Promise<Result> {
  const [file, argv] = runtimeArgv(opts.runtime ?? 'kata', root, args);
  return new Promise((resolve, reject) => {
    if (opts.detached) {
      // stderr goes to a file, not a pipe (the detached container may hold it open): what the CLI
      // said when it failed is kept for the assertion message.
      const errFile = path.join(os.tmpdir(), `kata-e2e-stderr-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`);
      const fd = fs.openSync(errFile, 'w', 0o600);
      const child = spawn(file, argv, { stdio: ['ignore', 'ignore', fd], cwd: opts.cwd ?? process.cwd() });
      fs.closeSync(fd);
      const stderr = (): string => {
        const text = fs.readFileSync(errFile, 'utf8');
        fs.rmSync(errFile, { force: true });
        return text;
      };
      child.on('error', (e) => {
        fs.rmSync(errFile, { force: true });
        reject(e);
      });
      child.on('exit', (code, signal) => resolve({ code, signal, stdout: Buffer.alloc(0), stderr: stderr() }));
      return;
    }
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd ?? process.cwd() });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.runtime === 'runc' ? 'runc' : 'kata-runtime'} ${args.join(' ')} timed out; stderr: ${err}`));
    }, opts.timeoutMs ?? 180000);
    child.on('error', reject);
    // `create` and `run -d` leave the container holding the stdio they were given (as runc does),
    // so EOF may never come: after the CLI exits, wait briefly for its own last output, then stop.
    let closed = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    };
    child.on('close', (code, signal) => {
      closed = true;
      finish(code, signal);
    });
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        if (!closed) finish(code, signal);
      }, 300);
    });
    child.stdin.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Processes whose command line mentions `needle` (QEMU, virtiofsd, monitors of this test's root). */
export function processesMentioning(needle: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      // gone
    }
  }
  return out;
}

/** Mounts whose source or target mentions `needle`, in the host's mount namespace. */
export function mountsMentioning(needle: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(needle));
}

/** Asserts that nothing of a test's containers is left: no process, no mount, no state dir entries. */
export function leftovers(env: TestEnv): string[] {
  const left = [...processesMentioning(env.tmp), ...mountsMentioning(env.tmp)];
  if (fs.existsSync(env.root)) left.push(...fs.readdirSync(env.root).map((d) => `state dir ${d}`));
  return left;
}

/**
 * A command that failed cleanly: exit 1, exactly one line on stderr matching `msg`, exactly one
 * JSON error line in `logFile` (a --log written with --log-format json), nothing of env's
 * containers left behind.
 */
export function expectClean(env: TestEnv, r: Result, msg: RegExp, logFile?: string): void {
  expect(r.code).toBe(1);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(msg);
  if (logFile !== undefined) {
    const log = fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '');
    expect(log).toHaveLength(1);
    const v = JSON.parse(log[0] ?? '') as Record<string, string>;
    expect(v['level']).toBe('error');
    expect(v['msg']).toMatch(msg);
    expect(v['time']).toMatch(/^\d{4}-/);
  }
  expect(leftovers(env)).toEqual([]);
}

/** Polls `state` until the container has `status`; returns the state document. */
export async function waitForStatus(root: string, id: string, status: string, timeoutMs = 60000, runtime?: E2eRuntime): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await kr(root, ['state', id], runtime === undefined ? {} : { runtime });
    if (r.code === 0) {
      const s = JSON.parse(r.stdout.toString()) as Record<string, unknown>;
      if (s['status'] === status) return s;
    }
    if (Date.now() > deadline) throw new Error(`${id} never became ${status}: exit ${r.code ?? r.signal}\nstdout: ${r.stdout.toString().slice(-3000)}\nstderr: ${r.stderr.slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
