import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, MAX_PAYLOAD, encodeFrame, type FrameTypeName } from '../../src/channel/frame.js';
import { decodeGuestMessage, decodeHello, decodeHostMessage } from '../../src/channel/messages.js';

const dir = path.join(import.meta.dirname, '..', 'fixtures', 'frames');
const hex = (name: string): Buffer => Buffer.from(fs.readFileSync(path.join(dir, name), 'utf8').replace(/\s+/g, ''), 'hex');

interface Fixture {
  type: FrameTypeName;
  stream: number;
  text?: string;
  hex?: string;
  credit?: number;
}

const good = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
const bad = fs.readdirSync(dir).filter((f) => f.startsWith('bad-') && f.endsWith('.hex'));

describe('golden frames (shared with the Rust agent tests)', () => {
  it('has fixtures', () => {
    expect(good.length).toBeGreaterThanOrEqual(9);
    expect(bad.length).toBeGreaterThanOrEqual(9);
  });

  for (const f of good) {
    it(`decodes and re-encodes ${f}`, () => {
      const desc = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Fixture;
      const bytes = hex(f.replace(/\.json$/, '.hex'));
      const frames = new FrameDecoder().push(bytes);
      expect(frames).toHaveLength(1);
      const fr = frames[0]!;
      expect(fr.type).toBe(desc.type);
      expect(fr.stream).toBe(desc.stream);
      if (desc.text !== undefined) {
        expect(fr.payload.toString('utf8')).toBe(desc.text);
        if (fr.type === 'HELLO') expect(decodeHello(fr.payload).version).toBe(1);
        else if (desc.text.includes('"kind":"req"')) expect(decodeHostMessage(fr.payload).kind).toBe('req');
        else expect(['res', 'event']).toContain(decodeGuestMessage(fr.payload).kind);
      }
      if (desc.hex !== undefined) expect(fr.payload.toString('hex')).toBe(desc.hex);
      if (desc.credit !== undefined) expect(fr.payload.readUInt32BE(0)).toBe(desc.credit);
      expect(encodeFrame(fr).equals(bytes)).toBe(true);
    });
  }

  for (const f of bad) {
    it(`rejects ${f}`, () => {
      expect(() => new FrameDecoder().push(hex(f))).toThrow(/agent protocol error/);
    });
  }
});

describe('FrameDecoder', () => {
  it('reassembles frames split at every byte boundary', () => {
    const bytes = Buffer.concat([hex('hello.hex'), hex('data.hex'), hex('credit.hex')]);
    const d = new FrameDecoder();
    const out = [];
    for (const b of bytes) out.push(...d.push(Buffer.from([b])));
    expect(out.map((f) => f.type)).toEqual(['HELLO', 'DATA', 'CREDIT']);
    expect(d.pending).toBe(0);
  });

  it('rejects an oversized length from the header alone', () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(5 + MAX_PAYLOAD + 1, 0);
    expect(() => new FrameDecoder().push(head)).toThrow(/out of range/);
  });

  it('accepts a maximal payload and refuses to encode a larger one', () => {
    const big = encodeFrame({ type: 'DATA', stream: 7, payload: Buffer.alloc(MAX_PAYLOAD, 1) });
    expect(new FrameDecoder().push(big)[0]?.payload.length).toBe(MAX_PAYLOAD);
    expect(() => encodeFrame({ type: 'DATA', stream: 7, payload: Buffer.alloc(MAX_PAYLOAD + 1) })).toThrow();
  });
});

describe('guest message decoding treats the guest as hostile', () => {
  const dec = (o: unknown): unknown => decodeGuestMessage(Buffer.from(JSON.stringify(o)));
  it.each([
    ['not JSON', null],
    ['unknown kind', { kind: 'boom' }],
    ['response id out of range', { kind: 'res', id: -1, ok: {} }],
    ['response without ok or err', { kind: 'res', id: 1 }],
    ['exit with both code and signal', { kind: 'event', event: { type: 'exit', containerId: 'a', pid: 1, code: 0, signal: 9 } }],
    ['exit with a bad id', { kind: 'event', event: { type: 'exit', containerId: '../x', pid: 1, code: 0, signal: null } }],
    ['exit code out of range', { kind: 'event', event: { type: 'exit', containerId: 'a', pid: 1, code: 300, signal: null } }],
    ['unknown event', { kind: 'event', event: { type: 'boom' } }],
  ])('rejects %s', (_name, v) => {
    expect(() => (v === null ? decodeGuestMessage(Buffer.from('{nope')) : dec(v))).toThrow(/agent protocol error/);
  });

  it('truncates very long error messages', () => {
    const m = dec({ kind: 'res', id: 1, err: { code: 'E_CRUN', message: 'x'.repeat(100000) } });
    expect(JSON.stringify(m).length).toBeLessThan(5000);
  });
});
