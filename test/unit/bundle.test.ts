import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AjvModule from 'ajv-draft-04';
import { afterAll, describe, expect, it } from 'vitest';
import { isKataError } from '../../src/errors.js';
import { configProblems, loadBundle, semanticProblems, unsupportedProblems } from '../../src/oci/bundle.js';
import { unknownCapabilities } from '../../src/oci/caps.js';
import { defaultSpec } from '../../src/oci/default-spec.js';
import type { Spec } from '../../src/oci/spec.js';
import { describeErrors, formatProblem, jsonPath, schemaErrors } from '../../src/oci/validate.js';

type Json = Record<string, unknown>;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-unit-bundle-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** runc's default spec (a private copy: defaultSpec shares its capability arrays), edited. */
function spec(edit: (s: Json) => void = () => undefined): Json {
  const s = structuredClone(defaultSpec(['true']));
  edit(s);
  return s;
}
const proc = (s: Json): Json => s['process'] as Json;
const linux = (s: Json): Json => s['linux'] as Json;
const semantic = (s: unknown): string[] => semanticProblems(s).map(formatProblem);
const unsupported = (s: unknown): string[] => unsupportedProblems(s).map(formatProblem);

describe('semantic checks, as a pure function of the config', () => {
  it('finds nothing wrong with runc\'s default spec', () => {
    expect(configProblems(spec())).toEqual({ invalid: [], unsupported: [] });
  });

  it('accepts what the engines write: systemd cgroup paths, netns paths, namespaced sysctls, seccomp errno defaults', () => {
    const s = spec((s) => {
      const l = linux(s);
      l['cgroupsPath'] = 'system.slice:docker:0123abcd';
      l['namespaces'] = [{ type: 'pid' }, { type: 'network', path: '/var/run/docker/netns/abc' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }];
      l['sysctl'] = { 'net.ipv4.ip_unprivileged_port_start': '0', 'net/ipv4/conf/eth0.100/rp_filter': '1', 'kernel.shmmax': '65536', 'fs.mqueue.msg_max': '10', 'kernel.domainname': 'x' };
      l['seccomp'] = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' }, { names: ['ptrace'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
      l['resources'] = {
        devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: true, type: 'a' }],
        memory: { limit: 268435456, swap: 536870912, reservation: -1 },
        cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0', mems: '0' },
        pids: { limit: -1 },
        unified: { 'memory.high': '200M', 'hugetlb.2MB.max': '0' },
      };
      l['devices'] = [{ type: 'c', path: '/dev/fuse', major: 10, minor: 229 }, { type: 'p', path: '/dev/fifo' }];
      proc(s)['oomScoreAdj'] = -999;
      proc(s)['selinuxLabel'] = 'system_u:system_r:container_t:s0';
      s['hooks'] = { prestart: [{ path: '/usr/bin/hook', env: ['A=1', 'EMPTY='], timeout: 5 }] };
      s['ociVersion'] = '1.1.0+dev';
      (s['mounts'] as Json[]).push({ destination: '/data', type: 'none', source: '/srv/data', options: ['rbind', 'ro'] });
    });
    expect(configProblems(s)).toEqual({ invalid: [], unsupported: [] });
  });

  it('a missing process, root, args or program', () => {
    expect(semantic(spec((s) => {
      delete s['process'];
      delete s['root'];
    }))).toEqual(['process: is required to create a container', 'root: is required']);
    expect(semantic(spec((s) => delete proc(s)['args']))).toEqual(['process.args: must name the program to run']);
    expect(semantic(spec((s) => void (proc(s)['args'] = [''])))).toEqual(['process.args.0: must not be empty: it is the program to run']);
  });

  it('relative paths where the spec requires absolute ones (a mount destination may be relative: runtime-spec 1.2.0)', () => {
    const s = spec((s) => {
      proc(s)['cwd'] = 'x';
      (s['mounts'] as Json[])[0] = { destination: 'proc', type: 'proc', source: 'proc' };
      linux(s)['maskedPaths'] = ['proc/kcore'];
      linux(s)['readonlyPaths'] = ['/proc/sys', 'sys'];
      linux(s)['devices'] = [{ type: 'c', path: 'dev/null', major: 1, minor: 3 }];
      (linux(s)['namespaces'] as Json[])[1] = { type: 'network', path: 'ns/net' };
      s['hooks'] = { startContainer: [{ path: 'bin/hook' }] };
    });
    expect(semantic(s)).toEqual([
      'process.cwd: must be an absolute path, got "x"',
      'hooks.startContainer.0.path: must be an absolute path, got "bin/hook"',
      'linux.namespaces.1.path: must be an absolute path, got "ns/net"',
      'linux.maskedPaths.0: must be an absolute path, got "proc/kcore"',
      'linux.readonlyPaths.1: must be an absolute path, got "sys"',
      'linux.devices.0.path: must be an absolute path, got "dev/null"',
    ]);
  });

  it('collects every problem, not just the first', () => {
    const s = spec((s) => {
      proc(s)['env'] = ['OK=1', 'BAD', '=empty'];
      proc(s)['rlimits'] = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }, { type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }, { type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }];
      proc(s)['capabilities'] = { bounding: ['CAP_KILL', 'CAP_NOPE'], inheritable: ['kill'] };
    });
    expect(semantic(s)).toEqual([
      'process.env.1: must be KEY=VALUE, got "BAD"',
      'process.env.2: has an empty name: "=empty"',
      'process.rlimits.0: soft limit 10 is above the hard limit 5',
      'process.rlimits.1.type: RLIMIT_NOFILE is set twice (also process.rlimits.0)',
      expect.stringMatching(/^process\.rlimits\.2\.type: unknown resource "RLIMIT_BOGUS" \(known: RLIMIT_AS, .*, RLIMIT_STACK\)$/),
    ]);
    // Unknown capabilities are warned about and left out, not refused (runtime-spec 1.1, runc).
    expect(unknownCapabilities(s as unknown as Spec)).toEqual(['CAP_NOPE', 'kill']);
  });

  it('namespaces: known, listed once; what needs which namespace', () => {
    const s = spec((s) => {
      linux(s)['namespaces'] = [{ type: 'pid' }, { type: 'pid' }, { type: 'mount' }, { type: 'time' }];
      linux(s)['uidMappings'] = [{ containerID: 0, hostID: 1000, size: 1 }];
      linux(s)['sysctl'] = { 'net.core.somaxconn': '1', 'kernel.msgmax': '1', 'kernel.domainname': 'x' };
    });
    expect(semantic(s)).toEqual([
      'hostname: setting it needs a uts namespace in linux.namespaces',
      'linux.namespaces.1.type: pid is listed twice (also linux.namespaces.0)',
      'linux.uidMappings: needs a user namespace in linux.namespaces',
      'linux.sysctl["net.core.somaxconn"]: needs a network namespace in linux.namespaces',
      'linux.sysctl["kernel.msgmax"]: needs an ipc namespace in linux.namespaces',
      'linux.sysctl["kernel.domainname"]: needs a uts namespace in linux.namespaces',
    ]);
    expect(semantic(spec((s) => void (linux(s)['namespaces'] = [{ type: 'uts' }, { type: 'bogus' }])))).toContain('linux.namespaces.1.type: unknown namespace type "bogus"');
  });

  it('sysctl names: well formed, namespaced, not the hostname', () => {
    const s = spec((s) => void (linux(s)['sysctl'] = { 'kernel.hostname': 'a', 'vm.overcommit_memory': '1', '.net.x': '1', 'net. x': '1', net: '1', 'net/ipv4//x': '1' }));
    expect(semantic(s)).toEqual([
      'linux.sysctl["kernel.hostname"]: conflicts with the hostname field: set that instead',
      'linux.sysctl["vm.overcommit_memory"]: is not namespaced: a container may not set it',
      'linux.sysctl[".net.x"]: is not a sysctl name such as net.ipv4.ip_forward',
      'linux.sysctl["net. x"]: is not a sysctl name such as net.ipv4.ip_forward',
      'linux.sysctl.net: is not a sysctl name such as net.ipv4.ip_forward',
      'linux.sysctl["net/ipv4//x"]: is not a sysctl name such as net.ipv4.ip_forward',
    ]);
  });

  it('resources: limits the kernel would refuse', () => {
    const s = spec((s) => {
      linux(s)['resources'] = {
        devices: [{ allow: true, type: 'z', access: 'rwq' }],
        memory: { limit: -5, kernel: -3 },
        cpu: { shares: 300000, quota: -2, period: 999, idle: 3, cpus: '0-', realtimeRuntime: 10, realtimePeriod: 5 },
        blockIO: { leafWeight: 1001, weightDevice: [{ major: 8, minor: 0, weight: 9 }] },
        unified: { memory: '1', 'memory.max': '1' },
      };
    });
    expect(semantic(s)).toEqual([
      'linux.resources.devices.0.type: must be one of a, b, c, got "z"',
      'linux.resources.memory.limit: must be -1 (unlimited) or a number of bytes, got -5',
      'linux.resources.memory.kernel: must be -1 (unlimited) or a number of bytes, got -3',
      'linux.resources.cpu.shares: must be between 2 and 262144 (or 0: unset), got 300000',
      'linux.resources.cpu.quota: must be at least 1000 microseconds (or -1: unlimited), got -2',
      'linux.resources.cpu.period: must be between 1000 and 1000000 microseconds, got 999',
      'linux.resources.cpu.idle: must be 0 or 1, got 3',
      'linux.resources.cpu.realtimeRuntime: must not exceed realtimePeriod 5, got 10',
      'linux.resources.cpu.cpus: must be a list such as 0-3,6, got "0-"',
      'linux.resources.blockIO.leafWeight: must be between 10 and 1000 (or 0: unset), got 1001',
      'linux.resources.blockIO.weightDevice.0.weight: must be between 10 and 1000 (or 0: unset), got 9',
      'linux.resources.unified.memory: must name a cgroup v2 interface file such as memory.max',
    ]);
    expect(semantic(spec((s) => void (linux(s)['resources'] = { memory: { limit: 100, swap: 50 } })))).toEqual([
      'linux.resources.memory.swap: is memory+swap and must not be below the memory limit 100, got 50',
    ]);
    expect(semantic(spec((s) => void (linux(s)['resources'] = { memory: { limit: -1, swap: 50 } })))).toEqual([
      'linux.resources.memory.swap: a memory+swap limit needs a memory limit (linux.resources.memory.limit)',
    ]);
    expect(semantic(spec((s) => void (linux(s)['resources'] = { memory: { limit: -1, swap: -1 }, cpu: { quota: -1, shares: 0, period: 0 } })))).toEqual([]);
  });

  it('devices, cgroupsPath, mounts, hooks, seccomp', () => {
    const s = spec((s) => {
      linux(s)['devices'] = [{ type: 'b', path: '/dev/sda', major: 8 }, { type: 'u', path: '/dev/sda', major: 8, minor: 0 }];
      linux(s)['cgroupsPath'] = 'user:prefix:name';
      (s['mounts'] as Json[]).push({ destination: '/x' }, { destination: '/y', options: ['bind'] });
      s['hooks'] = { poststop: [{ path: '/bin/true', env: ['NO_EQUALS'], timeout: -1 }] };
      linux(s)['seccomp'] = {
        defaultAction: 'SCMP_ACT_ALLOW',
        defaultErrnoRet: 1,
        syscalls: [{ names: ['', 'read'], action: 'SCMP_ACT_KILL', errnoRet: 2, args: [{ index: 9, value: 0, op: 'SCMP_CMP_EQ' }] }, { names: ['x'], action: 'SCMP_ACT_NOTIFY' }],
      };
    });
    expect(semantic(s)).toEqual([
      'mounts.7.type: is required unless options include bind or rbind',
      'mounts.8.source: a bind mount needs a source',
      'hooks.poststop.0.env.0: must be KEY=VALUE, got "NO_EQUALS"',
      'hooks.poststop.0.timeout: must be a number of seconds above 0, got -1',
      'linux.devices.0: a b device needs major and minor',
      'linux.devices.1.path: /dev/sda is listed twice (also linux.devices.0)',
      'linux.cgroupsPath: must be a path or systemd\'s slice:prefix:name, got "user:prefix:name"',
      'linux.seccomp.defaultErrnoRet: is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW',
      'linux.seccomp.syscalls.0.errnoRet: is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL',
      'linux.seccomp.syscalls.0.names.0: must not be empty',
      'linux.seccomp.syscalls.0.args.0.index: must be between 0 and 5 (a system call has six arguments), got 9',
      'linux.seccomp.listenerPath: is required when a syscall uses SCMP_ACT_NOTIFY',
    ]);
  });

  it('ociVersion: a SemVer version of major 1, else that is the only problem named', () => {
    for (const v of ['1.0.0', '1.0.2-dev', '1.0.0-rc.1+build.5', '1.2.0', '1.3.0', '1.4.0']) expect(configProblems(spec((s) => void (s['ociVersion'] = v)))).toEqual({ invalid: [], unsupported: [] });
    for (const v of ['v1.0.2', '1', '1.0', '01.0.0', '1.0.0-', '1.0.0+']) {
      const bad = spec((s) => {
        s['ociVersion'] = v;
        proc(s)['cwd'] = 'relative';
      });
      expect(configProblems(bad)).toEqual({ invalid: [{ path: 'ociVersion', message: `must be a SemVer version such as 1.0.2, got ${JSON.stringify(v)}` }], unsupported: [] });
    }
  });

  it('never throws on a config of the wrong shape (the schema reports those)', () => {
    const shapes: unknown[] = [
      null, [], 'x', 3, {}, { process: 'x', root: [], linux: 'y', mounts: {}, hooks: [] },
      { process: { args: 'x', env: [1, null], rlimits: [null, 3, { type: 1 }], capabilities: { bounding: 'x', ambient: [null] }, cwd: 5 } },
      { linux: { namespaces: [null, 'pid', { type: 3 }], sysctl: [], resources: { cpu: 'x', memory: [], devices: [3] }, seccomp: { syscalls: [null, { args: 'x' }] }, devices: [null] } },
      { mounts: [null, 3, { destination: 4, options: 'x' }], hooks: { prestart: [null, { path: 3, env: 'x' }] } },
    ];
    for (const s of shapes) expect(() => configProblems(s)).not.toThrow();
    expect(semantic(null)).toEqual([]);
  });
});

describe('unsupported in a VM', () => {
  it('joining namespaces other than the network one by path', () => {
    const s = spec((s) => {
      linux(s)['namespaces'] = [{ type: 'pid', path: '/proc/1/ns/pid' }, { type: 'network', path: '/run/netns/x' }, { type: 'mount', path: '/proc/1/ns/mnt' }, { type: 'uts' }];
    });
    expect(unsupported(s)).toEqual([
      'linux.namespaces.0: joining the host\'s pid namespace /proc/1/ns/pid is not possible from a VM',
      'linux.namespaces.2: joining the host\'s mount namespace /proc/1/ns/mnt is not possible from a VM',
    ]);
    expect(semantic(s)).toEqual([]);
  });

  it('host-side seccomp listeners, RDT, RDMA, id-mapped mounts, the vm section', () => {
    const s = spec((s) => {
      linux(s)['seccomp'] = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/l.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] };
      linux(s)['intelRdt'] = { l3CacheSchema: 'L3:0=f' };
      (linux(s)['resources'] as Json)['rdma'] = { mlx4_0: { hcaObjects: 1 } };
      (s['mounts'] as Json[]).push({ destination: '/d', type: 'bind', source: '/srv', options: ['rbind'], gidMappings: [{ containerID: 0, hostID: 1, size: 1 }] });
      s['vm'] = { kernel: { path: '/k' } };
    });
    expect(unsupported(s)).toEqual([
      'linux.resources.rdma: the VM has no RDMA devices (no rdma cgroup controller in the guest)',
      'vm: the hypervisor, kernel and image are chosen by the runtime configuration, not per container',
      'mounts.7.gidMappings: id-mapped mounts are not supported on the VM\'s shared filesystem (virtio-fs on the guest\'s Linux 6.1 cannot be id-mapped)',
      'linux.seccomp.listenerPath: a seccomp notification listener on the host cannot be reached from the VM',
      'linux.seccomp.syscalls.0.action: SCMP_ACT_NOTIFY: seccomp notifications go to a listener on the host, which the VM cannot reach',
      'linux.intelRdt: Intel RDT (resctrl) is not available in the VM',
    ]);
    expect(configProblems(s).invalid).toEqual([]);
  });

  it('what crun cannot apply to the guest\'s cgroup v2 hierarchy and block devices (AppArmor profiles are dropped, not refused)', () => {
    const s = spec((s) => {
      proc(s)['apparmorProfile'] = 'docker-default';
      linux(s)['resources'] = {
        memory: { limit: 1 << 26, kernel: 0, kernelTCP: -1, swappiness: 0, useHierarchy: false, disableOOMKiller: true, checkBeforeUpdate: true },
        cpu: { realtimePeriod: 1000000, realtimeRuntime: 0 },
        network: { classID: 1 },
        blockIO: { weight: 500, leafWeight: 500, throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 10 }] },
      };
    });
    expect(unsupported(s)).toEqual([
      'linux.resources.memory.kernel: the guest\'s cgroup v2 has no kernel memory limit',
      'linux.resources.memory.kernelTCP: the guest\'s cgroup v2 has no kernel TCP memory limit',
      'linux.resources.memory.swappiness: the guest\'s cgroup v2 has no per-cgroup swappiness',
      'linux.resources.memory.useHierarchy: the guest\'s cgroup v2 has no use_hierarchy switch (it is always hierarchical)',
      'linux.resources.memory.disableOOMKiller: the guest\'s cgroup v2 has no way to disable the OOM killer',
      'linux.resources.cpu.realtimePeriod: the guest\'s cgroup v2 has no real-time CPU limits',
      'linux.resources.network: the guest\'s cgroup v2 has no net_cls or net_prio controller (cgroup v1 only)',
      'linux.resources.blockIO.leafWeight: the guest\'s cgroup v2 has no leaf weight',
      'linux.resources.blockIO.throttleWriteIOPSDevice: names host block devices: the VM has none (its files come through virtio-fs)',
    ]);
    const unset = spec((s) => void (linux(s)['resources'] = { memory: { disableOOMKiller: false }, cpu: { realtimePeriod: 0, realtimeRuntime: 0 }, blockIO: { weight: 0 } }));
    expect(unsupported(unset)).toEqual([]);
  });
});

describe('schema and semantic problems together', () => {
  it('does not report a path twice: a schema error hides the semantic checks at or below it', () => {
    const s = spec((s) => {
      s['hooks'] = { prestart: [{ path: '/bin/true', timeout: 0 }] };
      linux(s)['namespaces'] = [{ type: 'uts' }, { type: 'mount' }, { type: 'bogus' }];
      linux(s)['seccomp'] = { defaultAction: 'SCMP_ACT_NOPE' };
    });
    expect(configProblems(s).invalid.map(formatProblem)).toEqual([
      'hooks.prestart.0.timeout: must be >= 1, got 0',
      'linux.namespaces.2.type: must be one of mount, pid, network, uts, ipc, user, cgroup, time, got "bogus"',
      expect.stringMatching(/^linux\.seccomp\.defaultAction: must be one of SCMP_ACT_KILL, .*, got "SCMP_ACT_NOPE"$/),
    ]);
  });

  it('schema problems come first, then the semantic ones', () => {
    const s = spec((s) => {
      proc(s)['cwd'] = 'rel';
      proc(s)['terminal'] = 1;
    });
    expect(configProblems(s).invalid.map(formatProblem)).toEqual(['process.terminal: must be boolean, got 1', 'process.cwd: must be an absolute path, got "rel"']);
  });
});

describe('schema messages', () => {
  it('name the path, what was expected and what was found', () => {
    const s = spec((s) => {
      proc(s)['rlimits'] = [{ type: 'core', soft: 1, hard: 1 }];
      linux(s)['devices'] = [{ type: 'q', path: '/dev/q' }];
      linux(s)['sysctl'] = { 'net/ipv4/ip_forward': true };
      (s['mounts'] as Json[]).push({ source: 'x' });
      s['annotations'] = { 'a~b': 3 };
    });
    expect(schemaErrors(s)).toEqual([
      'annotations["a~b"]: must be string, got 3',
      'mounts.7.destination: is required',
      'process.rlimits.0.type: must be an RLIMIT_ name in capitals such as RLIMIT_NOFILE, got "core"',
      'linux.devices.0.type: must be one of c, b, u, p, got "q"',
      'linux.sysctl["net/ipv4/ip_forward"]: must be string, got true',
    ]);
  });

  it('rootfsPropagation takes runc\'s values, recursive ones too (containerd writes rslave and rshared)', () => {
    for (const v of ['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable']) {
      expect(schemaErrors(spec((s) => void (linux(s)['rootfsPropagation'] = v))), v).toEqual([]);
    }
    expect(schemaErrors(spec((s) => void (linux(s)['rootfsPropagation'] = 'Rslave')))).toEqual([
      'linux.rootfsPropagation: must be one of private, shared, slave, unbindable, rprivate, rshared, rslave, runbindable, got "Rslave"',
    ]);
  });

  it('JSON paths quote keys that are not plain names', () => {
    expect(jsonPath([])).toBe('(root)');
    expect(jsonPath(['linux', 'namespaces', 3, 'type'])).toBe('linux.namespaces.3.type');
    expect(jsonPath(['linux', 'sysctl', 'net.ipv4.ip_forward'])).toBe('linux.sysctl["net.ipv4.ip_forward"]');
    expect(jsonPath(['annotations', 'a "b"'])).toBe('annotations["a \\"b\\""]');
    expect(jsonPath(['x y'])).toBe('["x y"]');
  });

  it('anyOf/oneOf: one alternative speaks for itself; several are summed up in one problem', () => {
    const ajv = new AjvModule.default({ strict: false, allErrors: true, verbose: true });
    const v = ajv.compile({
      type: 'object',
      properties: {
        single: { anyOf: [{ type: 'string' }] },
        either: { anyOf: [{ type: 'string' }, { type: 'object', required: ['path'] }] },
        one: { oneOf: [{ type: 'integer' }, { type: 'number' }] },
        strict: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false },
        list: { type: 'array', minItems: 2 },
        name: { type: 'string', pattern: '^[a-z]+$' },
        pair: { type: ['string', 'null'] },
      },
    });
    expect(v({ single: 1, either: {}, one: 3, strict: { a: 'x', b: 1 }, list: [1], name: 'A1', pair: 2 })).toBe(false);
    expect(describeErrors(v.errors)).toEqual([
      'single: must be string, got 1',
      'either: matches none of the 2 allowed forms (must be string, got an object | path: is required)',
      'one: matches 2 of the allowed forms (0 and 1), must match exactly one',
      'strict.b: is not allowed here',
      'list: must have at least 2 items',
      'name: must be a string matching /^[a-z]+$/, got "A1"',
      'pair: must be string or null, got 2',
    ]);
  });
});

describe('loadBundle', () => {
  function bundle(name: string, config: Json | string, rootfs = true): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    if (rootfs) fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    return dir;
  }
  function failure(dir: string): { code: string; message: string } {
    try {
      loadBundle(dir);
    } catch (e) {
      if (isKataError(e)) return { code: e.code, message: e.message };
      throw e;
    }
    throw new Error('loadBundle accepted the bundle');
  }

  it('returns the resolved bundle for a good config', () => {
    const dir = bundle('good', spec());
    const b = loadBundle(path.relative(process.cwd(), dir));
    expect(b).toMatchObject({ dir, rootfs: path.join(dir, 'rootfs') });
    expect(b.spec.process?.args).toEqual(['true']);
  });

  it('names every problem, host ones included, in one E_INVALID_BUNDLE', () => {
    const dir = bundle('bad', spec((s) => {
      proc(s)['args'] = [];
      (s['mounts'] as Json[]).push({ destination: '/d', type: 'bind', source: 'missing', options: ['rbind'] });
      linux(s)['namespaces'] = [{ type: 'pid', path: '/proc/1/ns/pid' }, { type: 'uts' }, { type: 'mount' }];
    }), false);
    const cfg = path.join(dir, 'config.json');
    expect(failure(dir)).toEqual({
      code: 'E_INVALID_BUNDLE',
      message: `${cfg}: process.args: must name the program to run; root.path: ${path.join(dir, 'rootfs')}: no such directory; mounts.7.source: ${path.join(dir, 'missing')}: no such file or directory; linux.namespaces.0: joining the host's pid namespace /proc/1/ns/pid is not possible from a VM`,
    });
  });

  it('a valid config it cannot honour is E_UNSUPPORTED', () => {
    const dir = bundle('unsup', spec((s) => void (s['vm'] = { kernel: { path: '/k' } })));
    expect(failure(dir)).toEqual({ code: 'E_UNSUPPORTED', message: `${path.join(dir, 'config.json')}: vm: the hypervisor, kernel and image are chosen by the runtime configuration, not per container` });
  });

  it('a missing directory, config or JSON syntax stops at once', () => {
    expect(failure(path.join(tmp, 'none'))).toEqual({ code: 'E_INVALID_BUNDLE', message: `bundle ${path.join(tmp, 'none')}: no such directory` });
    expect(failure(bundle('syntax', '{"ociVersion": '))).toMatchObject({ code: 'E_INVALID_BUNDLE', message: expect.stringMatching(/config\.json: invalid JSON: /) as unknown });
  });
});
