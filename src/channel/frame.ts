import { KataError } from '../errors.js';

/** Wire format: docs/protocol.md. */
export const PROTOCOL_VERSION = 1;
export const MAX_PAYLOAD = 65536;
export const HEADER_SIZE = 9;
export const DEFAULT_WINDOW = 262144;

export const FRAME_TYPES = { HELLO: 1, MSG: 2, DATA: 3, CLOSE: 4, CREDIT: 5 } as const;
export type FrameTypeName = keyof typeof FRAME_TYPES;

export interface Frame {
  type: FrameTypeName;
  stream: number;
  payload: Buffer;
}

const NAME_BY_NUMBER = new Map<number, FrameTypeName>(
  Object.entries(FRAME_TYPES).map(([name, n]) => [n, name as FrameTypeName]),
);

function protocolError(msg: string): KataError {
  return new KataError('E_PROTOCOL', `agent protocol error: ${msg}`);
}

/** Checks the per-type rules of docs/protocol.md; throws E_PROTOCOL on a violation. */
export function checkFrame(type: FrameTypeName, stream: number, payload: Buffer): void {
  switch (type) {
    case 'HELLO':
    case 'MSG':
      if (stream !== 0) throw protocolError(`${type} frame on stream ${stream}`);
      return;
    case 'DATA':
      if (stream === 0) throw protocolError('DATA frame on stream 0');
      if (payload.length === 0) throw protocolError('empty DATA frame');
      return;
    case 'CLOSE':
      if (stream === 0) throw protocolError('CLOSE frame on stream 0');
      if (payload.length !== 0) throw protocolError('CLOSE frame with a payload');
      return;
    case 'CREDIT':
      if (stream === 0) throw protocolError('CREDIT frame on stream 0');
      if (payload.length !== 4) throw protocolError(`CREDIT payload of ${payload.length} bytes`);
      if (payload.readUInt32BE(0) === 0) throw protocolError('CREDIT of 0 bytes');
      return;
  }
}

export function encodeFrame(frame: Frame): Buffer {
  if (frame.payload.length > MAX_PAYLOAD) throw protocolError(`payload of ${frame.payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  checkFrame(frame.type, frame.stream, frame.payload);
  const out = Buffer.allocUnsafe(HEADER_SIZE + frame.payload.length);
  out.writeUInt32BE(5 + frame.payload.length, 0);
  out.writeUInt8(FRAME_TYPES[frame.type], 4);
  out.writeUInt32BE(frame.stream >>> 0, 5);
  frame.payload.copy(out, HEADER_SIZE);
  return out;
}

export function creditPayload(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/**
 * Incremental decoder. Feed it chunks as they arrive; it returns the complete frames and keeps the
 * rest. A length outside the limits is rejected from the header alone, before any payload is kept.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failure: KataError | undefined;

  /**
   * Returns the frames completed by `chunk`. A protocol error is thrown once no frame decoded
   * before it is left to return: frames that came ahead of garbage in the same chunk (an exit
   * event, say) are still delivered, and the error is thrown by the next call (see `error`).
   */
  push(chunk: Buffer): Frame[] {
    if (this.failure !== undefined) throw this.failure;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    try {
      this.decodeInto(frames);
    } catch (e) {
      this.failure = e instanceof KataError ? e : protocolError(String(e));
      this.chunks = [];
      this.buffered = 0;
      if (frames.length === 0) throw this.failure;
    }
    return frames;
  }

  /** The protocol error met after the frames last returned, if any. */
  get error(): KataError | undefined {
    return this.failure;
  }

  private decodeInto(frames: Frame[]): void {
    for (;;) {
      if (this.buffered < 4) break;
      const head = this.peek(Math.min(this.buffered, HEADER_SIZE));
      const len = head.readUInt32BE(0);
      if (len < 5 || len > 5 + MAX_PAYLOAD) throw protocolError(`frame length ${len} out of range`);
      if (this.buffered < 4 + len) break;
      const whole = this.take(4 + len);
      const typeNumber = whole.readUInt8(4);
      const type = NAME_BY_NUMBER.get(typeNumber);
      if (type === undefined) throw protocolError(`unknown frame type ${typeNumber}`);
      const stream = whole.readUInt32BE(5);
      const payload = whole.subarray(HEADER_SIZE);
      checkFrame(type, stream, payload);
      frames.push({ type, stream, payload });
    }
  }

  /** Bytes received but not yet part of a complete frame. */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = Buffer.from(first.subarray(0, n));
    const rest = first.subarray(n);
    this.chunks.shift();
    if (rest.length > 0) this.chunks.unshift(rest);
    this.buffered -= n;
    return out;
  }
}
