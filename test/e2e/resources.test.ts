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
