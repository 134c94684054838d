import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stateSchemaErrors } from '../../src/oci/validate.js';
import { kr, leftovers, requirePrerequisites, testEnv, waitForStatus as waitForStatusIn, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('life');
});
afterAll(() => env.cleanup());

const waitForStatus = (id: string, status: string, timeoutMs?: number): Promise<Record<string, unknown>> => waitForStatusIn(env.root, id, status, timeoutMs);

describe('a container runs in its own VM', () => {
  it('sees the guest kernel, not the host one', async () => {
    const b = env.bundle('uname', ['uname', '-r']);
    const r = await kr(env.root, ['run', '--bundle', b, 'uname']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const inside = r.stdout.toString().trim();
    expect(inside).not.toBe(os.release());
    const guestVersion = fs.readFileSync('/usr/local/share/kata-runtime/guest/kernel-version', 'utf8').trim();
    expect(inside).toBe(guestVersion);
    expect(leftovers(env)).toEqual([]);
  });

  it.each([0, 1, 42, 255])('run exits with the process\'s code %i', async (code) => {
    const b = env.bundle(`exit${code}`, ['sh', '-c', `exit ${code}`]);
    const r = await kr(env.root, ['run', '-b', b, `exit${code}`]);
    expect(r.code).toBe(code);
    expect(leftovers(env)).toEqual([]);
  });

  it('run exits 137 when the process is killed with SIGKILL', async () => {
    const b = env.bundle('killed', ['sleep', '600']);
    const running = kr(env.root, ['run', '-b', b, 'killed']);
    await waitForStatus('killed', 'running');
    const k = await kr(env.root, ['kill', 'killed', 'KILL']);
    expect(k.code).toBe(0);
    const r = await running;
    expect(r.code).toBe(137);
    expect(leftovers(env)).toEqual([]);
  });

  it('goes through create → start → kill → delete like runc', async () => {
    // PID 1 of a pid namespace ignores SIGTERM without a handler (under runc too): install one
    const b = env.bundle('cycle', ['sh', '-c', 'trap "exit 143" TERM; while true; do sleep 1; done'], (spec) => {
      spec['annotations'] = { 'org.example.k': 'v' };
    });
    const pidFile = path.join(env.tmp, 'cycle.pid');
    const c = await kr(env.root, ['create', '--bundle', b, '--pid-file', pidFile, 'cycle']);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    const pidText = fs.readFileSync(pidFile, 'utf8');
    expect(pidText).toMatch(/^[0-9]+$/);
    const pid = Number(pidText);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(true);

    const created = await waitForStatus('cycle', 'created', 1000);
    expect(created).toEqual({
      ociVersion: '1.0.2',
      id: 'cycle',
      pid,
      status: 'created',
      bundle: b,
      rootfs: path.join(b, 'rootfs'),
      created: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/),
      owner: '',
      annotations: { 'org.example.k': 'v' },
    });
    expect(stateSchemaErrors(created)).toEqual([]);

    const again = await kr(env.root, ['start', 'cycle']);
    expect(again.code).toBe(0);
    const running = await waitForStatus('cycle', 'running', 1000);
    expect(running['pid']).toBe(pid);
    expect((await kr(env.root, ['start', 'cycle'])).code).toBe(1); // start only from created

    const list = await kr(env.root, ['list', '--format', 'json']);
    const items = JSON.parse(list.stdout.toString()) as { id: string; status: string }[];
    expect(items.map((i) => [i.id, i.status])).toContainEqual(['cycle', 'running']);
    const table = (await kr(env.root, ['list'])).stdout.toString();
    expect(table).toMatch(/^cycle\s+\d+\s+running\s+/m);

    const del = await kr(env.root, ['delete', 'cycle']);
    expect(del.code).toBe(1); // running: needs --force
    expect(del.stderr).toMatch(/not stopped: running/);

    expect((await kr(env.root, ['kill', 'cycle'])).code).toBe(0); // SIGTERM by default
    const stopped = await waitForStatus('cycle', 'stopped', 30000);
    expect(stopped['pid']).toBe(0);
    const k2 = await kr(env.root, ['kill', 'cycle', 'KILL']);
    expect(k2.code).toBe(1);
    expect(k2.stderr).toMatch(/container not running/);

    expect((await kr(env.root, ['delete', 'cycle'])).code).toBe(0);
    expect((await kr(env.root, ['state', 'cycle'])).code).toBe(1);
    expect((await kr(env.root, ['delete', '--force', 'cycle'])).code).toBe(0); // already gone: silent
    expect(fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    expect(leftovers(env)).toEqual([]);
  });

  it('deletes a created container without --force', async () => {
    const b = env.bundle('created-del', ['true']);
    expect((await kr(env.root, ['create', '-b', b, 'created-del'])).code).toBe(0);
    expect((await kr(env.root, ['delete', 'created-del'])).code).toBe(0);
    expect(leftovers(env)).toEqual([]);
  });

  it('keeps what the container writes in its rootfs on the host', async () => {
    const b = env.bundle('writer', ['sh', '-c', 'echo written-in-the-vm > /tmp/out.txt'], (spec) => {
      (spec['root'] as Record<string, unknown>)['readonly'] = false;
    });
    const r = await kr(env.root, ['run', '-b', b, 'writer']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(b, 'rootfs', 'tmp', 'out.txt'), 'utf8')).toBe('written-in-the-vm\n');
  });

  it('runs three containers at once, each in its own VM', async () => {
    const ids = ['three-a', 'three-b', 'three-c'];
    const bundles = ids.map((id) =>
      env.bundle(id, ['sh', '-c', 'cat /proc/sys/kernel/random/boot_id > /boot_id; sleep 600'], (spec) => {
        (spec['root'] as Record<string, unknown>)['readonly'] = false;
      }),
    );
    const started = await Promise.all(ids.map((id, i) => kr(env.root, ['run', '-d', '-b', bundles[i] ?? '', id], { detached: true })));
    for (const r of started) expect(r.code).toBe(0);
    const states = await Promise.all(ids.map((id) => kr(env.root, ['state', id])));
    for (const r of states) expect(JSON.parse(r.stdout.toString())).toMatchObject({ status: 'running' });
    const bootIds = new Set<string>();
    for (const b of bundles) {
      const f = path.join(b, 'rootfs', 'boot_id');
      for (let i = 0; i < 300 && !fs.existsSync(f); i++) await new Promise((res) => setTimeout(res, 100));
      bootIds.add(fs.readFileSync(f, 'utf8').trim());
    }
    expect(bootIds.size).toBe(3);
    expect(bootIds.has(fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim())).toBe(false);
    await Promise.all(ids.map((id) => kr(env.root, ['delete', '--force', id])));
    expect(leftovers(env)).toEqual([]);
  });

  it('survives the monitor being killed: state says stopped, the VM goes, delete leaves nothing', async () => {
    const b = env.bundle('crash', ['sleep', '600']);
    expect((await kr(env.root, ['run', '-d', '-b', b, 'crash'], { detached: true })).code).toBe(0);
    const rec = JSON.parse(fs.readFileSync(path.join(env.root, 'crash', 'state.json'), 'utf8')) as Record<string, unknown>;
    const monitor = Number(rec['monitorPid']);
    const qemu = Number(rec['qemuPid']);
    expect(monitor).toBeGreaterThan(1);
    expect(qemu).toBeGreaterThan(1);
    process.kill(monitor, 'SIGKILL');
    await waitForStatus('crash', 'stopped', 10000);
    // QEMU and virtiofsd die with their monitor (parent-death signal), not only at delete.
    for (let i = 0; i < 50 && fs.existsSync(`/proc/${qemu}`); i++) await new Promise((res) => setTimeout(res, 100));
    expect(fs.existsSync(`/proc/${qemu}`)).toBe(false);
    expect((await kr(env.root, ['kill', 'crash', 'KILL'])).code).toBe(1);
    expect((await kr(env.root, ['delete', 'crash'])).code).toBe(0);
    expect(leftovers(env)).toEqual([]);
  });
});
