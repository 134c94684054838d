import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCgroup, reclaimableCache } from '../../src/cgroups/host.js';
import { layoutFrom, parseMountinfo, parseProcCgroup } from '../../src/cgroups/layout.js';
import { checkMemoryUpdate, hostLimits, hostMemoryBytes, limitWrites, sharesToWeight, EXEC_HELPER_TASKS, VM_HOST_TASKS } from '../../src/cgroups/limits.js';
import { cleanPath, expandSlice, placeCgroup, systemdPath } from '../../src/cgroups/paths.js';

// This host's table (Debian 12 without systemd): v1 hierarchies, cpu and cpuacct apart, plus cgroup2.
const HYBRID_MI = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CG = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

// A systemd-style v1 host: cpu,cpuacct co-mounted (with symlinks), a hierarchy runc does not join (misc).
const V1_MI = `25 18 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/misc rw - cgroup cgroup rw,misc
33 25 0:30 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices
`;
const V1_CG = `6:devices:/user.slice
5:misc:/
4:pids:/user.slice/user-0.slice/session-1.scope
3:memory:/user.slice/user-0.slice/session-1.scope
2:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-0.slice/session-1.scope
`;

const V2_MI = `25 18 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
const V2_CG = '0::/user.slice/user-0.slice/session-1.scope\n';

const hybrid = layoutFrom(HYBRID_MI, HYBRID_CG);
const v1 = layoutFrom(V1_MI, V1_CG);
const v2 = layoutFrom(V2_MI, V2_CG);
const dirs = (p: ReturnType<typeof placeCgroup>): string[] => p.dirs.map((d) => d.dir);

describe('cgroup layout', () => {
  it('parses mountinfo, escapes included', () => {
    const m = parseMountinfo('40 31 0:37 / /sys/fs/cgroup/a\\040b rw,relatime shared:5 - cgroup cgroup rw,name=systemd\n');
    expect(m).toEqual([{ root: '/', mountpoint: '/sys/fs/cgroup/a b', fstype: 'cgroup', superOptions: ['rw', 'name=systemd'] }]);
  });

  it('parses /proc/self/cgroup, co-mounted controllers and cgroup2 included', () => {
    const own = parseProcCgroup(V1_CG + '0::/x\n');
    expect(own.get('cpu')).toBe('/user.slice');
    expect(own.get('cpuacct')).toBe('/user.slice');
    expect(own.get('name=systemd')).toBe('/user.slice/user-0.slice/session-1.scope');
    expect(own.get('')).toBe('/x');
  });

  it('tells hybrid, v1 and v2 apart, and lists the hierarchies runc joins', () => {
    expect(hybrid.mode).toBe('hybrid');
    expect(hybrid.hierarchies.map((h) => h.mountpoint.replace('/sys/fs/cgroup/', ''))).toEqual([
      'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd', 'unified',
    ]);
    expect(hybrid.hierarchies.at(-1)?.version).toBe(2);
    expect(v1.mode).toBe('v1');
    expect(v1.hierarchies.map((h) => h.subsystems.join(','))).toEqual(['name=systemd', 'cpu,cpuacct', 'memory', 'pids', 'devices']);
    expect(v2.mode).toBe('v2');
    expect(v2.hierarchies).toEqual([{ version: 2, subsystems: [], mountpoint: '/sys/fs/cgroup', root: '/' }]);
  });

  it('refuses a host without any cgroup hierarchy', () => {
    expect(() => layoutFrom('1 0 0:1 / / rw - ext4 /dev/sda rw\n', '')).toThrow(/no cgroup hierarchy/);
  });
});

describe('cgroupfs driver paths (runc 1.1.5)', () => {
  it('an absolute path is under every hierarchy, unified included (hybrid)', () => {
    expect(dirs(placeCgroup(hybrid, '/docker/abc', 'abc', 'cgroupfs'))).toEqual(
      ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd', 'unified'].map((h) => `/sys/fs/cgroup/${h}/docker/abc`),
    );
  });

  it("a relative path is under the caller's cgroup in v1, under the root of the hybrid cgroup2", () => {
    const d = dirs(placeCgroup(hybrid, 'libpod_parent/libpod-x', 'x', 'cgroupfs'));
    expect(d).toContain('/sys/fs/cgroup/memory/process_api/abc/libpod_parent/libpod-x');
    expect(d).toContain('/sys/fs/cgroup/cpu/libpod_parent/libpod-x');
    expect(d).toContain('/sys/fs/cgroup/unified/libpod_parent/libpod-x');
  });

  it("an empty path is the container's id, relative", () => {
    const d = dirs(placeCgroup(hybrid, undefined, 'c3', 'cgroupfs'));
    expect(d).toContain('/sys/fs/cgroup/memory/process_api/abc/c3');
    expect(d).toContain('/sys/fs/cgroup/pids/c3');
    expect(placeCgroup(hybrid, '', 'c3', 'cgroupfs').path).toBe('c3');
  });

  it('co-mounted controllers share one directory; unjoined hierarchies are skipped (v1)', () => {
    expect(dirs(placeCgroup(v1, '/default/x', 'x', 'cgroupfs'))).toEqual([
      '/sys/fs/cgroup/systemd/default/x', '/sys/fs/cgroup/cpu,cpuacct/default/x', '/sys/fs/cgroup/memory/default/x',
      '/sys/fs/cgroup/pids/default/x', '/sys/fs/cgroup/devices/default/x',
    ]);
    expect(dirs(placeCgroup(v1, 'rel', 'x', 'cgroupfs'))).toEqual([
      '/sys/fs/cgroup/systemd/user.slice/user-0.slice/session-1.scope/rel', '/sys/fs/cgroup/cpu,cpuacct/user.slice/rel',
      '/sys/fs/cgroup/memory/user.slice/user-0.slice/session-1.scope/rel', '/sys/fs/cgroup/pids/user.slice/user-0.slice/session-1.scope/rel',
      '/sys/fs/cgroup/devices/user.slice/rel',
    ]);
  });

  it("v2: absolute under the root, relative under the parent of the caller's cgroup", () => {
    expect(placeCgroup(v2, '/docker/abc', 'abc', 'cgroupfs').dirs).toEqual([{ dir: '/sys/fs/cgroup/docker/abc', version: 2, subsystems: [] }]);
    expect(dirs(placeCgroup(v2, 'rel/c', 'c', 'cgroupfs'))).toEqual(['/sys/fs/cgroup/user.slice/user-0.slice/rel/c']);
  });

  it('a mount inside a cgroup namespace (root not /) is taken into account for relative paths', () => {
    const l = layoutFrom('35 31 0:32 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n', '4:memory:/outer/inner\n');
    expect(dirs(placeCgroup(l, 'c', 'c', 'cgroupfs'))).toEqual(['/sys/fs/cgroup/memory/inner/c']);
  });

  it('cleans paths as runc does: nothing climbs out of its base', () => {
    expect(cleanPath('/a/../b/')).toBe('/b');
    expect(cleanPath('../../x')).toBe('x');
    expect(cleanPath('a//b/./c')).toBe('a/b/c');
    expect(dirs(placeCgroup(hybrid, '../../../etc', 'x', 'cgroupfs'))).toContain('/sys/fs/cgroup/pids/etc');
  });

  it('refuses the root of the hierarchy and the caller\'s own cgroup (runc would join them)', () => {
    expect(() => placeCgroup(hybrid, '/', 'x', 'cgroupfs')).toThrow('linux.cgroupsPath: "/" names the hierarchy\'s root, not a cgroup of the container\'s own');
    expect(() => placeCgroup(hybrid, '..', 'x', 'cgroupfs')).toThrow(/"\.\." names the caller's own cgroup/);
  });
});

describe('systemd driver paths', () => {
  it('expands slices like systemd', () => {
    expect(expandSlice('system.slice')).toBe('/system.slice');
    expect(expandSlice('machine-libpod_pod_1.slice')).toBe('/machine.slice/machine-libpod_pod_1.slice');
    expect(expandSlice('a-b-c.slice')).toBe('/a.slice/a-b.slice/a-b-c.slice');
    expect(expandSlice('-.slice')).toBe('/');
    for (const bad of ['foo', 'a--b.slice', '-a.slice', 'a/b.slice']) expect(() => expandSlice(bad)).toThrow(/invalid slice name/);
  });

  it('names the scope <prefix>-<name>.scope in the slice; a name ending in .slice is the unit', () => {
    expect(systemdPath('system.slice:docker:abc', 'abc')).toBe('/system.slice/docker-abc.scope');
    expect(systemdPath(':libpod:x', 'x')).toBe('/system.slice/libpod-x.scope');
    expect(systemdPath('machine.slice:crio:y', 'y')).toBe('/machine.slice/crio-y.scope');
    expect(systemdPath('kubepods.slice::kubepods-pod1.slice', 'z')).toBe('/kubepods.slice/kubepods-pod1.slice');
    expect(systemdPath('', 'id1')).toBe('/system.slice/runc-id1.scope');
  });

  it('refuses a path that is not slice:prefix:name, with runc\'s message', () => {
    expect(() => systemdPath('/docker/abc', 'abc')).toThrow('expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "/docker/abc" instead');
  });

  it('is under every hierarchy, as systemd would make it (hybrid and v2)', () => {
    const d = dirs(placeCgroup(hybrid, 'system.slice:docker:abc', 'abc', 'systemd'));
    expect(d).toContain('/sys/fs/cgroup/memory/system.slice/docker-abc.scope');
    expect(d).toContain('/sys/fs/cgroup/unified/system.slice/docker-abc.scope');
    expect(d).toHaveLength(10);
    expect(dirs(placeCgroup(v2, 'system.slice:docker:abc', 'abc', 'systemd'))).toEqual(['/sys/fs/cgroup/system.slice/docker-abc.scope']);
  });

  it('without --systemd-cgroup, slice:prefix:name is a relative path, as under runc', () => {
    expect(dirs(placeCgroup(hybrid, 'system.slice:docker:abc', 'abc', 'cgroupfs'))).toContain('/sys/fs/cgroup/pids/system.slice:docker:abc');
  });
});

describe('host limits', () => {
  const MiB = 1024 * 1024;
  const basis = { vmMemoryMiB: 384, memoryOverheadMiB: 128, hostMemoryOverheadMiB: 384 };

  it('memory: the container limit plus the VM overhead, at most the VM RAM, plus the host overhead', () => {
    expect(hostMemoryBytes(256 * MiB, basis)).toBe((256 + 128 + 384) * MiB);
    expect(hostMemoryBytes(100 * MiB + 1, basis)).toBe((101 + 128 + 384) * MiB);
    // The VM does not grow: a limit above its RAM is bounded by it.
    expect(hostMemoryBytes(4096 * MiB, basis)).toBe((384 + 384) * MiB);
    expect(hostMemoryBytes(-1, basis)).toBe('max');
  });

  it('translates linux.resources; zero and absent mean unset', () => {
    const r = { memory: { limit: 256 * MiB }, cpu: { quota: 50000, period: 100000, shares: 512, cpus: '0-1', mems: '0' }, pids: { limit: 100 } };
    expect(hostLimits(r, basis)).toEqual({
      memory: 768 * MiB, cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 512, cpus: '0-1', mems: '0', pids: VM_HOST_TASKS + 100 * EXEC_HELPER_TASKS,
    });
    expect(hostLimits({ memory: { limit: 0 }, cpu: { quota: 0, shares: 0, cpus: '' }, pids: { limit: 0 } }, basis)).toEqual({});
    expect(hostLimits({}, basis)).toEqual({});
    expect(hostLimits({ cpu: { quota: -1 }, pids: { limit: -1 }, memory: { limit: -1 } }, basis)).toEqual({ cpuQuota: 'max', pids: 'max', memory: 'max' });
  });

  it('an update changes only what it names', () => {
    expect(hostLimits({ memory: { limit: 128 * MiB } }, basis)).toEqual({ memory: (128 + 128 + 384) * MiB });
  });

  it('the pids budget fits the VM even for a tiny container limit', () => {
    expect(hostLimits({ pids: { limit: 1 } }, basis).pids).toBe(VM_HOST_TASKS + EXEC_HELPER_TASKS);
    expect(VM_HOST_TASKS).toBeGreaterThanOrEqual(64);
  });

  it('an update may not lower the memory limit below what the VM holds', () => {
    const l = hostLimits({ memory: { limit: 128 * MiB } }, basis); // 640 MiB on the host
    expect(() => checkMemoryUpdate(l, 700 * MiB)).toThrow('cannot lower the host memory limit to 640 MiB: the VM already holds 700 MiB of host memory');
    expect(() => checkMemoryUpdate(l, 640 * MiB)).not.toThrow();
    expect(() => checkMemoryUpdate(l, undefined)).not.toThrow();
    expect(() => checkMemoryUpdate({ memory: 'max' }, 700 * MiB)).not.toThrow();
    expect(() => checkMemoryUpdate({ cpuQuota: 1000 }, 700 * MiB)).not.toThrow();
  });

  it('converts shares to a cgroup v2 weight as runc does', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
  });

  it('writes v1 files by the hierarchy subsystems, period before quota', () => {
    const l = { memory: 768 * MiB, cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 512, cpus: '1', mems: '0', pids: 1728 } as const;
    const none = new Set<string>();
    expect(limitWrites(l, 1, ['memory'], none)).toEqual([{ file: 'memory.limit_in_bytes', value: String(768 * MiB) }]);
    expect(limitWrites(l, 1, ['cpu', 'cpuacct'], none)).toEqual([
      { file: 'cpu.cfs_period_us', value: '100000' }, { file: 'cpu.cfs_quota_us', value: '50000' }, { file: 'cpu.shares', value: '512' },
    ]);
    expect(limitWrites(l, 1, ['cpuset'], none)).toEqual([{ file: 'cpuset.cpus', value: '1' }, { file: 'cpuset.mems', value: '0' }]);
    expect(limitWrites(l, 1, ['pids'], none)).toEqual([{ file: 'pids.max', value: '1728' }]);
    expect(limitWrites(l, 1, ['name=systemd'], none)).toEqual([]);
    expect(limitWrites({ memory: 'max', cpuQuota: 'max', pids: 'max' }, 1, ['memory', 'cpu', 'pids'], none).map((w) => w.value)).toEqual(['-1', '-1', 'max']);
  });

  it('writes v2 files by the controllers available; none in a hybrid cgroup2', () => {
    const l = { memory: 768 * MiB, cpuQuota: 50000, cpuPeriod: 100000, cpuShares: 1024, cpus: '1', pids: 1728 } as const;
    expect(limitWrites(l, 2, [], new Set(['cpuset', 'cpu', 'memory', 'pids']))).toEqual([
      { file: 'cpuset.cpus', value: '1' },
      { file: 'memory.max', value: String(768 * MiB) },
      { file: 'cpu.weight', value: '39' },
      { file: 'cpu.max', value: '50000 100000' },
      { file: 'pids.max', value: '1728' },
    ]);
    expect(limitWrites(l, 2, [], new Set())).toEqual([]);
    expect(limitWrites({ cpuQuota: 'max' }, 2, [], new Set(['cpu']))).toEqual([{ file: 'cpu.max', value: 'max' }]);
    expect(limitWrites({ cpuPeriod: 50000 }, 2, [], new Set(['cpu']))).toEqual([{ file: 'cpu.max', value: 'max 50000' }]);
  });
});

describe('creating the directories', () => {
  it('makes missing ancestors, records them, fills a v1 cpuset from its parent and writes the limits', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-'));
    try {
      fs.writeFileSync(path.join(tmp, 'cpuset.cpus'), '0-1\n');
      fs.writeFileSync(path.join(tmp, 'cpuset.mems'), '0\n');
      const created: string[] = [];
      const leaf = path.join(tmp, 'docker', 'abc');
      createCgroup([{ dir: leaf, version: 1, subsystems: ['cpuset'] }], { cpus: '1' }, created);
      expect(created).toEqual([path.join(tmp, 'docker'), leaf]);
      expect(fs.readFileSync(path.join(tmp, 'docker', 'cpuset.cpus'), 'utf8')).toBe('0-1');
      expect(fs.readFileSync(path.join(leaf, 'cpuset.mems'), 'utf8')).toBe('0');
      expect(fs.readFileSync(path.join(leaf, 'cpuset.cpus'), 'utf8')).toBe('1');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('on failure removes what it made and says which write failed', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-'));
    try {
      const leaf = path.join(tmp, 'a', 'b');
      const created: string[] = [];
      // A directory where the limit file should be: the write fails (EISDIR).
      const bad = { dir: leaf, version: 1 as const, subsystems: ['pids'] };
      fs.mkdirSync(path.join(tmp, 'a'));
      fs.mkdirSync(leaf);
      fs.mkdirSync(path.join(leaf, 'pids.max'));
      const other = { dir: path.join(tmp, 'x', 'y'), version: 1 as const, subsystems: ['freezer'] };
      expect(() => createCgroup([other, bad], { pids: 5 }, created)).toThrow(/host cgroup: .*pids\.max = 5/);
      expect(created).toEqual([]);
      expect(fs.existsSync(path.join(tmp, 'x'))).toBe(false);
      expect(fs.existsSync(leaf)).toBe(true); // it existed before: not ours to remove here
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('memory the VM holds', () => {
  it('is the use less the file cache that is not shmem (guest RAM is a memfd)', () => {
    // v1, from this host after a container read a 600 MiB file through virtio-fs
    const v1 = 'cache 1\nrss 2\ntotal_cache 724615168\ntotal_rss 77369344\ntotal_shmem 324079616\ntotal_mapped_file 324079616\n';
    expect(reclaimableCache(v1, true)).toBe(724615168 - 324079616);
    expect(reclaimableCache('anon 5\nfile 300\nshmem 100\nfile_mapped 100\n', false)).toBe(200);
    expect(reclaimableCache('', true)).toBe(0);
  });
});
