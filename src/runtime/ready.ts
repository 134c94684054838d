import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { KataError } from '../errors.js';
import type { ReadyReport } from '../monitor/launch.js';

/**
 * The CLI's end of a detached child's ready pipe (fd 3: a socket pair, so it runs both ways): the
 * child reports JSON lines, the CLI may answer (`go`). EOF without a report means the child died.
 */
export class ReadyPipe {
  private buf = '';
  private ended = false;
  private waiter: ((r: ReadyReport | KataError) => void) | undefined;
  private readonly pipe: Duplex;

  /** dir: the container's state directory, where the monitor's log is. */
  constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    const pipe = child.stdio[3] as Duplex | null | undefined;
    if (!pipe) throw new KataError('E_INTERNAL', 'no ready pipe');
    this.pipe = pipe;
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => {
      this.buf += d;
      this.deliver();
    });
    pipe.on('end', () => {
      this.ended = true;
      this.deliver();
    });
    pipe.on('error', () => {
      this.ended = true;
      this.deliver();
    });
  }

  private deliver(): void {
    const w = this.waiter;
    if (w === undefined) return;
    const nl = this.buf.indexOf('\n');
    if (nl >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.waiter = undefined;
      w(parseReport(line));
    } else if (this.ended) {
      this.waiter = undefined;
      void this.death().then((e) => w(e));
    }
  }

  /**
   * Why the child ended without a report: its exit status (the pipe's EOF comes before the exit
   * event, so wait for it briefly) and the last line of its log. Not the log's path: a failed
   * create removes the directory it is in.
   */
  private async death(): Promise<KataError> {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const how = c.signalCode !== null ? `killed by ${c.signalCode}` : c.exitCode !== null ? `exit code ${c.exitCode}` : 'still running, its pipe closed';
    let last = '';
    try {
      last = fs.readFileSync(path.join(this.dir, 'monitor.log'), 'utf8').trim().split('\n').at(-1) ?? '';
    } catch {
      // no log yet
    }
    return new KataError('E_MONITOR', `the monitor died during create (${how})${last === '' ? '' : `; its last log line: ${last.slice(0, 300)}`}`);
  }

  /** The next report line; E_TIMEOUT after timeoutMs. */
  next(timeoutMs: number, what: string): Promise<ReadyReport> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new KataError('E_TIMEOUT', `${what} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiter = (r) => {
        clearTimeout(timer);
        if (r instanceof KataError) reject(r);
        else resolve(r);
      };
      this.deliver();
    });
  }

  send(line: string): void {
    this.pipe.write(line + '\n');
  }

  /** Stops listening; the child lives on without us (unref'd). */
  close(): void {
    this.pipe.removeAllListeners('data');
    this.pipe.destroy();
    this.child.unref();
  }
}

function parseReport(line: string): ReadyReport | KataError {
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v === 'object' && v !== null && 'ok' in v) return v as ReadyReport;
  } catch {
    // fall through
  }
  return new KataError('E_MONITOR', 'bad report from the monitor');
}

/** One report, then close: the exec helper's protocol. */
export async function readReady(child: ChildProcess, dir: string, timeoutMs: number, what: string): Promise<ReadyReport> {
  const p = new ReadyPipe(child, dir);
  try {
    return await p.next(timeoutMs, what);
  } finally {
    p.close();
  }
}
