import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kr, leftovers, requirePrerequisites, testEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('res');
});
afterAll(() => env.cleanup());

/** MemTotal (MiB) and CPU count the guest kernel sees, and the container cgroup's memory.max. */
const probe = ['sh', '-c', 'echo $(( $(grep MemTotal /proc/meminfo | tr -s " " | cut -d" " -f2) / 1024 )) $(grep -c ^processor /proc/cpuinfo) $(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo none)'];

describe('the VM is sized for the container\'s resources', () => {
  it('a memory limit grows the VM by the limit plus the overhead; the cgroup gets the limit', async () => {
    const b = env.bundle('mem', probe, (spec) => {
      const linux = spec['linux'] as Record<string, unknown>;
      linux['resources'] = { ...(linux['resources'] as Record<string, unknown>), memory: { limit: 512 * 1024 * 1024 } };
    });
    const r = await kr(env.root, ['run', '-b', b, 'mem']);
    expect(r.code).toBe(0);
    const [memTotal, cpus, memMax] = r.stdout.toString().trim().split(' ');
    // 512 + 128 MiB overhead, less what the kernel reserves for itself
    expect(Number(memTotal)).toBeGreaterThan(560);
    expect(Number(memTotal)).toBeLessThanOrEqual(640);
    expect(cpus).toBe('1');
    expect(memMax).toBe(String(512 * 1024 * 1024));
  });

  it('a CPU quota gives as many vCPUs as it allows', async () => {
    const b = env.bundle('cpu', probe, (spec) => {
      const linux = spec['linux'] as Record<string, unknown>;
      linux['resources'] = { ...(linux['resources'] as Record<string, unknown>), cpu: { quota: 200000, period: 100000 } };
    });
    const r = await kr(env.root, ['run', '-b', b, 'cpu']);
    expect(r.code).toBe(0);
    const [memTotal, cpus] = r.stdout.toString().trim().split(' ');
    expect(cpus).toBe('2');
    expect(Number(memTotal)).toBeLessThanOrEqual(256);
  });

  it('a block IO weight reaches the container\'s io.weight (crun maps 10..1000 onto 1..10000)', async () => {
    const b = env.bundle('blkio', ['cat', '/sys/fs/cgroup/io.weight'], (spec) => {
      const linux = spec['linux'] as Record<string, unknown>;
      linux['resources'] = { ...(linux['resources'] as Record<string, unknown>), blockIO: { weight: 500 } };
    });
    const r = await kr(env.root, ['run', '-b', b, 'blkio']);
    expect(r.stderr.toString()).toBe('');
    expect(r.code).toBe(0);
    // 1 + (500 - 10) * 9999 / 990
    expect(r.stdout.toString().trim()).toBe('default 4950');
  });

  it('a hypervisor annotation that the configuration does not enable is refused', async () => {
    const b = env.bundle('annot', ['true'], (spec) => {
      spec['annotations'] = { 'io.katacontainers.config.hypervisor.default_memory': '1024' };
    });
    const r = await kr(env.root, ['run', '-b', b, 'annot']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/annotation io\.katacontainers\.config\.hypervisor\.default_memory is not enabled/);
    expect(leftovers(env)).toEqual([]);
  });
});

/** lchown of a whole tree (symlinks themselves, not their targets). */
function chownTree(p: string, uid: number, gid: number): void {
  fs.lchownSync(p, uid, gid);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

describe('a user namespace with a mapping other than the identity', () => {
  it('gives the container the same ids, file owners and permissions as runc', async () => {
    // What podman --uidmap 0:100000:65536 sends: the rootfs belongs to the mapped range (podman
    // chowns its copy), except /etc, left to host root; a bind mount of a host-root-owned directory.
    const data = path.join(env.tmp, 'userns-data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'f'), 'hi\n');
    const script = [
      'id',
      'cat /proc/self/uid_map /proc/self/gid_map',
      'stat -c "%u:%g %a %n" / /etc /etc/passwd /bin/busybox /data /data/f',
      'touch /made && stat -c "%u:%g %n" /made',
      'touch /etc/x',
      'echo hi > /data/g',
      'true',
    ].join('; ');
    const b = env.bundle('userns', ['sh', '-c', `{ ${script}; } 2>&1`], (spec) => {
      const linux = spec['linux'] as Record<string, unknown>;
      (linux['namespaces'] as { type: string }[]).push({ type: 'user' });
      linux['uidMappings'] = [{ containerID: 0, hostID: 100000, size: 65536 }];
      linux['gidMappings'] = [{ containerID: 0, hostID: 100000, size: 65536 }];
      (spec['root'] as Record<string, unknown>)['readonly'] = false;
      (spec['mounts'] as unknown[]).push({ destination: '/data', type: 'bind', source: data, options: ['rbind'] });
    });
    const rootfs = path.join(b, 'rootfs');
    fs.mkdirSync(path.join(rootfs, 'data'));
    chownTree(rootfs, 100000, 100000);
    fs.chownSync(path.join(rootfs, 'etc'), 0, 0);
    // runc needs the mapped root (host uid 100000) to search every directory above the rootfs
    // (with env.tmp at 0700 it fails: `mount <rootfs>: permission denied`); kata-runtime does not
    // look at the host path, but this is a bundle runc runs. Bind sources need no such thing.
    fs.chmodSync(env.tmp, 0o711);
    const r = await kr(env.root, ['run', '-b', b, 'userns']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Debian's runc 1.1.5 prints exactly this for the same bundle (checked by hand). Host root's
    // files are nobody's (65534) inside, the mapped range's are root's; a write lands as 100000.
    expect(r.stdout.toString()).toBe(
      [
        'uid=0(root) gid=0(root)',
        '         0     100000      65536',
        '         0     100000      65536',
        '0:0 755 /',
        '65534:65534 755 /etc',
        '0:0 644 /etc/passwd',
        '0:0 755 /bin/busybox',
        '65534:65534 755 /data',
        '65534:65534 644 /data/f',
        '0:0 /made',
        'touch: /etc/x: Permission denied',
        "sh: can't create /data/g: Permission denied",
        '',
      ].join('\n'),
    );
    const made = fs.statSync(path.join(rootfs, 'made'));
    expect([made.uid, made.gid]).toEqual([100000, 100000]);
    expect(leftovers(env)).toEqual([]);
  });
});
