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
