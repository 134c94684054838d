// Typed access to native/kata_native.c: what Node cannot do by itself (ptys, SCM_RIGHTS, termios).
// The addon is built by `npm run build` (node-gyp, in native/) to native/build/Release/. This module
// runs both as src/native/index.ts (vitest) and as dist/src/native/index.js, so the addon is found
// by walking up from this file to the directory holding native/binding.gyp, the repository root.
// Loading is lazy: importing this module never fails; the first call does if the addon is missing.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A pseudo-terminal pair; both fds are close-on-exec. `name` is the slave's path, /dev/pts/N. */
export interface Pty {
  master: number;
  slave: number;
  name: string;
}

export interface Winsize {
  rows: number;
  cols: number;
}

/** What one --console-socket style connection carried: the passed fd (close-on-exec) and its data. */
export interface ReceivedFd {
  fd: number;
  data: string;
}

/** Errors thrown by the addon: `code` is the errno name (ENOENT, ECONNREFUSED, ETIMEDOUT...). */
export type NativeError = Error & { code: string };

/** SO_PEERCRED: who is at the other end of a connected unix socket. */
export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

interface Binding {
  openPty(): Pty;
  sendFd(socketPath: string, fd: number, data: string): void;
  listenUnix(socketPath: string): number;
  recvFd(listenFd: number, timeoutMs: number): Promise<ReceivedFd>;
  recvFdFromListener(socketPath: string, timeoutMs: number): Promise<ReceivedFd>;
  getWinsize(fd: number): Winsize;
  setWinsize(fd: number, rows: number, cols: number): void;
  setRaw(fd: number): void;
  exitNow(code: number): never;
  dieOfSignal(signal: number): never;
  tryLock(fd: number): boolean;
  peerCred(fd: number): PeerCred;
}

const FUNCTIONS: readonly (keyof Binding)[] = [
  'openPty',
  'sendFd',
  'listenUnix',
  'recvFd',
  'recvFdFromListener',
  'getWinsize',
  'setWinsize',
  'setRaw',
  'exitNow',
  'dieOfSignal',
  'tryLock',
  'peerCred',
];

const ADDON = path.join('native', 'build', 'Release', 'kata_native.node');

/** The repository (or package) root: the nearest ancestor of this file with native/binding.gyp. */
function findRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'native', 'binding.gyp'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Where the addon is expected, whether or not it has been built. */
export function nativeAddonPath(): string {
  const root = findRoot() ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  return path.join(root, ADDON);
}

let binding: Binding | undefined;

function notBuilt(detail: string): NativeError {
  const err = new Error(`native addon not built: run npm run build (${detail})`) as NativeError;
  err.code = 'ERR_NATIVE_NOT_BUILT';
  return err;
}

function isBinding(mod: unknown): mod is Binding {
  if (typeof mod !== 'object' || mod === null) return false;
  const rec = mod as Record<string, unknown>;
  return FUNCTIONS.every((f) => typeof rec[f] === 'function');
}

function load(): Binding {
  if (binding !== undefined) return binding;
  const file = nativeAddonPath();
  if (!fs.existsSync(file)) throw notBuilt(`${file} is missing`);
  const require = createRequire(import.meta.url);
  const mod: unknown = require(file);
  if (!isBinding(mod)) throw notBuilt(`${file} lacks some of ${FUNCTIONS.join(', ')}; rebuild it`);
  binding = mod;
  return binding;
}

/** True when the addon is built and loads. */
export function nativeAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

/** A new pty pair (posix_openpt + grantpt + unlockpt; the slave via TIOCGPTPEER or ptsname). */
export function openPty(): Pty {
  return load().openPty();
}

/**
 * runc's --console-socket protocol: connect to the SOCK_STREAM unix socket at socketPath, send one
 * message whose bytes are `data` (the pty name) carrying `fd` by SCM_RIGHTS, then close. Blocking.
 * Paths longer than sun_path (108 bytes) work: the parent directory is opened and the socket is
 * reached as /proc/self/fd/<dirfd>/<basename>. `data` must not be empty (the fd rides on its
 * first byte).
 */
export function sendFd(socketPath: string, fd: number, data: string): void {
  load().sendFd(socketPath, fd, data);
}

/** A bound, listening SOCK_STREAM unix socket (close-on-exec); long paths as in sendFd. */
export function listenUnix(socketPath: string): number {
  return load().listenUnix(socketPath);
}

/**
 * Accepts one connection on listenFd (off the main thread), reads until the sender closes and
 * resolves with the one fd it passed and its data. Rejects with code ETIMEDOUT after timeoutMs
 * (Infinity: no limit), EBADMSG when the sender passed no fd or more than one. listenFd stays open.
 */
export function recvFd(listenFd: number, timeoutMs: number): Promise<ReceivedFd> {
  return load().recvFd(listenFd, timeoutMs);
}

/**
 * The console-socket receiver (what conmon or containerd's shim does), for tests: binds and listens
 * on socketPath before returning (so throws synchronously for bind errors, and a sender started
 * after the call can connect), then as recvFd; the listener is closed and the socket file removed
 * once the promise settles.
 */
export function recvFdFromListener(socketPath: string, timeoutMs: number): Promise<ReceivedFd> {
  return load().recvFdFromListener(socketPath, timeoutMs);
}

/** TIOCGWINSZ. */
export function getWinsize(fd: number): Winsize {
  return load().getWinsize(fd);
}

/** TIOCSWINSZ (pixel sizes set to 0, as runc does). */
export function setWinsize(fd: number, rows: number, cols: number): void {
  load().setWinsize(fd, rows, cols);
}

/** cfmakeraw + tcsetattr(TCSANOW): the terminal passes bytes unchanged (no echo, no line discipline). */
export function setRaw(fd: number): void {
  load().setRaw(fd);
}

/**
 * _exit(code) at once, without libuv's shutdown (which joins the thread pool and so hangs while a
 * pool thread is blocked reading a caller's stdin). Write everything synchronously first.
 */
export function exitNow(code: number): never {
  return load().exitNow(code);
}

/**
 * Ends the process by `signal` with its default action (restored first: Node ignores SIGPIPE), as
 * Go's runtime does on EPIPE writing to fd 1 or 2. Write everything that must survive first.
 */
export function dieOfSignal(signal: number): never {
  return load().dieOfSignal(signal);
}

/**
 * flock(fd, LOCK_EX | LOCK_NB): true if taken, false if another open file description holds it.
 * Never blocks; released by the kernel when the fd's open file description is closed, including
 * when its process dies.
 */
export function tryLock(fd: number): boolean {
  return load().tryLock(fd);
}

/** SO_PEERCRED of a connected unix socket (fd). */
export function peerCred(fd: number): PeerCred {
  return load().peerCred(fd);
}
