import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AgentConnection, type StreamSink } from '../../src/channel/connection.js';
import { DEFAULT_WINDOW, FrameDecoder, MAX_PAYLOAD, creditPayload, encodeFrame, type Frame } from '../../src/channel/frame.js';
import { decodeHostMessage } from '../../src/channel/messages.js';

/** An in-memory pipe pair: what the host writes, the fake agent reads, and the reverse. */
function pair(): { host: Duplex; agent: { frames: Frame[]; send: (f: Frame) => void; onFrame: (cb: (f: Frame) => void) => void; end: () => void } } {
  const toAgent = new PassThrough();
  const toHost = new PassThrough();
  const host = Duplex.from({ readable: toHost, writable: toAgent });
  const dec = new FrameDecoder();
  const frames: Frame[] = [];
  const cbs: ((f: Frame) => void)[] = [];
  toAgent.on('data', (c: Buffer) => {
    for (const f of dec.push(c)) {
      frames.push(f);
      for (const cb of cbs) cb(f);
    }
  });
  return {
    host,
    agent: {
      frames,
      send: (f) => toHost.write(encodeFrame(f)),
      onFrame: (cb) => cbs.push(cb),
      end: () => toHost.destroy(),
    },
  };
}

const hello = (window = DEFAULT_WINDOW): Frame => ({ type: 'HELLO', stream: 0, payload: Buffer.from(JSON.stringify({ version: 1, maxPayload: MAX_PAYLOAD, window })) });
const msg = (o: unknown): Frame => ({ type: 'MSG', stream: 0, payload: Buffer.from(JSON.stringify(o)) });

async function connected(window = DEFAULT_WINDOW, failures: Error[] = []): Promise<{ conn: AgentConnection; agent: ReturnType<typeof pair>['agent'] }> {
  const { host, agent } = pair();
  agent.onFrame((f) => {
    if (f.type === 'HELLO') agent.send(hello(window));
  });
  const conn = new AgentConnection(host, { helloTimeoutMs: 2000, onFailure: (e) => failures.push(e) });
  await conn.handshake();
  return { conn, agent };
}

describe('AgentConnection', () => {
  it('handshakes and matches responses to requests by id, in any order', async () => {
    const { conn, agent } = await connected();
    agent.onFrame((f) => {
      if (f.type !== 'MSG') return;
      const m = decodeHostMessage(f.payload);
      // answer later requests first
      setTimeout(() => agent.send(msg({ kind: 'res', id: m.id, ok: { pid: m.id * 10 } })), m.id === 1 ? 30 : 0);
    });
    const [a, b] = await Promise.all([conn.request({ op: 'ping' }), conn.request({ op: 'list' })]);
    expect(a).toEqual({ pid: 10 });
    expect(b).toEqual({ pid: 20 });
    conn.close();
  });

  it('reports an agent error with its message', async () => {
    const { conn, agent } = await connected();
    agent.onFrame((f) => {
      if (f.type === 'MSG') agent.send(msg({ kind: 'res', id: decodeHostMessage(f.payload).id, err: { code: 'E_NOT_FOUND', message: 'container x does not exist' } }));
    });
    await expect(conn.request({ op: 'start', containerId: 'x' })).rejects.toThrow(/start: container x does not exist/);
    conn.close();
  });

  it('refuses a peer with another protocol version', async () => {
    const { host, agent } = pair();
    agent.onFrame(() => agent.send({ type: 'HELLO', stream: 0, payload: Buffer.from('{"version":2,"maxPayload":65536,"window":1024}') }));
    await expect(new AgentConnection(host).handshake()).rejects.toThrow(/version mismatch \(host 1, agent 2\)/);
  });

  it('times out a silent agent', async () => {
    const { host } = pair();
    await expect(new AgentConnection(host, { helloTimeoutMs: 50 }).handshake()).rejects.toThrow(/handshake within 50 ms/);
  });

  it('grants credit for inbound data only after the sink took it', async () => {
    const { conn, agent } = await connected();
    const written: Buffer[] = [];
    let release: () => void = () => undefined;
    const sink: StreamSink = {
      write: (d) => new Promise((r) => ((release = () => (written.push(d), r())))),
      end: () => undefined,
    };
    const id = conn.openInbound(sink);
    agent.send({ type: 'DATA', stream: id, payload: Buffer.from('hello') });
    await new Promise((r) => setTimeout(r, 20));
    expect(agent.frames.filter((f) => f.type === 'CREDIT')).toHaveLength(0);
    release();
    await new Promise((r) => setTimeout(r, 20));
    const credits = agent.frames.filter((f) => f.type === 'CREDIT');
    expect(credits).toHaveLength(1);
    expect(credits[0]?.payload.readUInt32BE(0)).toBe(5);
    expect(Buffer.concat(written).toString()).toBe('hello');
    conn.close();
  });

  it('fails the connection when the agent overruns its window', async () => {
    const failures: Error[] = [];
    const { conn, agent } = await connected(DEFAULT_WINDOW, failures);
    const id = conn.openInbound({ write: () => new Promise(() => undefined), end: () => undefined });
    for (let sent = 0; sent <= DEFAULT_WINDOW; sent += MAX_PAYLOAD) agent.send({ type: 'DATA', stream: id, payload: Buffer.alloc(MAX_PAYLOAD) });
    await new Promise((r) => setTimeout(r, 20));
    expect(failures[0]?.message).toMatch(/exceeded its window/);
    expect(conn.failed).toBeDefined();
  });

  it('fails the connection on DATA for a stream the host never opened', async () => {
    const failures: Error[] = [];
    const { agent } = await connected(DEFAULT_WINDOW, failures);
    agent.send({ type: 'DATA', stream: 99, payload: Buffer.from('x') });
    await new Promise((r) => setTimeout(r, 20));
    expect(failures[0]?.message).toMatch(/unknown stream 99/);
  });

  it('never has more outbound bytes in flight than the peer granted', async () => {
    const window = 100000;
    const { conn, agent } = await connected(window);
    const id = conn.openOutbound();
    let inFlight = 0;
    let maxInFlight = 0;
    let received = 0;
    agent.onFrame((f) => {
      if (f.type !== 'DATA') return;
      inFlight += f.payload.length;
      maxInFlight = Math.max(maxInFlight, inFlight);
      received += f.payload.length;
      // the fake agent consumes slowly and grants credit back
      setTimeout(() => {
        inFlight -= f.payload.length;
        agent.send({ type: 'CREDIT', stream: id, payload: creditPayload(f.payload.length) });
      }, 1);
    });
    await conn.write(id, Buffer.alloc(1_000_000, 7));
    conn.closeStream(id);
    await new Promise((r) => setTimeout(r, 20));
    expect(received).toBe(1_000_000);
    expect(maxInFlight).toBeLessThanOrEqual(window);
    expect(agent.frames.at(-1)?.type).toBe('CLOSE');
    conn.close();
  });

  it('fails pending requests when the channel closes', async () => {
    const failures: Error[] = [];
    const { conn, agent } = await connected(DEFAULT_WINDOW, failures);
    const p = conn.request({ op: 'ping' });
    agent.end();
    await expect(p).rejects.toThrow(/agent channel/);
    expect(failures).toHaveLength(1);
  });
});
