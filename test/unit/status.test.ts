import { describe, expect, it } from 'vitest';
import { STATUSES, assertTransition, canTransition, type Status } from '../../src/runtime/status.js';

const allowed = new Set(['creating>created', 'creating>stopped', 'created>running', 'created>stopped', 'running>paused', 'running>stopped', 'paused>running', 'paused>stopped']);

describe('lifecycle state machine', () => {
  for (const from of STATUSES) {
    for (const to of STATUSES) {
      const ok = allowed.has(`${from}>${to}`);
      it(`${from} → ${to} is ${ok ? 'allowed' : 'refused'}`, () => {
        expect(canTransition(from, to)).toBe(ok);
        if (ok) expect(() => assertTransition(from as Status, to as Status)).not.toThrow();
        else expect(() => assertTransition(from, to, 'c1')).toThrow(expect.objectContaining({ code: 'E_BAD_STATE' }));
      });
    }
  }
});

describe('state record decoding', () => {
  const base = { version: 1, id: 'c', bundle: '/b', status: 'running', monitorPid: 5 };
  const decode = async (extra: Record<string, unknown>): Promise<unknown> => {
    const { decodeRecord } = await import('../../src/runtime/store.js');
    return decodeRecord(JSON.stringify({ ...base, ...extra }), 'state.json').network;
  };

  it('keeps a well-formed network record and completes one from an older build', async () => {
    expect(await decode({})).toBeUndefined();
    expect(await decode({ network: { netns: '/run/netns/x', qdiscs: ['eth0'], devices: ['tap0_kata'] } })).toEqual({ netns: '/run/netns/x', qdiscs: ['eth0'], devices: ['tap0_kata'] });
    // before macvtap, a record had `links` and no `devices`
    expect(await decode({ network: { netns: '/run/netns/x', qdiscs: ['eth0'] } })).toEqual({ netns: '/run/netns/x', qdiscs: ['eth0'], devices: [] });
    expect(await decode({ network: { netns: null, qdiscs: 'eth0', devices: [1, 'tap0_kata'] } })).toEqual({ netns: null, qdiscs: [], devices: ['tap0_kata'] });
    expect(await decode({ network: 'garbage' })).toBeUndefined();
  });
});
