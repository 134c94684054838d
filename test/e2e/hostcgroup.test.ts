/**
 * The container's cgroup on the host: where it is (as runc 1.1.5 places it), what is in it (the
 * monitor, QEMU, virtiofsd, exec helpers), its limits (sized for a VM), update, and that nothing
 * of it is left after delete, a monitor killed by SIGKILL, or a failed create.
 *
 * KATA_E2E_RUNTIME=runc runs the placement and cleanup cases under Debian's runc, the reference
 * for the layout; where the two differ on purpose (the limits hold a VM; parents we made are
 * removed too) the test says what each gives (docs/cli-compat.md).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eRuntime, kr, leftovers, requirePrerequisites, testEnv, waitForStatus, type TestEnv } from './helpers.js';

const runtime = e2eRuntime();
const kata = runtime === 'kata';
const MiB = 1024 * 1024;
/** A parent of our own in every hierarchy, so that a leftover is ours and easy to see. */
const PARENT = `kata-e2e-hostcg-${process.pid}`;

let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('hostcg', runtime);
});
afterAll(() => {
  env.cleanup();
  // runc leaves the parents it made (kata-runtime removes them): tidy up after it.
  for (const d of [...hierarchyDirs(`/${PARENT}`), ...hierarchyDirs(PARENT)]) if (fs.existsSync(d)) fs.rmdirSync(d);
});

/** The cgroup mounts of this host: the `/proc/<pid>/cgroup` controllers field → mount point. */
function mounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    const type = f[sep + 1];
    const mp = f[4];
    if (mp === undefined || (type !== 'cgroup' && type !== 'cgroup2')) continue;
    if (type === 'cgroup2') out.set('', mp);
    else {
      const opts = (f[sep + 3] ?? '').split(',').filter((o) => o !== 'rw' && o !== 'ro' && !o.startsWith('xattr'));
      out.set(opts.join(','), mp);
    }
  }
  return out;
}

/** `/proc/<pid>/cgroup` as controllers → path. */
function cgroupsOf(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^[0-9]+:([^:]*):(.*)$/.exec(line);
    if (m !== null) out.set(m[1] ?? '', m[2] ?? '');
  }
  return out;
}

/** A cgroup path (absolute, or relative to this process's cgroups as runc resolves it) in every hierarchy. */
function hierarchyDirs(p: string): string[] {
  const own = cgroupsOf(process.pid);
  return [...mounts()].map(([ctrls, mp]) => {
    if (p.startsWith('/') || ctrls === '') return path.join(mp, p); // runc: hybrid cgroup2 relative to its root
    return path.join(mp, own.get(ctrls) ?? '/', p);
  });
}

function procsIn(dir: string): number[] {
  return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
}

function read(dir: string, file: string): string {
  return fs.readFileSync(path.join(dir, file), 'utf8').trim();
}

function dirOf(ctrl: string, p: string): string {
  const mp = mounts().get(ctrl);
  if (mp === undefined) throw new Error(`no ${ctrl} hierarchy on this host`);
  return path.join(mp, p);
}

function withResources(cgroupsPath: string | undefined, resources: Record<string, unknown> = {}) {
  return (spec: Record<string, unknown>): void => {
    const linux = spec['linux'] as Record<string, unknown>;
    if (cgroupsPath === undefined) delete linux['cgroupsPath'];
    else linux['cgroupsPath'] = cgroupsPath;
    linux['resources'] = { ...(linux['resources'] as Record<string, unknown>), ...resources };
  };
}

async function created(id: string, cgroupsPath: string | undefined, resources?: Record<string, unknown>): Promise<number> {
  const b = env.bundle(id, ['sleep', '600'], withResources(cgroupsPath, resources));
  const r = await kr(env.root, ['create', '-b', b, id], { detached: true, runtime });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const st = await waitForStatus(env.root, id, 'created', 30000, runtime);
  return Number(st['pid']);
}

async function deleted(id: string): Promise<void> {
  const r = await kr(env.root, ['delete', '--force', id], { runtime });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

/** The host pids kata-runtime recorded for the VM. */
function vmPids(id: string): { monitor: number; qemu: number; virtiofsd: number } {
  const rec = JSON.parse(fs.readFileSync(path.join(env.root, id, 'state.json'), 'utf8')) as Record<string, number>;
  return { monitor: Number(rec['monitorPid']), qemu: Number(rec['qemuPid']), virtiofsd: Number(rec['virtiofsdPid']) };
}

/** The directories of `dirs` that exist. */
const existing = (dirs: string[]): string[] => dirs.filter((d) => fs.existsSync(d));

describe(`the container's cgroup on the host (${runtime})`, () => {
  it('an absolute cgroupsPath is joined in every hierarchy, the hybrid cgroup2 included; delete removes it', async () => {
    const p = `/${PARENT}/abs`;
    const pid = await created('abs', p);
    const cg = cgroupsOf(pid);
    expect([...cg.keys()].sort()).toEqual([...mounts().keys()].sort());
    for (const [ctrls, at] of cg) expect(`${ctrls}:${at}`).toBe(`${ctrls}:${p}`);
    const dirs = hierarchyDirs(p);
    expect(existing(dirs)).toEqual(dirs);
    if (kata) {
      // The VM's host processes: the monitor (the state's pid), QEMU and virtiofsd, in every hierarchy.
      const vm = vmPids('abs');
      expect(vm.monitor).toBe(pid);
      for (const d of dirs) expect(procsIn(d)).toEqual(expect.arrayContaining([vm.monitor, vm.qemu, vm.virtiofsd]));
    } else {
      for (const d of dirs) expect(procsIn(d)).toContain(pid);
    }
    await deleted('abs');
    expect(existing(dirs)).toEqual([]);
    // The parent was made for this container: kata-runtime removes it when empty, runc leaves it.
    expect(existing(hierarchyDirs(`/${PARENT}`)).length).toBe(kata ? 0 : dirs.length);
    expect(leftovers(env)).toEqual([]);
  });

  it("a relative cgroupsPath is under the caller's cgroups (the hybrid cgroup2: under its root), as runc puts it", async () => {
    const p = `${PARENT}/rel`;
    const pid = await created('rel', p);
    const own = cgroupsOf(process.pid);
    for (const [ctrls, at] of cgroupsOf(pid)) expect(`${ctrls}:${at}`).toBe(`${ctrls}:${path.join(ctrls === '' ? '/' : (own.get(ctrls) ?? '/'), p)}`);
    const dirs = hierarchyDirs(p);
    expect(existing(dirs)).toEqual(dirs);
    await deleted('rel');
    expect(existing(dirs)).toEqual([]);
  });

  it("no cgroupsPath: the container's id, relative", async () => {
    const id = `${PARENT}-noid`;
    const pid = await created(id, undefined);
    const own = cgroupsOf(process.pid);
    for (const [ctrls, at] of cgroupsOf(pid)) expect(at).toBe(path.join(ctrls === '' ? '/' : (own.get(ctrls) ?? '/'), id));
    await deleted(id);
    expect(existing(hierarchyDirs(id))).toEqual([]);
  });

  it('limits: memory, cpu, cpuset, pids; update --memory changes them on the host', async () => {
    const p = `/${PARENT}/lim`;
    await created('lim', p, { memory: { limit: 256 * MiB }, cpu: { quota: 50000, period: 100000, shares: 512, cpus: '0' }, pids: { limit: 100 } });
    const mem = dirOf('memory', p);
    const cpu = dirOf('cpu', p);
    // kata-runtime: the VM's RAM (256 + memory_overhead 128 MiB) + host_memory_overhead (384 MiB);
    // pids: 128 for the VM's threads + 16 per process the container may have. runc: the spec's.
    expect(Number(read(mem, 'memory.limit_in_bytes'))).toBe(kata ? (256 + 128 + 384) * MiB : 256 * MiB);
    expect(read(dirOf('pids', p), 'pids.max')).toBe(kata ? String(128 + 100 * 16) : '100');
    expect(read(cpu, 'cpu.cfs_quota_us')).toBe('50000');
    expect(read(cpu, 'cpu.cfs_period_us')).toBe('100000');
    expect(read(cpu, 'cpu.shares')).toBe('512');
    expect(read(dirOf('cpuset', p), 'cpuset.cpus')).toBe('0');
    // What the VM uses is charged here: an idle VM holds well over 64 MiB of host memory.
    if (kata) expect(Number(read(mem, 'memory.usage_in_bytes'))).toBeGreaterThan(64 * MiB);
    const u = await kr(env.root, ['update', '--memory', '128M', '--cpu-quota', '30000', 'lim'], { runtime });
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    expect(Number(read(mem, 'memory.limit_in_bytes'))).toBe(kata ? (128 + 128 + 384) * MiB : 128 * MiB);
    expect(read(cpu, 'cpu.cfs_quota_us')).toBe('30000');
    await deleted('lim');
    expect(existing(hierarchyDirs(p))).toEqual([]);
  });

  it('a limit the kernel refuses fails create with one line and leaves no cgroup', async () => {
    const p = `/${PARENT}/bad`;
    const b = env.bundle('bad', ['true'], withResources(p, { cpu: { mems: '7' } }));
    const r = await kr(env.root, ['create', '-b', b, 'bad'], { detached: true, runtime });
    expect(r.code).toBe(1);
    if (kata) expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/host cgroup: .*cpuset\.mems = 7/)]);
    expect(existing(hierarchyDirs(p))).toEqual([]);
    expect(leftovers(env)).toEqual([]);
  });
});

/** Neither the cgroup (an absolute path under PARENT) nor PARENT, which kata-runtime made, nor anything else. */
function expectNoCgroupLeft(p: string): void {
  expect(existing(hierarchyDirs(p))).toEqual([]);
  expect(existing(hierarchyDirs(`/${PARENT}`))).toEqual([]);
  expect(leftovers(env)).toEqual([]);
}

describe.runIf(kata)('the cgroup holds the VM, and goes with it', () => {
  it('--systemd-cgroup: slice:prefix:name becomes the scope systemd would make, managed as cgroupfs', async () => {
    const scope = `/system.slice/kata-e2e-${PARENT}-sd.scope`;
    const b = env.bundle('sd', ['sleep', '600'], withResources(`system.slice:kata-e2e:${PARENT}-sd`));
    const r = await kr(env.root, ['--systemd-cgroup', 'create', '-b', b, 'sd'], { detached: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pid = vmPids('sd').monitor;
    for (const [ctrls, at] of cgroupsOf(pid)) expect(`${ctrls}:${at}`).toBe(`${ctrls}:${scope}`);
    await deleted('sd');
    expect(existing(hierarchyDirs(scope))).toEqual([]);
    // A path that is not slice:prefix:name is refused with runc's message, and nothing is made.
    const bad = env.bundle('sdbad', ['true'], withResources(`/${PARENT}/sdbad`));
    const f = await kr(env.root, ['--systemd-cgroup', 'create', '-b', bad, 'sdbad'], { detached: true });
    expect(f.code).toBe(1);
    expect(f.stderr.trim().split('\n')).toEqual([`expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "/${PARENT}/sdbad" instead`]);
    expect(existing(hierarchyDirs(`/${PARENT}/sdbad`))).toEqual([]);
    expect(leftovers(env)).toEqual([]);
  });

  it('a failed create (prestart hook) removes the cgroup the monitor had joined', async () => {
    const p = `/${PARENT}/hookfail`;
    const b = env.bundle('hookfail', ['true'], (spec) => {
      withResources(p)(spec);
      spec['hooks'] = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', `cat /sys/fs/cgroup/memory${p}/cgroup.procs > ${env.tmp}/hookfail.procs; exit 3`] }] };
    });
    const r = await kr(env.root, ['create', '-b', b, 'hookfail'], { detached: true });
    expect(r.code).toBe(1);
    // The monitor was in it when the hook ran...
    expect(fs.readFileSync(path.join(env.tmp, 'hookfail.procs'), 'utf8').trim()).toMatch(/^[0-9]+$/);
    // ...and nothing is left.
    expectNoCgroupLeft(p);
  });

  it('kill -9 of the monitor, then delete --force: no cgroup left', async () => {
    const p = `/${PARENT}/crash`;
    await created('crash', p);
    const vm = vmPids('crash');
    process.kill(vm.monitor, 'SIGKILL');
    await waitForStatus(env.root, 'crash', 'stopped', 10000);
    await deleted('crash');
    expectNoCgroupLeft(p);
  });

  it('an exec --detach helper joins the cgroup, first in line for its OOM killer', async () => {
    const p = `/${PARENT}/exec`;
    await created('exec', p);
    expect((await kr(env.root, ['start', 'exec'])).code).toBe(0);
    const pidFile = path.join(env.tmp, 'exec.pid');
    const r = await kr(env.root, ['exec', '-d', '--pid-file', pidFile, 'exec', 'sleep', '300'], { detached: true });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const helper = Number(fs.readFileSync(pidFile, 'utf8'));
    for (const d of hierarchyDirs(p)) expect(procsIn(d)).toContain(helper);
    // A memory cgroup OOM takes the helper before QEMU.
    expect(fs.readFileSync(`/proc/${helper}/oom_score_adj`, 'utf8').trim()).toBe('1000');
    await deleted('exec');
    expect(existing(hierarchyDirs(p))).toEqual([]);
  });

  it('a container that fills its memory limit does not get its VM OOM-killed by the host', async () => {
    const p = `/${PARENT}/hog`;
    const b = env.bundle('hog', ['sh', '-c', 'cat /big >/dev/null; cat /big >/dev/null; echo done >/hog.done; sleep 600'], (spec) => {
      withResources(p, { memory: { limit: 256 * MiB } })(spec);
      (spec['root'] as Record<string, unknown>)['readonly'] = false;
    });
    // 600 MiB read twice through virtio-fs: the guest's page cache reuses all of its RAM.
    const big = fs.openSync(path.join(b, 'rootfs', 'big'), 'w');
    const chunk = Buffer.alloc(MiB, 7);
    for (let i = 0; i < 600; i++) fs.writeSync(big, chunk);
    fs.closeSync(big);
    expect((await kr(env.root, ['run', '-d', '-b', b, 'hog'], { detached: true })).code).toBe(0);
    const done = path.join(b, 'rootfs', 'hog.done');
    for (let i = 0; i < 1800 && !fs.existsSync(done); i++) await new Promise((res) => setTimeout(res, 100));
    expect(fs.existsSync(done)).toBe(true);
    const mem = dirOf('memory', p);
    // The guest's RAM was used (and is charged here), yet the host never had to kill anything.
    expect(Number(read(mem, 'memory.max_usage_in_bytes'))).toBeGreaterThan(300 * MiB);
    expect(read(mem, 'memory.oom_control')).toMatch(/oom_kill 0/);
    expect((await waitForStatus(env.root, 'hog', 'running', 5000))['status']).toBe('running');
    await deleted('hog');
    expect(existing(hierarchyDirs(p))).toEqual([]);
  });
});
