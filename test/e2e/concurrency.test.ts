/**
 * Many CLI calls at once on one running container, as engines make them (a health check's exec,
 * docker's kill and pause, a user's delete): the container's lock (flock, src/util/lock.ts) and
 * the monitor keep it consistent. Every call ends in time (no deadlock), succeeds with nothing on
 * stderr or fails with exactly one line, state.json is never seen damaged, and the container's
 * final state is what the calls made of it.
 *
 * KATA_E2E_RUNTIME=runc runs the same file against Debian's runc.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eRuntime, kr, leftovers, requirePrerequisites, testEnv, waitForStatus, type Result, type TestEnv } from './helpers.js';

const runtime = e2eRuntime();
let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('conc', runtime);
});
afterAll(() => env.cleanup());

/** The burst: 20 calls, harmless to a running container, in an order that interleaves them. */
const CALLS = (id: string): string[][] => [
  ['state', id],
  ['kill', id, '0'],
  ['pause', id],
  ['exec', id, 'true'],
  ['kill', id, 'WINCH'],
  ['resume', id],
  ['delete', id],
  ['state', id],
  ['list'],
  ['pause', id],
  ['kill', id, 'CONT'],
  ['ps', id],
  ['resume', id],
  ['exec', id, 'sh', '-c', 'exit 0'],
  ['kill', id, '28'],
  ['pause', id],
  ['state', id],
  ['delete', id],
  ['resume', id],
  ['kill', id, 'SIGCONT'],
];

describe('20 concurrent CLI calls on one running container', () => {
  it('each ends in time with success or one clear line, and the container stays consistent', async () => {
    const id = 'busy';
    const b = env.bundle(id, ['sleep', '600']);
    expect((await kr(env.root, ['create', '--bundle', b, id], { detached: true, runtime })).code).toBe(0);
    expect((await kr(env.root, ['start', id], { runtime })).code).toBe(0);
    await waitForStatus(env.root, id, 'running', 10000, runtime);

    // Meanwhile, state.json is read as fast as we can: it must always parse (atomic writes).
    const stateFile = path.join(env.root, id, 'state.json');
    let reads = 0;
    let damaged = '';
    let watching = true;
    const watcher = (async (): Promise<void> => {
      while (watching) {
        try {
          JSON.parse(fs.readFileSync(stateFile, 'utf8'));
          reads++;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') damaged = String(e);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const started = Date.now();
    const calls = CALLS(id);
    const results = await Promise.all(calls.map((args) => kr(env.root, args, { runtime, timeoutMs: 150000 })));
    const took = Date.now() - started;
    // A pause that ran after the last resume leaves the container paused (and an exec that
    // started just before it waiting): resume it, as the user would.
    const st = JSON.parse((await kr(env.root, ['state', id], { runtime })).stdout.toString()) as { status: string };
    expect(['running', 'paused']).toContain(st.status);
    if (st.status === 'paused') expect((await kr(env.root, ['resume', id], { runtime })).code).toBe(0);
    watching = false;
    await watcher;
    expect(damaged).toBe('');
    expect(reads).toBeGreaterThan(0);

    const outcome = results.map((r: Result, i) => {
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      return { call: (calls[i] ?? []).join(' '), ok: r.code === 0, clean: r.code === 0 ? lines.length === 0 : r.code !== null && lines.length === 1, stderr: r.stderr };
    });
    for (const o of outcome) expect(o, JSON.stringify(o)).toMatchObject({ clean: true });
    // What must succeed whatever the interleaving: state, list, the harmless signals.
    for (const o of outcome.filter((x) => /^(state|list|kill) /.test(`${x.call} `))) expect(o, JSON.stringify(o)).toMatchObject({ ok: true });
    // delete without --force never removes a running (or paused) container.
    for (const o of outcome.filter((x) => x.call.startsWith('delete'))) expect(o.ok).toBe(false);
    expect(took).toBeLessThan(150000);

    // The container is intact: running, exec works, and it ends and goes away normally.
    await waitForStatus(env.root, id, 'running', 10000, runtime);
    const e = await kr(env.root, ['exec', id, 'echo', 'alive'], { runtime });
    expect([e.code, e.stdout.toString(), e.stderr]).toEqual([0, 'alive\n', '']);
    expect((await kr(env.root, ['kill', id, 'KILL'], { runtime })).code).toBe(0);
    await waitForStatus(env.root, id, 'stopped', 60000, runtime);
    // Signal 0 checks that the container is there: it no longer runs.
    const k0 = await kr(env.root, ['kill', id, '0'], { runtime });
    expect([k0.code, k0.stderr]).toEqual([1, expect.stringMatching(/^[^\n]*container not running[^\n]*\n$/)]);
    expect((await kr(env.root, ['delete', id], { runtime })).code).toBe(0);
    if (runtime === 'kata') expect(leftovers(env)).toEqual([]);
  });
});
