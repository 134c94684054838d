import type { Duplex } from 'node:stream';
import { KataError } from '../errors.js';
import { DEFAULT_WINDOW, FrameDecoder, MAX_PAYLOAD, PROTOCOL_VERSION, creditPayload, encodeFrame, type Frame } from './frame.js';
import { decodeGuestMessage, decodeHello, type AgentEvent, type AgentRequest, type Hello } from './messages.js';
import { runcStartError } from './crun-text.js';

/** Where inbound stream bytes go. `write` resolves once the bytes reached their consumer. */
export interface StreamSink {
  write(data: Buffer): Promise<void>;
  end(): void;
}

interface InboundStream {
  sink: StreamSink;
  /** Bytes the peer may still send before we grant more. */
  allowance: number;
  /** Received, not yet handed to the sink, oldest first; `tail` (if any) comes after them. */
  parts: Buffer[];
  /** Small payloads are copied into one buffer, so the backlog costs its bytes, not per frame. */
  tail: { buf: Buffer; used: number } | undefined;
  /** The loop handing parts to the sink, while there are any. */
  pump: Promise<void> | undefined;
  /** The peer sent CLOSE. */
  closed: boolean;
  /** sink.end() was called. */
  ended: boolean;
}

/**
 * While the sink is busy, payloads below this size are coalesced into a shared buffer of MAX_PAYLOAD bytes. Without it a
 * guest sending one-byte DATA frames to a stalled reader made the host keep one Buffer and one
 * promise per byte of the window (~80 MB for 256 KiB), not the window's 256 KiB.
 */
const SMALL_PAYLOAD = 4096;

interface OutboundStream {
  credit: number;
  waiters: (() => void)[];
  closed: boolean;
}

interface Pending {
  resolve: (ok: Record<string, unknown>) => void;
  reject: (e: KataError) => void;
  timer: NodeJS.Timeout;
  op: string;
}

export interface ConnectionOptions {
  /** Deadline for the peer's HELLO, in ms. */
  helloTimeoutMs?: number;
  onEvent?: (event: AgentEvent) => void;
  /** Called once when the connection fails or ends; not called after close(). */
  onFailure?: (e: KataError) => void;
}

/**
 * The host end of the agent channel: handshake, request/response matched by id, events, and
 * flow-controlled streams (docs/protocol.md). Knows nothing about containers.
 */
export class AgentConnection {
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private readonly inbound = new Map<number, InboundStream>();
  private readonly outbound = new Map<number, OutboundStream>();
  private nextId = 1;
  private nextStream = 1;
  private peerHello: Hello | undefined;
  private helloWaiter: { resolve: (h: Hello) => void; reject: (e: KataError) => void } | undefined;
  private failure: KataError | undefined;
  private closing = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly io: Duplex,
    private readonly options: ConnectionOptions = {},
  ) {
    io.on('data', (chunk: Buffer) => this.onData(chunk));
    io.on('drain', () => {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    });
    io.on('error', (e: Error) => this.fail(new KataError('E_AGENT', `agent channel: ${e.message}`)));
    io.on('close', () => this.fail(new KataError('E_AGENT', 'agent channel closed')));
  }

  /** Sends our HELLO and waits for the agent's. */
  async handshake(): Promise<Hello> {
    const hello = Buffer.from(JSON.stringify({ version: PROTOCOL_VERSION, maxPayload: MAX_PAYLOAD, window: DEFAULT_WINDOW }));
    const got = new Promise<Hello>((resolve, reject) => {
      this.helloWaiter = { resolve, reject };
    });
    const timeout = this.options.helloTimeoutMs ?? 30000;
    const timer = setTimeout(() => this.fail(new KataError('E_TIMEOUT', `agent did not answer the handshake within ${timeout} ms`)), timeout);
    try {
      this.send({ type: 'HELLO', stream: 0, payload: hello });
      const peer = await got;
      if (peer.version !== PROTOCOL_VERSION) {
        throw new KataError('E_AGENT', `agent protocol version mismatch (host ${PROTOCOL_VERSION}, agent ${peer.version})`);
      }
      return peer;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a request; resolves with the `ok` object, rejects with E_AGENT carrying the wire code. */
  request(req: AgentRequest, timeoutMs = 60000): Promise<Record<string, unknown>> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new KataError('E_TIMEOUT', `agent did not answer ${req.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, op: req.op });
      this.send({ type: 'MSG', stream: 0, payload: Buffer.from(JSON.stringify({ kind: 'req', id, req })) });
    });
  }

  /** Allocates a stream id for guest → host data delivered to `sink`. */
  openInbound(sink: StreamSink): number {
    const id = this.nextStream++;
    this.inbound.set(id, { sink, allowance: DEFAULT_WINDOW, parts: [], tail: undefined, pump: undefined, closed: false, ended: false });
    return id;
  }

  /** Allocates a stream id for host → guest data (see write/closeStream). */
  openOutbound(): number {
    const id = this.nextStream++;
    this.outbound.set(id, { credit: this.peerHello?.window ?? 0, waiters: [], closed: false });
    return id;
  }

  /** Writes data to an outbound stream, respecting the peer's window; resolves when all is sent. */
  async write(stream: number, data: Buffer): Promise<void> {
    const s = this.outbound.get(stream);
    if (s === undefined) throw new KataError('E_INTERNAL', `unknown outbound stream ${stream}`);
    let off = 0;
    while (off < data.length) {
      if (this.failure) throw this.failure;
      if (s.closed) return;
      if (s.credit <= 0) {
        await new Promise<void>((r) => s.waiters.push(r));
        continue;
      }
      const n = Math.min(s.credit, MAX_PAYLOAD, data.length - off);
      s.credit -= n;
      const ok = this.send({ type: 'DATA', stream, payload: data.subarray(off, off + n) });
      off += n;
      if (!ok) await new Promise<void>((r) => this.drainWaiters.push(r));
    }
  }

  closeStream(stream: number): void {
    const s = this.outbound.get(stream);
    if (s === undefined || s.closed) return;
    s.closed = true;
    for (const w of s.waiters.splice(0)) w();
    if (!this.failure) this.send({ type: 'CLOSE', stream, payload: Buffer.alloc(0) });
  }

  /** Closes the transport; pending requests fail. */
  close(): void {
    this.closing = true;
    this.fail(new KataError('E_AGENT', 'agent channel closed by the host'));
    this.io.destroy();
  }

  get failed(): KataError | undefined {
    return this.failure;
  }

  private send(frame: Frame): boolean {
    if (this.io.destroyed) return false;
    return this.io.write(encodeFrame(frame));
  }

  private onData(chunk: Buffer): void {
    if (this.failure) return;
    try {
      for (const f of this.decoder.push(chunk)) this.onFrame(f);
      if (this.decoder.error !== undefined) throw this.decoder.error;
    } catch (e) {
      this.fail(e instanceof KataError ? e : new KataError('E_PROTOCOL', String(e)));
      this.io.destroy();
    }
  }

  private onFrame(f: Frame): void {
    if (this.peerHello === undefined && f.type !== 'HELLO') {
      throw new KataError('E_PROTOCOL', `agent protocol error: ${f.type} before HELLO`);
    }
    switch (f.type) {
      case 'HELLO': {
        if (this.peerHello !== undefined) throw new KataError('E_PROTOCOL', 'agent protocol error: second HELLO');
        const h = decodeHello(f.payload);
        this.peerHello = h;
        for (const s of this.outbound.values()) s.credit = h.window;
        this.helloWaiter?.resolve(h);
        return;
      }
      case 'MSG': {
        const m = decodeGuestMessage(f.payload);
        if (m.kind === 'event') {
          this.options.onEvent?.(m.event);
          return;
        }
        const p = this.pending.get(m.id);
        if (p === undefined) return; // a late answer to a request that timed out
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if ('ok' in m) p.resolve(m.ok);
        else p.reject(new KataError('E_AGENT', agentErrorText(p.op, m.err.code, m.err.message), { cause: m.err.code }));
        return;
      }
      case 'DATA': {
        const s = this.inbound.get(f.stream);
        if (s === undefined || s.closed) throw new KataError('E_PROTOCOL', `agent protocol error: DATA on unknown stream ${f.stream}`);
        s.allowance -= f.payload.length;
        if (s.allowance < 0) throw new KataError('E_PROTOCOL', `agent protocol error: stream ${f.stream} exceeded its window`);
        if (s.pump === undefined) {
          s.parts.push(f.payload); // the sink is idle: this part goes to it at once
          s.pump = this.pumpInbound(f.stream, s);
        } else {
          appendInbound(s, f.payload);
        }
        return;
      }
      case 'CLOSE': {
        const s = this.inbound.get(f.stream);
        if (s === undefined) throw new KataError('E_PROTOCOL', `agent protocol error: CLOSE on unknown stream ${f.stream}`);
        if (s.closed) return;
        s.closed = true;
        if (s.pump === undefined) endInbound(s);
        return;
      }
      case 'CREDIT': {
        const s = this.outbound.get(f.stream);
        if (s === undefined || s.closed) return;
        s.credit += f.payload.readUInt32BE(0);
        for (const w of s.waiters.splice(0)) w();
        return;
      }
    }
  }

  /** Hands an inbound stream's backlog to its sink, granting CREDIT for each part it took. */
  private async pumpInbound(stream: number, s: InboundStream): Promise<void> {
    for (;;) {
      let part = s.parts.shift();
      if (part === undefined && s.tail !== undefined) {
        part = s.tail.buf.subarray(0, s.tail.used);
        s.tail = undefined;
      }
      if (part === undefined) break;
      await s.sink.write(part).catch(() => undefined); // a consumer that went away still frees the window
      s.allowance += part.length;
      if (!this.failure && !s.closed) this.send({ type: 'CREDIT', stream, payload: creditPayload(part.length) });
    }
    s.pump = undefined;
    if (s.closed) endInbound(s);
  }

  /** Resolves once every inbound stream's backlog has been handed to its sink. */
  async flushInbound(): Promise<void> {
    for (;;) {
      const pumps = [...this.inbound.values()].flatMap((s) => (s.pump === undefined ? [] : [s.pump]));
      if (pumps.length === 0) return;
      await Promise.all(pumps);
    }
  }

  /** What inbound streams hold for their sinks: bytes and buffers (bounded by one window each). */
  get inboundBacklog(): { bytes: number; buffers: number } {
    let bytes = 0;
    let buffers = 0;
    for (const s of this.inbound.values()) {
      bytes += DEFAULT_WINDOW - s.allowance;
      buffers += s.parts.length + (s.tail === undefined ? 0 : 1);
    }
    return { bytes, buffers };
  }

  private fail(e: KataError): void {
    if (this.failure) return;
    this.failure = e;
    this.helloWaiter?.reject(e);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
    for (const s of this.outbound.values()) for (const w of s.waiters.splice(0)) w();
    for (const w of this.drainWaiters.splice(0)) w();
    if (!this.closing) this.options.onFailure?.(e);
  }
}

/**
 * The text of a failed request. crun failing to start a container or exec process is said in
 * runc's words, without naming the agent (the user asked for a container, not an agent).
 */
function agentErrorText(op: string, code: string, message: string): string {
  if (code === 'E_CRUN' && (op === 'create' || op === 'exec')) return runcStartError(message);
  return `agent: ${op}: ${message}`;
}

function appendInbound(s: InboundStream, payload: Buffer): void {
  if (payload.length >= SMALL_PAYLOAD) {
    if (s.tail !== undefined) s.parts.push(s.tail.buf.subarray(0, s.tail.used));
    s.tail = undefined;
    s.parts.push(payload);
    return;
  }
  if (s.tail !== undefined && s.tail.used + payload.length > s.tail.buf.length) {
    s.parts.push(s.tail.buf.subarray(0, s.tail.used));
    s.tail = undefined;
  }
  s.tail ??= { buf: Buffer.allocUnsafe(MAX_PAYLOAD), used: 0 };
  s.tail.used += payload.copy(s.tail.buf, s.tail.used);
}

function endInbound(s: InboundStream): void {
  if (s.ended) return;
  s.ended = true;
  s.sink.end();
}
