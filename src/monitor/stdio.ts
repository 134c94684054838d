import fs from 'node:fs';
import { errnoCode } from '../errors.js';
import { sleep } from '../util/fsx.js';
import type { StreamSink } from '../channel/connection.js';

/**
 * Writes to an inherited fd with fs.write (libuv's thread pool): it works for pipes, files, ttys
 * and sockets alike, never changes the fd's O_NONBLOCK flag (which the caller shares), and a slow
 * reader blocks only a pool thread, not the monitor's event loop.
 */
export class FdSink implements StreamSink {
  private dead = false;
  constructor(private readonly fd: number) {}

  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length && !this.dead) {
      try {
        off += await new Promise<number>((resolve, reject) =>
          fs.write(this.fd, data, off, data.length - off, null, (err, n) => (err ? reject(err) : resolve(n))),
        );
      } catch (e) {
        if (errnoCode(e) === 'EAGAIN') {
          await sleep(5);
          continue;
        }
        this.dead = true; // EPIPE, EBADF: the reader is gone; drop the rest as a closed pipe would
        throw e;
      }
    }
  }

  end(): void {
    // The fd is the caller's; it is closed when the monitor exits.
  }
}

/** Reads an inherited fd until EOF, passing chunks on (awaiting each: backpressure). */
export async function pumpFd(fd: number, onData: (b: Buffer) => Promise<void>, signal: AbortSignal): Promise<void> {
  const buf = Buffer.allocUnsafe(65536);
  while (!signal.aborted) {
    let n: number;
    try {
      n = await new Promise<number>((resolve, reject) => fs.read(fd, buf, 0, buf.length, null, (err, got) => (err ? reject(err) : resolve(got))));
    } catch (e) {
      if (errnoCode(e) === 'EAGAIN') {
        await sleep(10, signal);
        continue;
      }
      return; // EBADF, EIO...: treat as end of input
    }
    if (n === 0) return;
    await onData(Buffer.from(buf.subarray(0, n)));
  }
}
