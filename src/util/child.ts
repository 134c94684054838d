import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { errnoCode, KataError } from '../errors.js';
import { sleep } from './fsx.js';

export interface Supervised {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly hasExited: () => boolean;
  /** SIGKILL and wait until the process is gone. */
  kill(): Promise<void>;
}

/**
 * Starts a helper (QEMU, virtiofsd) that must never outlive the monitor: `setpriv --pdeathsig
 * SIGKILL` makes the kernel kill it when the monitor's thread that spawned it dies, even by
 * SIGKILL. It runs in its own session (terminal signals aimed at the caller don't reach it) and
 * inherits none of the caller's fds: its output goes to a log file.
 */
export function spawnSupervised(file: string, args: readonly string[], logFile: string, cwd?: string, passFds: readonly number[] = []): Supervised {
  const log = fs.openSync(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', file, ...args], {
      detached: true,
      stdio: ['ignore', log, log, ...passFds], // passFds become the child's 3, 4, ...
      ...(cwd === undefined ? {} : { cwd }),
    });
  } finally {
    fs.closeSync(log);
  }
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.on('error', () => {
      done = true;
      resolve({ code: 127, signal: null });
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new KataError('E_VM', `cannot start ${file}`);
  return {
    pid,
    exited,
    hasExited: () => done,
    async kill() {
      if (!done) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
    },
  };
}

/** Waits for a path to exist, failing early if `dead()` says the process that makes it is gone. */
export async function waitForPath(p: string, what: string, timeoutMs: number, dead: () => boolean, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    if (fs.existsSync(p)) return;
    if (dead()) throw new KataError('E_VM', `${what} exited before creating ${p}`);
    if (signal?.aborted) throw new KataError('E_TIMEOUT', `${what}: aborted`);
    if (Date.now() > deadline) throw new KataError('E_TIMEOUT', `${what} did not create ${p} within ${timeoutMs} ms`);
    await sleep(delay);
  }
}

/**
 * Connects to a unix socket that a child process is creating. Its path appears at bind(2), before
 * listen(2): a connect in between is refused (ECONNREFUSED), and a path seen by waitForPath is no
 * promise that it is listening. So refused (or not-yet-there, ENOENT) connects are retried, with
 * the same back-off as waitForPath, until `timeoutMs`, failing early if `dead()`.
 */
export async function connectUnix(p: string, what: string, timeoutMs: number, dead: () => boolean, signal?: AbortSignal): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.createConnection(p);
        s.once('connect', () => {
          s.removeListener('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (e) {
      const code = errnoCode(e);
      if (code !== 'ECONNREFUSED' && code !== 'ENOENT') throw e;
      if (dead()) throw new KataError('E_VM', `${what} exited before listening on ${p}`);
      if (signal?.aborted) throw new KataError('E_TIMEOUT', `${what}: aborted`);
      if (Date.now() > deadline) throw new KataError('E_TIMEOUT', `${what} did not listen on ${p} within ${timeoutMs} ms`, { cause: e });
      await sleep(delay);
    }
  }
}

/**
 * Waits until a unix socket bound under one of `names` (as passed to bind(2): relative names stay
 * relative) is listening, from /proc/net/unix (flag __SO_ACCEPTCON), without connecting: for a
 * server that takes a single client (virtiofsd), whose one connection must be QEMU's. The name
 * must be unique in the network namespace (virtiofsd's carries a hash of its directory).
 */
export async function waitForListening(names: readonly string[], what: string, timeoutMs: number, dead: () => boolean, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    if (listeningUnixPaths().some((p) => names.includes(p))) return;
    if (dead()) throw new KataError('E_VM', `${what} exited before listening on ${names[0] ?? ''}`);
    if (signal?.aborted) throw new KataError('E_TIMEOUT', `${what}: aborted`);
    if (Date.now() > deadline) throw new KataError('E_TIMEOUT', `${what} did not listen on ${names[0] ?? ''} within ${timeoutMs} ms`);
    await sleep(delay);
  }
}

/** Paths of the listening unix sockets of this network namespace (/proc/net/unix). */
export function listeningUnixPaths(): string[] {
  const SO_ACCEPTCON = 0x10000;
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode [Path]
    const f = line.trim().split(/\s+/);
    const p = f[7];
    if (p !== undefined && (Number.parseInt(f[3] ?? '0', 16) & SO_ACCEPTCON) !== 0) out.push(p);
  }
  return out;
}

/** Last non-empty lines of a log, to quote in an error message. */
export function tail(file: string, lines = 3): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').slice(-lines).join(' | ');
  } catch {
    return '';
  }
}
