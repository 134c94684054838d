import type net from 'node:net';
import { encodeFrame, FrameDecoder, MAX_PAYLOAD, type Frame } from '../channel/frame.js';
import { KataError } from '../errors.js';
import { isRecord } from '../util/json.js';

/**
 * The streaming part of an `exec` call on the monitor's control socket, after the response line:
 * the frames of docs/protocol.md (DATA, CLOSE, MSG; no HELLO, no CREDIT: the unix socket's own
 * backpressure bounds memory, because each side stops reading while it cannot pass data on).
 *
 *   stream 1  stdin   client → monitor        MSG client → monitor: {"resize":{rows,cols}} | {"signal":N}
 *   stream 2  stdout  monitor → client        MSG monitor → client: {"exit":{"code":N|null,"signal":N|null}}
 *   stream 3  stderr  monitor → client
 */
export const EXEC_STDIN = 1;
export const EXEC_STDOUT = 2;
export const EXEC_STDERR = 3;

export type ExecClientMsg = { resize: { rows: number; cols: number } } | { signal: number };
export interface ExecExit {
  code: number | null;
  signal: number | null;
}

/** Frames over a socket: send() resolves once the kernel took the bytes; handlers run one at a time. */
export class FramedSocket {
  private readonly decoder = new FrameDecoder();
  private queue: Promise<void> = Promise.resolve();
  private closedFlag = false;
  readonly closed: Promise<void>;

  constructor(
    private readonly sock: net.Socket,
    rest: Buffer,
    onFrame: (f: Frame) => Promise<void> | void,
    onError: (e: Error) => void,
  ) {
    // Closed means: the peer is gone AND every frame it sent has been handled (an exit status
    // queued behind a slow stdout write must still be seen by whoever awaits this).
    this.closed = new Promise((resolve) =>
      sock.once('close', () => {
        this.closedFlag = true;
        const drained = (): void => {
          const q = this.queue;
          void q.then(() => (q === this.queue ? resolve() : drained()));
        };
        drained();
      }),
    );
    const feed = (chunk: Buffer): void => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (e) {
        sock.destroy();
        onError(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      if (frames.length === 0) return;
      // Stop reading until every handler of this chunk has finished: backpressure.
      sock.pause();
      this.queue = this.queue
        .then(async () => {
          for (const f of frames) await onFrame(f);
        })
        .catch((e: unknown) => {
          sock.destroy();
          onError(e instanceof Error ? e : new Error(String(e)));
        })
        .finally(() => {
          if (!this.closedFlag) sock.resume();
        });
    };
    sock.on('data', feed);
    if (rest.length > 0) feed(rest);
    sock.resume();
  }

  get isClosed(): boolean {
    return this.closedFlag || this.sock.destroyed;
  }

  send(frame: Frame): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    return new Promise((resolve) => {
      this.sock.write(encodeFrame(frame), () => resolve());
    });
  }

  async sendData(stream: number, data: Buffer): Promise<void> {
    for (let off = 0; off < data.length; off += MAX_PAYLOAD) {
      await this.send({ type: 'DATA', stream, payload: data.subarray(off, off + MAX_PAYLOAD) });
    }
  }

  sendMsg(msg: unknown): Promise<void> {
    return this.send({ type: 'MSG', stream: 0, payload: Buffer.from(JSON.stringify(msg)) });
  }

  end(): void {
    this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }
}


function smallInt(v: unknown, min: number, max: number): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : null;
}

/** The JSON object in a MSG payload, or undefined. */
function record(payload: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(payload.toString('utf8'));
    return isRecord(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export function decodeClientMsg(payload: Buffer): ExecClientMsg {
  const v = record(payload);
  if (v !== undefined && isRecord(v['resize'])) {
    const rows = smallInt(v['resize']['rows'], 0, 65535);
    const cols = smallInt(v['resize']['cols'], 0, 65535);
    if (rows !== null && cols !== null) return { resize: { rows, cols } };
  }
  const s = smallInt(v?.['signal'], 1, 64);
  if (s !== null) return { signal: s };
  throw new KataError('E_PROTOCOL', 'exec client sent a bad message');
}

export function decodeExit(payload: Buffer): ExecExit {
  const v = record(payload);
  if (v !== undefined && isRecord(v['exit'])) {
    const code = smallInt(v['exit']['code'], 0, 255);
    const signal = smallInt(v['exit']['signal'], 1, 64);
    if ((code === null) !== (signal === null)) return { code, signal };
  }
  throw new KataError('E_MONITOR', 'the monitor sent a bad exec message');
}
