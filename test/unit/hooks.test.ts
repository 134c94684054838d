import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hookEnv, hookStateJson, runCreateHooks, runHook, runHooks, type HookState } from '../../src/oci/hooks.js';

/** Host hooks (src/oci/hooks.ts): what a hook gets and how it ends. The lifecycle is test/diff's. */

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-unit-hooks-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const state: HookState = { ociVersion: '1.0.2', id: 'c', status: 'creating', pid: process.pid, bundle: tmp };
const sh = (script: string, extra: Record<string, unknown> = {}): { path: string; args: string[] } => ({ path: '/bin/sh', args: ['sh', '-c', script], ...extra });

/** Running (a zombie waiting for its reaper does not count). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('host hooks', () => {
  it('read the state with pid only while there is one, in runc\'s key order', () => {
    expect(hookStateJson({ ...state, pid: 42, annotations: { a: 'b' } })).toBe(`{"ociVersion":"1.0.2","id":"c","status":"creating","pid":42,"bundle":"${tmp}","annotations":{"a":"b"}}`);
    expect(hookStateJson({ ...state, status: 'stopped', pid: 0 })).toBe(`{"ociVersion":"1.0.2","id":"c","status":"stopped","bundle":"${tmp}"}`);
  });

  it('inherit the runtime\'s environment without `env`, and get exactly `env` (even empty) with one', () => {
    expect(hookEnv({ path: '/x' }, { A: '1', B: '2' })).toEqual({ A: '1', B: '2' });
    expect(hookEnv({ path: '/x', env: [] }, { A: '1' })).toEqual({});
    expect(hookEnv({ path: '/x', env: ['X=a=b', 'Y='] }, { A: '1' })).toEqual({ X: 'a=b', Y: '' });
  });

  it('run with the bundle as cwd, the state on stdin and the environment the runtime was started with', async () => {
    const out = path.join(tmp, 'seen');
    // What the CLI adds to its own environment later (for the monitor) is not the caller's.
    const before = process.env['KATA_LOG_FORMAT'];
    process.env['KATA_LOG_FORMAT'] = 'json';
    try {
      await runHook('prestart', sh(`{ pwd; cat; echo; echo "$PATH \${KATA_LOG_FORMAT-unset}"; } > ${out}`), state);
    } finally {
      if (before === undefined) delete process.env['KATA_LOG_FORMAT'];
      else process.env['KATA_LOG_FORMAT'] = before;
    }
    expect(fs.readFileSync(out, 'utf8')).toBe(`${tmp}\n${hookStateJson(state)}\n${process.env['PATH'] ?? ''} ${before ?? 'unset'}\n`);
  });

  it('a timeout kills the hook\'s whole process group and names the phase and the path', async () => {
    const pids = path.join(tmp, 'pids');
    const t0 = Date.now();
    // The shell and its background child both hold stderr; neither may keep us waiting.
    await expect(runHook('poststop', sh(`sleep 30 & echo $! > ${pids}; sleep 30`, { timeout: 1 }), state)).rejects.toThrow(/^poststop hook \/bin\/sh timed out after 1 s$/);
    expect(Date.now() - t0).toBeLessThan(5000);
    const child = Number(fs.readFileSync(pids, 'utf8'));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(child)).toBe(false);
  });

  it('a child left holding stderr after the hook exited does not hold the runtime', async () => {
    const pids = path.join(tmp, 'left');
    const t0 = Date.now();
    await runHook('poststart', sh(`setsid sleep 30 & echo $! > ${pids}; exit 0`), state);
    expect(Date.now() - t0).toBeLessThan(5000);
    process.kill(Number(fs.readFileSync(pids, 'utf8')), 'SIGKILL');
  });

  it('a failure carries the last line of stderr, and the hook\'s index when the phase has several', async () => {
    await expect(runHooks('createRuntime', { createRuntime: [sh('true'), sh('echo one >&2; echo two >&2; exit 1'), sh('true')] }, state)).rejects.toThrow(/^createRuntime hook \/bin\/sh \(#2 of 3\) exited 1: two$/);
    await expect(runHook('prestart', sh('kill -TERM $$'), state)).rejects.toThrow(/^prestart hook \/bin\/sh killed by SIGTERM$/);
    await expect(runHook('prestart', { path: '/no/such/hook' }, state)).rejects.toThrow(/^prestart hook \/no\/such\/hook: .*ENOENT/);
  });

  it('create runs prestart before createRuntime and stops at the first failure', async () => {
    const log = path.join(tmp, 'order');
    const rec = (label: string, rc = 0): { path: string; args: string[] } => sh(`echo ${label} >> ${log}; exit ${rc}`);
    await runCreateHooks({ createRuntime: [rec('c1'), rec('c2')], prestart: [rec('p1'), rec('p2')] }, state);
    expect(fs.readFileSync(log, 'utf8')).toBe('p1\np2\nc1\nc2\n');
    fs.rmSync(log);
    await expect(runCreateHooks({ createRuntime: [rec('c1')], prestart: [rec('p1'), rec('p2', 1), rec('p3')] }, state)).rejects.toThrow(/prestart hook .*#2 of 3/);
    expect(fs.readFileSync(log, 'utf8')).toBe('p1\np2\n');
  });
});
