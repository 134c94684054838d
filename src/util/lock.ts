import fs from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { tryLock } from '../native/index.js';
import { sleep } from './fsx.js';

/** Why a lock could not be taken: the file's directory is gone, or the holder kept it too long. */
export type LockFailure = { kind: 'missing' } | { kind: 'timeout'; holder: number | undefined };

/**
 * An exclusive lock on `file`: flock(2) on an fd of our own (created 0600, close-on-exec).
 *
 * The kernel owns the lock, so a holder that dies — even by SIGKILL — releases it, and there is
 * no "stale lock" to judge or remove: no waiter can ever delete a lock another process holds.
 * The file is never unlinked by the lock itself (unlinking is what makes pid-file locks racy); the
 * directory holding it may be removed by the holder (`delete`), so after taking the lock we check
 * that the file we locked is still the one at `file`: if it went away, or was replaced, a waiter
 * retries or reports the directory missing, and never works under a lock nobody else can see.
 *
 * After taking it the holder writes its pid into the file, for the timeout message only.
 * Polls every 10 ms until `timeoutMs` passes (flock itself never blocks the event loop).
 * Returns the fd to pass to unlock(); throws what `fail` makes of a failure.
 */
export async function lock(file: string, timeoutMs: number, fail: (f: LockFailure) => Error): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let fd: number;
    try {
      // libuv opens every file O_CLOEXEC: hooks and other children never inherit the lock.
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw fail({ kind: 'missing' });
      throw e;
    }
    try {
      while (!tryLock(fd)) {
        if (Date.now() > deadline) throw fail({ kind: 'timeout', holder: holderOf(fd) });
        await sleep(10);
      }
      const held = fs.fstatSync(fd);
      let now: fs.Stats | undefined;
      try {
        now = fs.statSync(file);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
      }
      if (now === undefined && !fs.existsSync(path.dirname(file))) throw fail({ kind: 'missing' });
      if (now !== undefined && now.ino === held.ino && now.dev === held.dev) {
        fs.ftruncateSync(fd, 0);
        fs.writeSync(fd, `${process.pid}\n`, 0);
        return fd;
      }
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    // The file was removed or replaced while we waited: lock the one that is there now.
    fs.closeSync(fd);
  }
}

/** Releases a lock taken with lock(): the pid goes, then closing the fd drops the flock. */
export function unlock(fd: number): void {
  try {
    fs.ftruncateSync(fd, 0);
  } catch {
    // the file's directory may be gone (delete): nothing to clear
  }
  fs.closeSync(fd);
}

/** The pid a holder wrote into the lock file, if it has written one. */
function holderOf(fd: number): number | undefined {
  const buf = Buffer.alloc(32);
  try {
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const pid = Number(buf.subarray(0, n).toString('utf8').trim().split(/\s/)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

