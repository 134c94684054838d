/**
 * Configs of every runtime-spec release run, and the fields that came after 1.0.2 which runc
 * 1.1.5 lacks (so these are not differential tests) do what the spec says, read back from inside
 * the container: the time namespace with offsets, the init's I/O priority and scheduling policy,
 * the domain name.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kr, leftovers, requirePrerequisites, testEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('specver');
});
afterAll(() => env.cleanup());

type Json = Record<string, unknown>;
const linux = (s: Json): Json => s['linux'] as Json;
const proc = (s: Json): Json => s['process'] as Json;

describe('every released runtime-spec version', () => {
  for (const version of ['1.0.2', '1.1.0', '1.2.0', '1.2.1', '1.3.0']) {
    it(`a ${version} config runs and exits 0`, async () => {
      const b = env.bundle(`v${version}`, ['sh', '-c', 'echo ok'], (s) => void (s['ociVersion'] = version));
      const r = await kr(env.root, ['run', '-b', b, `v${version.replace(/\./g, '-')}`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toBe('ok\n');
      expect(leftovers(env)).toEqual([]);
    });
  }
});

describe('fields added after 1.0.2, read back in the container', () => {
  it('time namespace offsets, I/O priority, scheduler, domain name and CPU burst', async () => {
    const script = [
      'cat /proc/self/timens_offsets',
      'cut -d" " -f1 /proc/uptime',
      'ionice -p $$',
      // /proc/<pid>/stat fields 19 and 41: nice and scheduling policy (SCHED_BATCH is 3).
      'cut -d" " -f19,41 /proc/$$/stat',
      'cat /proc/sys/kernel/domainname',
      'cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.max.burst',
    ].join('; ');
    const b = env.bundle('newer', ['sh', '-c', script], (s) => {
      s['ociVersion'] = '1.3.0';
      (linux(s)['namespaces'] as Json[]).push({ type: 'time' });
      linux(s)['timeOffsets'] = { monotonic: { secs: 1000000, nanosecs: 0 }, boottime: { secs: 2000000, nanosecs: 5 } };
      proc(s)['ioPriority'] = { class: 'IOPRIO_CLASS_BE', priority: 6 };
      proc(s)['scheduler'] = { policy: 'SCHED_BATCH', nice: 5 };
      s['domainname'] = 'example.org';
      // crun 1.8.1 has no burst: the host turns it into unified cpu.max.burst.
      linux(s)['resources'] = { ...(linux(s)['resources'] as Json), cpu: { quota: 50000, period: 100000, burst: 20000 } };
    });
    const r = await kr(env.root, ['run', '-b', b, 'newer']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [monotonic, boottime, uptime, ionice, stat, domain, cpuMax, burst] = r.stdout.toString().trim().split('\n');
    expect(monotonic).toMatch(/^monotonic\s+1000000\s+0$/);
    expect(boottime).toMatch(/^boottime\s+2000000\s+5$/);
    // /proc/uptime is CLOCK_BOOTTIME in the container's time namespace.
    expect(Number(uptime)).toBeGreaterThanOrEqual(2000000);
    expect(Number(uptime)).toBeLessThan(2000000 + 3600);
    expect(ionice).toBe('best-effort: prio 6');
    expect(stat).toBe('5 3');
    expect(domain).toBe('example.org');
    expect([cpuMax, burst]).toEqual(['50000 100000', '20000']);
    expect(leftovers(env)).toEqual([]);
  });

  it('without them the init has the defaults (the readings above are not the guest\'s anyway)', async () => {
    const b = env.bundle('defaults', ['sh', '-c', 'ionice -p $$; cut -d" " -f19,41 /proc/$$/stat; cut -d" " -f1 /proc/uptime'], (s) => void (s['ociVersion'] = '1.3.0'));
    const r = await kr(env.root, ['run', '-b', b, 'defaults']);
    expect(r.code).toBe(0);
    const [ionice, stat, uptime] = r.stdout.toString().trim().split('\n');
    expect(ionice).not.toBe('best-effort: prio 6');
    expect(stat).toBe('0 0');
    expect(Number(uptime)).toBeLessThan(100000);
  });

  it('exec joins the container\'s time namespace; an exec --process with a scheduler is refused (crun exec would not apply it); update rewrites cpu.burst', async () => {
    const b = env.bundle('execsched', ['sleep', '60'], (s) => {
      s['ociVersion'] = '1.2.1';
      (linux(s)['namespaces'] as Json[]).push({ type: 'time' });
      linux(s)['timeOffsets'] = { monotonic: { secs: 86400, nanosecs: 0 } };
      proc(s)['scheduler'] = { policy: 'SCHED_IDLE' };
    });
    const c = await kr(env.root, ['run', '-d', '-b', b, 'execsched'], { detached: true });
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    const offsets = await kr(env.root, ['exec', 'execsched', 'cat', '/proc/self/timens_offsets']);
    expect(offsets.code).toBe(0);
    expect(offsets.stdout.toString()).toMatch(/^monotonic\s+86400\s+0\n/);
    // A plain exec does not inherit the init's scheduler (crun exec cannot set it): the guest's default.
    const policy = await kr(env.root, ['exec', 'execsched', 'sh', '-c', 'cut -d" " -f41 /proc/$$/stat; cut -d" " -f41 /proc/1/stat']);
    expect(policy.stdout.toString()).toBe('0\n5\n');
    const file = `${env.tmp}/process.json`;
    fs.writeFileSync(file, JSON.stringify({ args: ['true'], cwd: '/', scheduler: { policy: 'SCHED_IDLE' } }));
    const r = await kr(env.root, ['exec', '--process', file, 'execsched']);
    // exec's own failures exit 255, as runc's do.
    expect(r.code).toBe(255);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/process\.scheduler: is applied to a container's init only/);
    // update -r: cpu.burst is rewritten as for create.
    const res = `${env.tmp}/resources.json`;
    fs.writeFileSync(res, JSON.stringify({ cpu: { quota: 40000, period: 100000, burst: 30000 } }));
    const u = await kr(env.root, ['update', '-r', res, 'execsched']);
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    const burst = await kr(env.root, ['exec', 'execsched', 'cat', '/sys/fs/cgroup/cpu.max', '/sys/fs/cgroup/cpu.max.burst']);
    expect(burst.stdout.toString()).toBe('40000 100000\n30000\n');
    const d = await kr(env.root, ['delete', '--force', 'execsched']);
    expect(d.code).toBe(0);
  });
});
