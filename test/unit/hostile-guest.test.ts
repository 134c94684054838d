/**
 * Hostile guest: property tests of everything the host decodes from the agent channel (frame
 * decoder, message decoder, AgentConnection). The guest is untrusted (docs/security.md): whatever
 * it sends, the host either decodes a well-formed frame/message or fails the connection with one
 * E_PROTOCOL error, and its memory stays bounded by one window per stream.
 * Seeded (test/unit/fuzz.ts): FUZZ_SEED replays a run, FUZZ_CASES scales it.
 */
import { Duplex, PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentConnection, type StreamSink } from '../../src/channel/connection.js';
import { DEFAULT_WINDOW, FRAME_TYPES, FrameDecoder, HEADER_SIZE, MAX_PAYLOAD, creditPayload, encodeFrame, type Frame, type FrameTypeName } from '../../src/channel/frame.js';
import { decodeGuestMessage, decodeHello, type AgentEvent } from '../../src/channel/messages.js';
import { KataError } from '../../src/errors.js';
import { FUZZ_SCALE, FUZZ_SEED, Rng } from './fuzz.js';

const counts: Record<string, number> = {};
function count(what: string, n = 1): void {
  counts[what] = (counts[what] ?? 0) + n;
}
afterAll(() => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`hostile-guest: ${total} cases (seed ${FUZZ_SEED}): ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
});

const N = (n: number): number => Math.max(1, Math.round(n * FUZZ_SCALE));

function isProtocolError(e: unknown): boolean {
  return e instanceof KataError && e.code === 'E_PROTOCOL' && !e.message.includes('\n');
}

/** Runs `f`; the only exception allowed is one E_PROTOCOL error (the connection is then dropped). */
function protocolErrorAtMost(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!isProtocolError(e)) throw e;
  }
}

/** A frame that obeys every rule of docs/protocol.md. */
function validFrame(r: Rng): Frame {
  const type = r.pick<FrameTypeName>(['HELLO', 'MSG', 'DATA', 'CLOSE', 'CREDIT']);
  const stream = type === 'HELLO' || type === 'MSG' ? 0 : 1 + r.int(0xfffffffe);
  const size = (): number => (r.bool(0.05) ? MAX_PAYLOAD : r.bool(0.5) ? 1 + r.int(16) : 1 + r.int(4096));
  switch (type) {
    case 'HELLO':
    case 'MSG':
      return { type, stream, payload: r.bool(0.1) ? Buffer.alloc(0) : r.bytes(size()) };
    case 'DATA':
      return { type, stream, payload: r.bytes(size()) };
    case 'CLOSE':
      return { type, stream, payload: Buffer.alloc(0) };
    case 'CREDIT':
      return { type, stream, payload: creditPayload(1 + r.int(0xfffffffe)) };
  }
}

/** A header that breaks one rule; the decoder must refuse it without waiting for a payload. */
function badHeader(r: Rng): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  const kind = r.int(4);
  if (kind === 0) h.writeUInt32BE(5 + MAX_PAYLOAD + 1 + r.int(0xffffffff - 5 - MAX_PAYLOAD), 0); // giant length
  else if (kind === 1) h.writeUInt32BE(r.int(5), 0); // shorter than type + stream
  else {
    h.writeUInt32BE(5, 0);
    if (kind === 2) h.writeUInt8(r.pick([0, 6, 7, 0x80, 0xff]), 4); // unknown type
    else {
      h.writeUInt8(r.pick([FRAME_TYPES.DATA, FRAME_TYPES.CREDIT]), 4); // DATA empty / CREDIT without its 4 bytes
      h.writeUInt32BE(1 + r.int(100), 5);
    }
  }
  return h;
}

describe('hostile guest: frame decoder', () => {
  it('random bytes in random chunks: frames or one E_PROTOCOL, never more than one frame buffered', () => {
    const r = new Rng(FUZZ_SEED);
    for (let c = 0; c < N(3000); c++) {
      const dec = new FrameDecoder();
      const input = r.bytes(r.int(2000));
      // Half the cases start like a plausible frame, so the deeper checks are reached too.
      if (r.bool() && input.length >= 4) input.writeUInt32BE(r.int(200), 0);
      protocolErrorAtMost(() => {
        for (const chunk of r.chunks(input, 1 + r.int(300))) {
          dec.push(chunk);
          expect(dec.pending).toBeLessThan(HEADER_SIZE + MAX_PAYLOAD);
        }
      });
      count('decoder-random');
    }
  });

  it('valid frames, however they are chunked, decode to themselves', () => {
    const r = new Rng(FUZZ_SEED + 1);
    for (let c = 0; c < N(1500); c++) {
      const frames = Array.from({ length: 1 + r.int(8) }, () => validFrame(r));
      const wire = Buffer.concat(frames.map(encodeFrame));
      const dec = new FrameDecoder();
      const got = r.chunks(wire, r.pick([3, 7, 100, 70000])).flatMap((ch) => dec.push(ch));
      expect(got.map((f) => [f.type, f.stream, f.payload.toString('hex')])).toEqual(frames.map((f) => [f.type, f.stream, f.payload.toString('hex')]));
      expect(dec.pending).toBe(0);
      count('decoder-roundtrip');
    }
  });

  it('a bad header between valid frames: the frames before it decode, then E_PROTOCOL before any payload', () => {
    const r = new Rng(FUZZ_SEED + 2);
    for (let c = 0; c < N(1500); c++) {
      const before = Array.from({ length: r.int(4) }, () => validFrame(r));
      const bad = badHeader(r);
      const wire = Buffer.concat([...before.map(encodeFrame), bad]);
      const dec = new FrameDecoder();
      const got: Frame[] = [];
      let err: unknown;
      try {
        for (const ch of r.chunks(wire, 1 + r.int(200))) got.push(...dec.push(ch));
      } catch (e) {
        err = e;
      }
      // The frames ahead of the bad header are delivered; the error comes at once or with the next chunk.
      if (err === undefined) err = dec.error;
      expect(isProtocolError(err), String(err)).toBe(true);
      expect(got.map((f) => [f.type, f.stream, f.payload.toString('hex')])).toEqual(before.map((f) => [f.type, f.stream, f.payload.toString('hex')]));
      count('decoder-bad-header');
    }
  });

  it('a giant length is refused from its 4 bytes alone', () => {
    for (const len of [5 + MAX_PAYLOAD + 1, 0x7fffffff, 0xffffffff]) {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(len, 0);
      expect(() => new FrameDecoder().push(h)).toThrow(/frame length \d+ out of range/);
      count('decoder-giant-length');
    }
  });
});

/** Valid messages of each kind, then mutated: fields dropped, retyped, out of range. */
function messageCorpus(r: Rng): unknown {
  const base: Record<string, unknown>[] = [
    { kind: 'res', id: r.int(100), ok: { pid: 7 } },
    { kind: 'res', id: r.int(100), err: { code: 'E_NOT_FOUND', message: 'x' } },
    { kind: 'event', event: { type: 'exit', containerId: 'c1', pid: 3, code: 0, signal: null } },
    { kind: 'event', event: { type: 'exit', containerId: 'c1', execId: 'e1', pid: 3, code: null, signal: 9 } },
    { kind: 'event', event: { type: 'oom', containerId: 'c1' } },
  ];
  const weird = (): unknown =>
    r.pick<() => unknown>([
      () => null,
      () => -1,
      () => 2 ** 32,
      () => 1.5,
      () => Number.MAX_SAFE_INTEGER * 4,
      () => 'x'.repeat(r.int(10000)),
      () => '../../etc',
      () => 'c1\n',
      () => '',
      () => [],
      () => ({}),
      () => true,
      () => '__proto__',
      () => ({ __proto__: { polluted: true } }),
    ])();
  const m = structuredClone(r.pick(base));
  const mutations = r.int(4);
  for (let i = 0; i < mutations; i++) {
    const target: Record<string, unknown> = typeof m['event'] === 'object' && m['event'] !== null && r.bool() ? (m['event'] as Record<string, unknown>) : m;
    const keys = [...Object.keys(target), 'extra', 'constructor'];
    const k = r.pick(keys);
    if (r.bool(0.3)) delete target[k];
    else target[k] = weird();
  }
  return m;
}

function utf8Garbage(r: Rng, text: string): Buffer {
  const b = Buffer.from(text);
  const bad = r.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80]]);
  const at = r.int(b.length + 1);
  return Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]);
}

function checkDecoded(m: ReturnType<typeof decodeGuestMessage>): void {
  if (m.kind === 'res') {
    expect(Number.isInteger(m.id) && m.id >= 0 && m.id <= 0xffffffff).toBe(true);
    if ('err' in m) expect(m.err.code.length).toBeLessThanOrEqual(65);
    return;
  }
  expect(m.event.containerId).toMatch(/^[A-Za-z0-9_.+-]{1,128}$/);
  if (m.event.type === 'exit') {
    expect((m.event.code === null) !== (m.event.signal === null)).toBe(true);
    if (m.event.code !== null) expect(m.event.code >= 0 && m.event.code <= 255).toBe(true);
    if (m.event.signal !== null) expect(m.event.signal >= 1 && m.event.signal <= 64).toBe(true);
    if (m.event.execId !== undefined) expect(m.event.execId).toMatch(/^[A-Za-z0-9_.+-]{1,128}$/);
  }
}

describe('hostile guest: message decoder', () => {
  it('mutated messages: a checked message or one E_PROTOCOL, never another exception', () => {
    const r = new Rng(FUZZ_SEED + 3);
    for (let c = 0; c < N(5000); c++) {
      const payload = Buffer.from(JSON.stringify(messageCorpus(r)));
      protocolErrorAtMost(() => checkDecoded(decodeGuestMessage(payload)));
      count('message-mutated');
    }
  });

  it('invalid UTF-8 anywhere in a MSG or HELLO is refused, not replaced', () => {
    const r = new Rng(FUZZ_SEED + 4);
    for (let c = 0; c < N(1000); c++) {
      const good = JSON.stringify({ kind: 'res', id: 1, err: { code: 'E_X', message: 'naïve ünïcode' } });
      expect(() => decodeGuestMessage(utf8Garbage(r, good))).toThrow(/not valid UTF-8/);
      expect(() => decodeHello(utf8Garbage(r, '{"version":1,"maxPayload":65536,"window":262144}'))).toThrow(/not valid UTF-8/);
      count('message-utf8', 2);
    }
  });

  it('random bytes, truncated JSON and deep nesting: E_PROTOCOL', () => {
    const r = new Rng(FUZZ_SEED + 5);
    const fixed = [
      '['.repeat(MAX_PAYLOAD),
      `${'['.repeat(30000)}${']'.repeat(30000)}`,
      `${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}`,
      '{"kind":"res","id":1,"ok":{}',
      '',
      'null',
      '"kind"',
    ];
    for (const t of fixed) {
      expect(() => decodeGuestMessage(Buffer.from(t))).toThrow(KataError);
      count('message-fixed');
    }
    for (let c = 0; c < N(3000); c++) {
      const valid = JSON.stringify(messageCorpus(r));
      const payload = r.bool() ? r.bytes(r.int(300)) : Buffer.from(valid.slice(0, r.int(valid.length)));
      protocolErrorAtMost(() => checkDecoded(decodeGuestMessage(payload)));
      count('message-random');
    }
  });
});

/** An in-memory channel: the test plays the guest, writing raw bytes. */
async function hostileSession(failures: KataError[], events: AgentEvent[]): Promise<{ conn: AgentConnection; toHost: PassThrough; fromHost: Frame[] }> {
  const toAgent = new PassThrough();
  const toHost = new PassThrough();
  const fromHost: Frame[] = [];
  const dec = new FrameDecoder();
  toAgent.on('data', (c: Buffer) => fromHost.push(...dec.push(c)));
  const conn = new AgentConnection(Duplex.from({ readable: toHost, writable: toAgent }), {
    helloTimeoutMs: 2000,
    onFailure: (e) => failures.push(e),
    onEvent: (e) => events.push(e),
  });
  const shook = conn.handshake();
  toHost.write(encodeFrame({ type: 'HELLO', stream: 0, payload: Buffer.from(JSON.stringify({ version: 1, maxPayload: MAX_PAYLOAD, window: DEFAULT_WINDOW })) }));
  await shook;
  return { conn, toHost, fromHost };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('hostile guest: AgentConnection', () => {
  it('random hostile sessions: the first violation fails the connection once with E_PROTOCOL; nothing before it does', async () => {
    const r = new Rng(FUZZ_SEED + 6);
    for (let c = 0; c < N(400); c++) {
      const failures: KataError[] = [];
      const events: AgentEvent[] = [];
      const { conn, toHost } = await hostileSession(failures, events);
      const stalled = conn.openInbound({ write: () => new Promise(() => undefined), end: () => undefined });
      const taken: Buffer[] = [];
      const fast = conn.openInbound({ write: async (d) => void taken.push(d), end: () => undefined });
      const out = conn.openOutbound();
      const pendingReq = conn.request({ op: 'ping' }, 60000).catch(() => undefined);
      const closed = new Set<number>();
      let stalledUsed = 0;
      let violation: string | undefined;
      let expectedEvents = 0;
      for (let step = 0; step < 40 && violation === undefined; step++) {
        const k = r.int(12);
        let bytes: Buffer;
        if (k === 0) {
          const n = 1 + r.int(r.bool(0.2) ? MAX_PAYLOAD : 64);
          bytes = encodeFrame({ type: 'DATA', stream: stalled, payload: r.bytes(n) });
          stalledUsed += n;
          if (closed.has(stalled)) violation = 'DATA after CLOSE';
          else if (stalledUsed > DEFAULT_WINDOW) violation = 'window overrun';
        } else if (k === 1) {
          bytes = encodeFrame({ type: 'DATA', stream: fast, payload: r.bytes(1 + r.int(100)) });
          if (closed.has(fast)) violation = 'DATA after CLOSE';
        } else if (k === 2) {
          const s = r.pick([stalled, fast]);
          bytes = encodeFrame({ type: 'CLOSE', stream: s, payload: Buffer.alloc(0) });
          closed.add(s);
        } else if (k === 3) {
          // CREDIT out of order: for our outbound stream, for inbound ones, for unknown ones; any amount.
          bytes = encodeFrame({ type: 'CREDIT', stream: r.pick([out, stalled, fast, 999, 0xffffffff]), payload: creditPayload(1 + r.int(0xfffffffe)) });
        } else if (k === 4) {
          bytes = encodeFrame({ type: 'DATA', stream: r.pick([out, 1000 + r.int(1000), 0xffffffff]), payload: r.bytes(1 + r.int(10)) });
          violation = 'DATA on a stream the host does not read';
        } else if (k === 5) {
          bytes = encodeFrame({ type: 'CLOSE', stream: 1000 + r.int(1000), payload: Buffer.alloc(0) });
          violation = 'CLOSE on an unknown stream';
        } else if (k === 6) {
          bytes = encodeFrame({ type: 'MSG', stream: 0, payload: utf8Garbage(r, '{"kind":"event"}') });
          violation = 'invalid UTF-8';
        } else if (k === 7) {
          bytes = encodeFrame({ type: 'MSG', stream: 0, payload: r.bytes(1 + r.int(50)) });
          let ok = false;
          try {
            decodeGuestMessage(bytes.subarray(HEADER_SIZE));
            ok = true;
          } catch {
            // expected
          }
          if (!ok) violation = 'garbage MSG';
        } else if (k === 8) {
          bytes = encodeFrame({ type: 'HELLO', stream: 0, payload: Buffer.from('{"version":1,"maxPayload":65536,"window":1}') });
          violation = 'second HELLO';
        } else if (k === 9) {
          bytes = Buffer.concat([Buffer.from([0xff]), r.bytes(r.int(20))]);
          violation = 'garbage bytes';
        } else if (k === 10) {
          // Responses to requests never made, events for other containers or execs: harmless.
          const m = r.pick([
            { kind: 'res', id: 1000 + r.int(1000), ok: {} },
            { kind: 'event', event: { type: 'exit', containerId: 'other', execId: 'nope', pid: 1, code: 0, signal: null } },
            { kind: 'event', event: { type: 'oom', containerId: 'c1' } },
          ]);
          if (m.kind === 'event') expectedEvents++;
          bytes = encodeFrame({ type: 'MSG', stream: 0, payload: Buffer.from(JSON.stringify(m)) });
        } else {
          bytes = encodeFrame({ type: 'MSG', stream: 0, payload: Buffer.from(JSON.stringify(messageCorpus(r))) });
          let m: ReturnType<typeof decodeGuestMessage> | undefined;
          try {
            m = decodeGuestMessage(bytes.subarray(HEADER_SIZE));
          } catch {
            violation = 'invalid message';
          }
          if (m?.kind === 'event') expectedEvents++;
        }
        for (const ch of r.chunks(bytes, 1 + r.int(5000))) toHost.write(ch);
        await tick();
        if (violation === undefined) expect(failures, `step ${step} (${k})`).toEqual([]);
        const backlog = conn.inboundBacklog;
        expect(backlog.bytes).toBeLessThanOrEqual(2 * DEFAULT_WINDOW);
        expect(backlog.buffers).toBeLessThanOrEqual(2 * (DEFAULT_WINDOW / 4096 + 8));
      }
      // Whatever follows a violation is ignored.
      toHost.write(encodeFrame({ type: 'MSG', stream: 0, payload: Buffer.from('{"kind":"event","event":{"type":"oom","containerId":"late"}}') }));
      await tick();
      await tick();
      if (violation !== undefined) {
        expect(failures, violation).toHaveLength(1);
        expect(failures[0]?.code, violation).toBe('E_PROTOCOL');
        expect(events).toHaveLength(expectedEvents);
      } else {
        expect(failures).toEqual([]);
        expect(events).toHaveLength(expectedEvents + 1);
      }
      conn.close();
      await pendingReq;
      count('connection-session');
    }
  });

  it('a flood of one-byte DATA frames to a stalled reader costs about its bytes, not a buffer per frame', async () => {
    const failures: KataError[] = [];
    const { conn, toHost } = await hostileSession(failures, []);
    const stream = conn.openInbound({ write: () => new Promise(() => undefined), end: () => undefined });
    const frame = encodeFrame({ type: 'DATA', stream, payload: Buffer.from('x') });
    const batch = Buffer.concat(Array.from({ length: 4096 }, () => frame));
    for (let sent = 0; sent < DEFAULT_WINDOW; sent += 4096) {
      toHost.write(batch);
      await tick();
    }
    expect(failures).toEqual([]);
    expect(conn.inboundBacklog.bytes).toBe(DEFAULT_WINDOW);
    // One part taken by the stalled sink, the rest coalesced into MAX_PAYLOAD buffers.
    expect(conn.inboundBacklog.buffers).toBeLessThanOrEqual(DEFAULT_WINDOW / MAX_PAYLOAD + 2);
    toHost.write(frame);
    await tick();
    expect(failures[0]?.message).toMatch(/exceeded its window/);
    conn.close();
    count('connection-flood-262145-frames');
  });

  it('coalesced backlog reaches a slow reader in order, every byte credited back', async () => {
    const r = new Rng(FUZZ_SEED + 7);
    for (let c = 0; c < N(50); c++) {
      const failures: KataError[] = [];
      const { conn, toHost, fromHost } = await hostileSession(failures, []);
      const got: Buffer[] = [];
      let ended = false;
      const sink: StreamSink = {
        write: async (d) => {
          await new Promise((res) => setTimeout(res, r.int(3)));
          got.push(Buffer.from(d));
        },
        end: () => void (ended = true),
      };
      const stream = conn.openInbound(sink);
      const sent: Buffer[] = [];
      let credit = DEFAULT_WINDOW;
      const creditBack = (): number => fromHost.filter((f) => f.type === 'CREDIT' && f.stream === stream).reduce((a, f) => a + f.payload.readUInt32BE(0), 0);
      for (let i = 0; i < 200; i++) {
        const n = 1 + (r.bool(0.1) ? r.int(MAX_PAYLOAD) : r.int(50));
        while (credit - sent.reduce((a, b) => a + b.length, 0) + creditBack() < n) await new Promise((res) => setTimeout(res, 2));
        const d = r.bytes(n);
        sent.push(d);
        toHost.write(encodeFrame({ type: 'DATA', stream, payload: d }));
        if (r.bool(0.1)) await tick();
      }
      credit = 0;
      toHost.write(encodeFrame({ type: 'CLOSE', stream, payload: Buffer.alloc(0) }));
      await new Promise((res) => setTimeout(res, 5));
      await conn.flushInbound();
      expect(failures).toEqual([]);
      expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
      expect(ended).toBe(true);
      conn.close();
      count('connection-ordered');
    }
  });
});

describe('hostile guest: the monitor\'s event fan-out', () => {
  it('an oom flood towards an `events` caller that does not read drops that caller at 1 MiB, never grows past it', async () => {
    const { Subscribers, MAX_BACKLOG } = await import('../../src/monitor/events.js');
    const { Writable } = await import('node:stream');
    const stuck = new Writable({ highWaterMark: 16, write: () => undefined }); // never calls back: a reader that never reads
    const reading: string[] = [];
    const live = new Writable({ write: (c: Buffer, _e, cb) => (reading.push(c.toString()), cb()) });
    const subs = new Subscribers();
    subs.add(stuck);
    subs.add(live);
    const line = `${JSON.stringify({ type: 'oom' })}\n`;
    for (let i = 0; i < 200000; i++) {
      subs.send(line);
      expect(stuck.writableLength).toBeLessThanOrEqual(MAX_BACKLOG + line.length);
    }
    expect(stuck.destroyed).toBe(true);
    expect(subs.size).toBe(1);
    expect(reading).toHaveLength(200000);
    count('monitor-oom-flood');
  });

  it('oom log lines: at most one per interval, the rest counted', async () => {
    const { RateLimited } = await import('../../src/monitor/events.js');
    let t = 0;
    const lines: number[] = [];
    const rl = new RateLimited(1000, (skipped) => lines.push(skipped), () => t);
    for (let i = 0; i < 10000; i++) {
      rl.hit();
      t += 1;
    }
    expect(lines).toEqual([0, ...Array.from({ length: 9 }, () => 999)]);
    count('monitor-oom-log');
  });
});
