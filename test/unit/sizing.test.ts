import { describe, expect, it } from 'vitest';
import type { Spec } from '../../src/oci/spec.js';
import { annotationOverrides, cpusetCount, vmSize, type SizingConfig } from '../../src/vm/sizing.js';

const cfg: SizingConfig = { defaultMemoryMiB: 256, memoryOverheadMiB: 128, minMemoryMiB: 128, maxMemoryMiB: 4096, defaultVcpus: 1, maxVcpus: 4 };
const spec = (resources: Record<string, unknown> | undefined): Spec => ({ ociVersion: '1.0.2', linux: resources === undefined ? {} : { resources } });

describe('VM sizing from the container\'s resources', () => {
  it('uses the defaults without limits', () => {
    expect(vmSize(spec(undefined), cfg)).toMatchObject({ memoryMiB: 256, vcpus: 1, reason: 'defaults' });
  });

  it('memory: limit plus overhead, within bounds', () => {
    expect(vmSize(spec({ memory: { limit: 512 * 1024 * 1024 } }), cfg).memoryMiB).toBe(640);
    expect(vmSize(spec({ memory: { limit: 1 } }), cfg).memoryMiB).toBe(129);
    expect(vmSize(spec({ memory: { limit: 64 * 1024 ** 3 } }), cfg)).toMatchObject({ memoryMiB: 4096, reason: expect.stringMatching(/bounded to 4096/) as unknown });
    expect(vmSize(spec({ memory: { limit: -1 } }), cfg).memoryMiB).toBe(256);
  });

  it('cpus: quota over period, else the cpuset, within bounds', () => {
    expect(vmSize(spec({ cpu: { quota: 150000, period: 100000 } }), cfg).vcpus).toBe(2);
    expect(vmSize(spec({ cpu: { quota: 50000 } }), cfg).vcpus).toBe(1);
    expect(vmSize(spec({ cpu: { quota: 1600000, period: 100000 } }), cfg).vcpus).toBe(4);
    expect(vmSize(spec({ cpu: { cpus: '0-2' } }), cfg).vcpus).toBe(3);
    // CPU 1 must exist in the guest: two vCPUs
    expect(vmSize(spec({ cpu: { quota: -1, cpus: '1' } }), cfg).vcpus).toBe(2);
    expect(vmSize(spec({ cpu: { quota: 100000, period: 100000, cpus: '2' } }), cfg).vcpus).toBe(3);
    expect(() => vmSize(spec({ cpu: { cpus: '7' } }), cfg)).toThrow(/names CPU 7, but a VM has at most 4 vCPUs/);
  });

  it('counts cpuset lists', () => {
    expect(cpusetCount('0-3,6')).toBe(7);
    expect(cpusetCount('1,1,2')).toBe(3);
    expect(cpusetCount('0')).toBe(1);
    for (const bad of ['a', '3-1', '0-99999', '1;2']) expect(() => cpusetCount(bad)).toThrow(/cpu/);
  });
});

describe('hypervisor annotations', () => {
  const P = 'io.katacontainers.config.hypervisor.';
  it('honours only enabled keys', () => {
    expect(annotationOverrides({ [`${P}default_vcpus`]: '2', [`${P}default_memory`]: '512', other: 'x' }, ['default_vcpus', 'default_memory'])).toEqual({ vcpus: 2, memoryMiB: 512 });
    expect(annotationOverrides({ [`${P}kernel_params`]: 'a=1  b' }, ['.*'])).toEqual({ kernelParams: ['a=1', 'b'] });
    expect(() => annotationOverrides({ [`${P}default_vcpus`]: '2' }, [])).toThrow(/is not enabled/);
    expect(() => annotationOverrides({ [`${P}default_vcpus`]: '2' }, ['default_mem.*'])).toThrow(/is not enabled/);
  });

  it('rejects bad values and settings that cannot change per container', () => {
    expect(() => annotationOverrides({ [`${P}default_vcpus`]: 'two' }, ['.*'])).toThrow(/not a positive integer/);
    expect(() => annotationOverrides({ [`${P}default_memory`]: '0' }, ['.*'])).toThrow(/not a positive integer/);
    expect(() => annotationOverrides({ [`${P}path`]: '/evil/qemu' }, ['.*'])).toThrow(/cannot be changed per container/);
  });
});
