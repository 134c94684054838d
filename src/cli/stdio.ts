/**
 * The CLI's own stdout and stderr, made safe for whatever the caller gave us as fds 1 and 2.
 *
 * Callers hand runtimes odd stdio: containerd's CRI path runs `create` with fds 0-2 on /dev/null
 * opened read-only, a shell pipeline may close its reader before we write, a supervisor may start
 * us with fds 0-2 closed. runc (Go) writes with plain write(2) and:
 *  - on EPIPE to fd 1 or 2 dies of SIGPIPE (Go's runtime raises it, whether or not the caller
 *    ignored SIGPIPE);
 *  - on any other error (EBADF on a read-only fd...) either ignores it (what it prints with
 *    fmt.Print: `state`, `ps`, `list -q`, help, version) or fails the verb with
 *    `write /dev/stdout: bad file descriptor` (what goes through json.Encoder or tabwriter:
 *    `list`, `ps -f json`, `features`; `events` logs it and goes on).
 * Node would instead throw from a synchronous stream or emit an unhandled 'error' later, and a
 * verb that printed nothing (create) could still die in oclif's final flush.
 *
 * installStdio() replaces process.stdout and process.stderr (when they are not terminals) with
 * synchronous writers that follow Go's rule for EPIPE and swallow other errors; verbs print their
 * output with writeOut(), which says per call whether an error fails the verb, as runc's does.
 * Closed fds 0-2 need nothing here: Node opens /dev/null on them before any JavaScript runs (as
 * Go programs effectively get from their parent), so neither we nor the monitor and QEMU, which
 * inherit them, ever use some other file as stdio.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Writable } from 'node:stream';
import tty from 'node:tty';
import { KataError, errnoCode } from '../errors.js';
import { dieOfSignal } from '../native/index.js';

/** write(2) until all of `data` is written; EAGAIN (a caller's non-blocking pipe) waits and retries. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += fs.writeSync(fd, data, off, data.length - off);
    } catch (e) {
      if (errnoCode(e) !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
  }
}

/** Go's end for a write to a broken stdout/stderr pipe: death by SIGPIPE (exit 141 without the addon). */
function brokenPipe(): never {
  const sig = os.constants.signals.SIGPIPE;
  try {
    dieOfSignal(sig);
  } catch {
    // the native addon is not built: the nearest a shell can tell apart
  }
  process.exit(128 + sig);
}

/** Writes to fd 1 or 2 as Go does: EPIPE ends the process by SIGPIPE; other errors are thrown. */
function writeStdio(fd: 1 | 2, data: Uint8Array): void {
  try {
    writeAllSync(fd, data);
  } catch (e) {
    if (errnoCode(e) === 'EPIPE') brokenPipe();
    throw e;
  }
}

/** `write /dev/stdout: bad file descriptor`: Go's wording, which runc prints and logs. */
export function stdoutError(e: unknown): KataError {
  const m = e instanceof Error ? /^[A-Z0-9]+: (.*?), write$/.exec(e.message) : null;
  const why = m?.[1] ?? (e instanceof Error ? e.message : String(e));
  return new KataError('E_IO', `write /dev/stdout: ${why}`, { cause: e });
}

/**
 * Prints a verb's output on stdout. `mayFail`: an error other than EPIPE fails the verb (thrown as
 * E_IO, one line); otherwise it is ignored, as runc ignores it for that output.
 */
export function writeOut(text: string, mayFail: boolean): void {
  try {
    writeStdio(1, Buffer.from(text, 'utf8'));
  } catch (e) {
    if (mayFail) throw stdoutError(e);
  }
}

/** A synchronous stand-in for process.stdout/stderr on a non-terminal fd. */
function stdioStream(fd: 1 | 2): Writable {
  const w = new Writable({
    decodeStrings: true,
    write(chunk: Buffer, _enc, cb) {
      try {
        writeStdio(fd, chunk);
      } catch {
        // A read-only or otherwise unwritable fd: the output is lost, as runc's is.
      }
      cb();
    },
  });
  return Object.assign(w, { fd, isTTY: false });
}

/** Replaces process.stdout and process.stderr by synchronous, failure-proof writers (terminals keep Node's). */
export function installStdio(): void {
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]] as const) {
    if (tty.isatty(fd)) continue;
    const stream = stdioStream(fd);
    Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => stream });
  }
}
