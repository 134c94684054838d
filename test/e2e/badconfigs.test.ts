/**
 * Malformed and unsupported config.json files, each through the real CLI's `create`: exit 1, one
 * stderr line that names every problem (`<bundle>/config.json: <problem>; <problem>`), one JSON
 * error line in --log, and nothing left behind. All of them fail before a VM is started.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSpec } from '../../src/oci/default-spec.js';
import { expectClean, kr, makeRootfs, requirePrerequisites, testEnv, type TestEnv } from './helpers.js';

type Json = Record<string, unknown>;

interface Case {
  name: string;
  /** Changes runc's default spec (running `true`); or `raw`: the whole config.json text. */
  edit?: (spec: Json, ctx: { tmp: string }) => void;
  raw?: string;
  /** The problems, in order, after `<bundle>/config.json: `. A function: computed from the case's temp dir. */
  expect: string | ((ctx: { tmp: string }) => string);
}

// Typed views into the spec being edited.
const proc = (s: Json): Json => s['process'] as Json;
const linux = (s: Json): Json => s['linux'] as Json;
const resources = (s: Json): Json => linux(s)['resources'] as Json;
const namespaces = (s: Json): Json[] => linux(s)['namespaces'] as Json[];
const mounts = (s: Json): Json[] => s['mounts'] as Json[];
const withoutNamespace = (s: Json, type: string): void => {
  linux(s)['namespaces'] = namespaces(s).filter((n) => n['type'] !== type);
};
const seccomp = (s: Json, v: Json): void => {
  linux(s)['seccomp'] = v;
};
const sysctl = (s: Json, v: Json): void => {
  linux(s)['sysctl'] = v;
};
const hooks = (s: Json, v: Json): void => {
  s['hooks'] = v;
};

const SCHEMA_NAMESPACES = 'mount, pid, network, uts, ipc, user, cgroup, time';
const NO_LISTENER = 'seccomp notifications go to a listener on the host, which the VM cannot reach';
const IDMAP = "id-mapped mounts are not supported on the VM's shared filesystem (virtio-fs on the guest's Linux 6.1 cannot be id-mapped)";
const NO_AFFINITY = "the container's CPUs are the VM's vCPUs, not host CPUs";
const NUMA = 'the VM has one NUMA node; host NUMA nodes cannot be named inside it (only mode MPOL_DEFAULT without nodes or flags, the default, is accepted: it is left out for crun)';
const NET_DEVICES = "moving a host network device into the container needs passing it through to the VM; not supported (the container gets the VM's mirror of its network namespace, docs/networking.md)";
const PLATFORM = 'this runtime runs Linux containers and would ignore it';
const NO_RELEASE = 'unknown field: no runtime-spec release 1.0.0–1.3.0 defines it';
/** Sets ociVersion and edits the spec: for fields of a later release. */
const at = (version: string, edit: (s: Json) => void) => (s: Json): void => {
  s['ociVersion'] = version;
  edit(s);
};
const withTime = (s: Json): void => void namespaces(s).push({ type: 'time' });

const KNOWN_RLIMITS = 'RLIMIT_AS, RLIMIT_CORE, RLIMIT_CPU, RLIMIT_DATA, RLIMIT_FSIZE, RLIMIT_LOCKS, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE, RLIMIT_NICE, RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_RSS, RLIMIT_RTPRIO, RLIMIT_RTTIME, RLIMIT_SIGPENDING, RLIMIT_STACK';

/** Breaks the runtime-spec schema. */
const schemaCases: Case[] = [
  { name: 'args is a string', edit: (s) => void (proc(s)['args'] = 'true'), expect: 'process.args: must be array, got "true"' },
  { name: 'no ociVersion', edit: (s) => void delete s['ociVersion'], expect: 'ociVersion: is required' },
  { name: 'ociVersion is a number', edit: (s) => void (s['ociVersion'] = 1), expect: 'ociVersion: must be string, got 1' },
  { name: 'no cwd', edit: (s) => void delete proc(s)['cwd'], expect: 'process.cwd: is required' },
  { name: 'root is a string', edit: (s) => void (s['root'] = 'rootfs'), expect: 'root: must be object, got "rootfs"' },
  { name: 'root without a path', edit: (s) => void (s['root'] = { readonly: true }), expect: 'root.path: is required' },
  { name: 'terminal is a string', edit: (s) => void (proc(s)['terminal'] = 'yes'), expect: 'process.terminal: must be boolean, got "yes"' },
  { name: 'negative uid', edit: (s) => void (proc(s)['user'] = { uid: -1, gid: 0 }), expect: 'process.user.uid: must be >= 0, got -1' },
  { name: 'fractional gid', edit: (s) => void (proc(s)['user'] = { uid: 0, gid: 1.5 }), expect: 'process.user.gid: must be integer, got 1.5' },
  { name: 'an env entry that is a number', edit: (s) => void (proc(s)['env'] = ['A=1', 42]), expect: 'process.env.1: must be string, got 42' },
  { name: 'mounts is an object', edit: (s) => void (s['mounts'] = { '/proc': 'proc' }), expect: 'mounts: must be array, got an object' },
  { name: 'a mount without a destination', edit: (s) => void mounts(s).push({ type: 'tmpfs', source: 'tmpfs' }), expect: 'mounts.7.destination: is required' },
  { name: 'an unknown namespace type', edit: (s) => void namespaces(s).push({ type: 'bogus' }), expect: `linux.namespaces.6.type: must be one of ${SCHEMA_NAMESPACES}, got "bogus"` },
  { name: 'a namespace given as a string', edit: (s) => void (namespaces(s) as unknown[]).push('user'), expect: 'linux.namespaces.6: must be object, got "user"' },
  { name: 'an rlimit in lower case', edit: (s) => void (proc(s)['rlimits'] = [{ type: 'nofile', soft: 1, hard: 1 }]), expect: 'process.rlimits.0.type: must be an RLIMIT_ name in capitals such as RLIMIT_NOFILE, got "nofile"' },
  { name: 'a negative rlimit', edit: (s) => void (proc(s)['rlimits'] = [{ type: 'RLIMIT_CORE', soft: 0, hard: -1 }]), expect: 'process.rlimits.0.hard: must be >= 0, got -1' },
  { name: 'an rlimit without soft', edit: (s) => void (proc(s)['rlimits'] = [{ type: 'RLIMIT_CORE', hard: 0 }]), expect: 'process.rlimits.0.soft: is required' },
  {
    name: 'an unknown seccomp default action',
    edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_NOPE' }),
    expect: 'linux.seccomp.defaultAction: must be one of SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY, got "SCMP_ACT_NOPE"',
  },
  { name: 'seccomp without a default action', edit: (s) => seccomp(s, { syscalls: [] }), expect: 'linux.seccomp.defaultAction: is required' },
  { name: 'a seccomp rule naming no syscall', edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }), expect: 'linux.seccomp.syscalls.0.names: must have at least 1 item' },
  {
    name: 'an unknown seccomp operator',
    edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 8, op: 'SCMP_CMP_LIKE' }] }] }),
    expect: 'linux.seccomp.syscalls.0.args.0.op: must be one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ, got "SCMP_CMP_LIKE"',
  },
  { name: 'a device of type x', edit: (s) => void (linux(s)['devices'] = [{ type: 'x', path: '/dev/x', major: 1, minor: 3 }]), expect: 'linux.devices.0.type: must be one of c, b, u, p, got "x"' },
  { name: 'a device file mode above 0777', edit: (s) => void (linux(s)['devices'] = [{ type: 'c', path: '/dev/x', major: 1, minor: 3, fileMode: 4095 }]), expect: 'linux.devices.0.fileMode: must be <= 512, got 4095' },
  { name: 'a hook timeout of 0', edit: (s) => hooks(s, { prestart: [{ path: '/bin/true', timeout: 0 }] }), expect: 'hooks.prestart.0.timeout: must be >= 1, got 0' },
  { name: 'a hook without a path', edit: (s) => hooks(s, { poststop: [{ args: ['true'] }] }), expect: 'hooks.poststop.0.path: is required' },
  { name: 'a hugepage size of 2X', edit: (s) => void (resources(s)['hugepageLimits'] = [{ pageSize: '2X', limit: 1 }]), expect: 'linux.resources.hugepageLimits.0.pageSize: must be a page size such as 2MB or 1GB, got "2X"' },
  // runc's set, wider than the schema's (rslave and rshared come from Kubernetes through containerd)
  { name: 'rootfs propagation recursive', edit: (s) => void (linux(s)['rootfsPropagation'] = 'recursive'), expect: 'linux.rootfsPropagation: must be one of private, shared, slave, unbindable, rprivate, rshared, rslave, runbindable, got "recursive"' },
  { name: 'a sysctl value that is a number', edit: (s) => sysctl(s, { 'net.ipv4.ip_forward': 1 }), expect: 'linux.sysctl["net.ipv4.ip_forward"]: must be string, got 1' },
  { name: 'an annotation value that is a number', edit: (s) => void (s['annotations'] = { 'org.example.n': 1 }), expect: 'annotations["org.example.n"]: must be string, got 1' },
  { name: 'a fractional memory limit', edit: (s) => void (resources(s)['memory'] = { limit: 1.5 }), expect: 'linux.resources.memory.limit: must be integer, got 1.5' },
  { name: 'pids without a limit', edit: (s) => void (resources(s)['pids'] = {}), expect: 'linux.resources.pids.limit: is required' },
  {
    name: 'a throttled device without a minor number',
    edit: (s) => void (resources(s)['blockIO'] = { throttleReadBpsDevice: [{ major: 8, rate: 1 }] }),
    expect: 'linux.resources.blockIO.throttleReadBpsDevice.0.minor: is required; linux.resources.blockIO.throttleReadBpsDevice: names host block devices: the VM has none (its files come through virtio-fs)',
  },
  { name: 'personality LINUX64', edit: (s) => void (linux(s)['personality'] = { domain: 'LINUX64' }), expect: 'linux.personality.domain: must be one of LINUX, LINUX32, got "LINUX64"' },
  { name: 'a config that is an array', raw: '[]', expect: '(root): must be object, got an array' },
  {
    name: 'several schema errors at once',
    edit: (s) => {
      s['hostname'] = 3;
      proc(s)['args'] = 'x';
      proc(s)['env'] = 'y';
    },
    expect: 'hostname: must be string, got 3; process.args: must be array, got "x"; process.env: must be array, got "y"',
  },
  // Fields of runtime-spec 1.1.0 … 1.3.0 (checked by the newest schemas whatever the version says).
  { name: 'an unknown I/O priority class', edit: at('1.1.0', (s) => void (proc(s)['ioPriority'] = { class: 'IOPRIO_CLASS_FOO' })), expect: 'process.ioPriority.class: must be one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, got "IOPRIO_CLASS_FOO"' },
  { name: 'an I/O priority without a class', edit: at('1.0.2-dev', (s) => void (proc(s)['ioPriority'] = { priority: 1 })), expect: 'process.ioPriority.class: is required' },
  {
    name: 'an unknown scheduling policy',
    edit: at('1.2.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_FOO' })),
    expect: 'process.scheduler.policy: must be one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE, got "SCHED_FOO"',
  },
  { name: 'a nice value that is a string', edit: at('1.1.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_OTHER', nice: '5' })), expect: 'process.scheduler.nice: must be integer, got "5"' },
  {
    name: 'an unknown scheduler flag',
    edit: at('1.1.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_OTHER', flags: ['SCHED_FLAG_FAST'] })),
    expect: 'process.scheduler.flags.0: must be one of SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN, SCHED_FLAG_KEEP_POLICY, SCHED_FLAG_KEEP_PARAMS, SCHED_FLAG_UTIL_CLAMP_MIN, SCHED_FLAG_UTIL_CLAMP_MAX, got "SCHED_FLAG_FAST"',
  },
  { name: 'a CPU affinity with letters', edit: at('1.2.1', (s) => void (proc(s)['execCPUAffinity'] = { initial: '0-3x' })), expect: `process.execCPUAffinity.initial: must be a CPU list such as 0-3,7, got "0-3x"; process.execCPUAffinity: ${NO_AFFINITY}` },
  { name: 'time offsets in seconds as a string', edit: at('1.1.0', (s) => { withTime(s); linux(s)['timeOffsets'] = { monotonic: { secs: '10' } }; }), expect: 'linux.timeOffsets.monotonic.secs: must be integer, got "10"' },
  { name: 'negative time offset nanoseconds', edit: at('1.1.0', (s) => { withTime(s); linux(s)['timeOffsets'] = { boottime: { nanosecs: -1 } }; }), expect: 'linux.timeOffsets.boottime.nanosecs: must be >= 0, got -1' },
  { name: 'an unknown memory policy mode', edit: at('1.3.0', (s) => void (linux(s)['memoryPolicy'] = { mode: 'MPOL_FOO' })), expect: `linux.memoryPolicy.mode: must be one of MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_LOCAL, got "MPOL_FOO"; linux.memoryPolicy: ${NUMA}` },
  { name: 'a network device that is not an object', edit: at('1.3.0', (s) => void (linux(s)['netDevices'] = { eth1: 'eth1' })), expect: `linux.netDevices.eth1: must be object, got "eth1"; linux.netDevices: ${NET_DEVICES}` },
  { name: 'a device file mode of 512 in a 1.3.0 config', edit: at('1.3.0', (s) => void (linux(s)['devices'] = [{ type: 'c', path: '/dev/x', major: 1, minor: 3, fileMode: 512 }])), expect: 'linux.devices.0.fileMode: must be <= 511, got 512' },
  // Versions and unknown fields.
  { name: 'ociVersion 2.0.0', edit: at('2.0.0', (s) => void (proc(s)['cwd'] = 'relative')), expect: 'ociVersion: runtime-spec 2.0.0 is not supported: this runtime implements 1.0.0 to 1.3.0 (major version 1)' },
  { name: 'ociVersion 0.9.0', edit: at('0.9.0', () => undefined), expect: 'ociVersion: runtime-spec 0.9.0 is not supported: this runtime implements 1.0.0 to 1.3.0 (major version 1)' },
  { name: 'an unknown field', edit: at('1.3.0', (s) => void (linux(s)['fooBar'] = true)), expect: `linux.fooBar: ${NO_RELEASE}` },
  { name: 'a misspelt field in a list', edit: at('1.0.2-dev', (s) => void (mounts(s)[0] = { ...mounts(s)[0], option: ['ro'] })), expect: `mounts.0.option: ${NO_RELEASE}` },
];

/** Valid for the schema, wrong for the runtime-spec or the kernel. */
const semanticCases: Case[] = [
  { name: 'no process', edit: (s) => void delete s['process'], expect: 'process: is required to create a container' },
  { name: 'empty args', edit: (s) => void (proc(s)['args'] = []), expect: 'process.args: must name the program to run' },
  { name: 'an empty program name', edit: (s) => void (proc(s)['args'] = ['', 'x']), expect: 'process.args.0: must not be empty: it is the program to run' },
  { name: 'a relative cwd', edit: (s) => void (proc(s)['cwd'] = 'tmp'), expect: 'process.cwd: must be an absolute path, got "tmp"' },
  { name: 'an env entry without =', edit: (s) => void (proc(s)['env'] = ['A=1', 'FOO']), expect: 'process.env.1: must be KEY=VALUE, got "FOO"' },
  { name: 'an env entry without a name', edit: (s) => void (proc(s)['env'] = ['=x']), expect: 'process.env.0: has an empty name: "=x"' },
  { name: 'an unknown rlimit', edit: (s) => void (proc(s)['rlimits'] = [{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }]), expect: `process.rlimits.0.type: unknown resource "RLIMIT_FOO" (known: ${KNOWN_RLIMITS})` },
  {
    name: 'an rlimit set twice',
    edit: (s) => void (proc(s)['rlimits'] = [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }, { type: 'RLIMIT_NOFILE', soft: 2, hard: 2 }]),
    expect: 'process.rlimits.1.type: RLIMIT_NOFILE is set twice (also process.rlimits.0)',
  },
  { name: 'a soft rlimit above the hard one', edit: (s) => void (proc(s)['rlimits'] = [{ type: 'RLIMIT_NOFILE', soft: 4096, hard: 1024 }]), expect: 'process.rlimits.0: soft limit 4096 is above the hard limit 1024' },
  { name: 'oomScoreAdj 2000', edit: (s) => void (proc(s)['oomScoreAdj'] = 2000), expect: 'process.oomScoreAdj: must be between -1000 and 1000, got 2000' },
  { name: 'no root', edit: (s) => void delete s['root'], expect: 'root: is required' },
  { name: 'an empty root path', edit: (s) => void (s['root'] = { path: '' }), expect: 'root.path: must not be empty' },
  { name: 'a mount with neither a type nor bind', edit: (s) => void mounts(s).push({ destination: '/data', source: 'tmpfs' }), expect: 'mounts.7.type: is required unless options include bind or rbind' },
  { name: 'a bind mount without a source', edit: (s) => void mounts(s).push({ destination: '/data', type: 'bind', options: ['rbind'] }), expect: 'mounts.7.source: a bind mount needs a source' },
  { name: 'a namespace listed twice', edit: (s) => void namespaces(s).push({ type: 'pid' }), expect: 'linux.namespaces.6.type: pid is listed twice (also linux.namespaces.0)' },
  { name: 'a relative network namespace path', edit: (s) => void (namespaces(s)[1] = { type: 'network', path: 'netns' }), expect: 'linux.namespaces.1.path: must be an absolute path, got "netns"' },
  { name: 'a hostname without a uts namespace', edit: (s) => withoutNamespace(s, 'uts'), expect: 'hostname: setting it needs a uts namespace in linux.namespaces' },
  {
    name: 'a domainname without a uts namespace',
    edit: (s) => {
      withoutNamespace(s, 'uts');
      delete s['hostname'];
      s['domainname'] = 'example.org';
    },
    expect: 'domainname: setting it needs a uts namespace in linux.namespaces',
  },
  { name: 'uid mappings without a user namespace', edit: (s) => void (linux(s)['uidMappings'] = [{ containerID: 0, hostID: 100000, size: 65536 }]), expect: 'linux.uidMappings: needs a user namespace in linux.namespaces' },
  {
    name: 'an empty gid mapping',
    edit: (s) => {
      namespaces(s).push({ type: 'user' });
      linux(s)['uidMappings'] = [{ containerID: 0, hostID: 100000, size: 65536 }];
      linux(s)['gidMappings'] = [{ containerID: 0, hostID: 100000, size: 0 }];
    },
    expect: 'linux.gidMappings.0.size: must be at least 1',
  },
  { name: 'a relative masked path', edit: (s) => void (linux(s)['maskedPaths'] = ['/proc/kcore', 'proc/keys']), expect: 'linux.maskedPaths.1: must be an absolute path, got "proc/keys"' },
  {
    name: 'read-only paths without a mount namespace',
    edit: (s) => {
      withoutNamespace(s, 'mount');
      delete linux(s)['maskedPaths'];
    },
    expect: 'linux.readonlyPaths: needs a mount namespace in linux.namespaces',
  },
  { name: 'a relative device path', edit: (s) => void (linux(s)['devices'] = [{ type: 'c', path: 'dev/null', major: 1, minor: 3 }]), expect: 'linux.devices.0.path: must be an absolute path, got "dev/null"' },
  { name: 'a character device without numbers', edit: (s) => void (linux(s)['devices'] = [{ type: 'c', path: '/dev/x' }]), expect: 'linux.devices.0: a c device needs major and minor' },
  {
    name: 'a device listed twice',
    edit: (s) => void (linux(s)['devices'] = [{ type: 'p', path: '/dev/fifo' }, { type: 'p', path: '/dev/fifo' }]),
    expect: 'linux.devices.1.path: /dev/fifo is listed twice (also linux.devices.0)',
  },
  { name: 'a device rule of type x', edit: (s) => void (resources(s)['devices'] = [{ allow: true, type: 'x', access: 'rwm' }]), expect: 'linux.resources.devices.0.type: must be one of a, b, c, got "x"' },
  { name: 'a cgroupsPath with only slice:prefix', edit: (s) => void (linux(s)['cgroupsPath'] = 'system.slice:docker'), expect: 'linux.cgroupsPath: must be a path or systemd\'s slice:prefix:name, got "system.slice:docker"' },
  { name: 'a memory limit of -2', edit: (s) => void (resources(s)['memory'] = { limit: -2 }), expect: 'linux.resources.memory.limit: must be -1 (unlimited) or a number of bytes, got -2' },
  { name: 'swap without a memory limit', edit: (s) => void (resources(s)['memory'] = { swap: 1073741824 }), expect: 'linux.resources.memory.swap: a memory+swap limit needs a memory limit (linux.resources.memory.limit)' },
  {
    name: 'swap below the memory limit',
    edit: (s) => void (resources(s)['memory'] = { limit: 268435456, swap: 134217728 }),
    expect: 'linux.resources.memory.swap: is memory+swap and must not be below the memory limit 268435456, got 134217728',
  },
  { name: 'cpu shares of 1', edit: (s) => void (resources(s)['cpu'] = { shares: 1 }), expect: 'linux.resources.cpu.shares: must be between 2 and 262144 (or 0: unset), got 1' },
  { name: 'a cpu quota of 500 µs', edit: (s) => void (resources(s)['cpu'] = { quota: 500, period: 100000 }), expect: 'linux.resources.cpu.quota: must be at least 1000 microseconds (or -1: unlimited), got 500' },
  { name: 'a cpu period of 5 s', edit: (s) => void (resources(s)['cpu'] = { quota: 100000, period: 5000000 }), expect: 'linux.resources.cpu.period: must be between 1000 and 1000000 microseconds, got 5000000' },
  { name: 'a descending cpuset', edit: (s) => void (resources(s)['cpu'] = { cpus: '3-1' }), expect: 'linux.resources.cpu.cpus: must be a list such as 0-3,6, got "3-1"' },
  { name: 'a cpuset mems list with a letter', edit: (s) => void (resources(s)['cpu'] = { mems: '0,a' }), expect: 'linux.resources.cpu.mems: must be a list such as 0-3,6, got "0,a"' },
  {
    name: 'a realtime runtime above its period',
    edit: (s) => void (resources(s)['cpu'] = { realtimePeriod: 1000000, realtimeRuntime: 2000000 }),
    expect: "linux.resources.cpu.realtimeRuntime: must not exceed realtimePeriod 1000000, got 2000000; linux.resources.cpu.realtimePeriod: the guest's cgroup v2 has no real-time CPU limits; linux.resources.cpu.realtimeRuntime: the guest's cgroup v2 has no real-time CPU limits",
  },
  { name: 'a block IO weight of 5', edit: (s) => void (resources(s)['blockIO'] = { weight: 5 }), expect: 'linux.resources.blockIO.weight: must be between 10 and 1000 (or 0: unset), got 5' },
  { name: 'a unified key with a slash', edit: (s) => void (resources(s)['unified'] = { 'memory/max': '1G' }), expect: 'linux.resources.unified["memory/max"]: must name a cgroup v2 interface file such as memory.max' },
  { name: 'a sysctl that is not namespaced', edit: (s) => sysctl(s, { 'vm.swappiness': '10' }), expect: 'linux.sysctl["vm.swappiness"]: is not namespaced: a container may not set it' },
  {
    name: 'a network sysctl without a network namespace',
    edit: (s) => {
      withoutNamespace(s, 'network');
      sysctl(s, { 'net.ipv4.ip_forward': '1' });
    },
    expect: 'linux.sysctl["net.ipv4.ip_forward"]: needs a network namespace in linux.namespaces',
  },
  {
    name: 'an IPC sysctl without an ipc namespace',
    edit: (s) => {
      withoutNamespace(s, 'ipc');
      sysctl(s, { 'kernel/shmmax': '65536' });
    },
    expect: 'linux.sysctl["kernel/shmmax"]: needs an ipc namespace in linux.namespaces',
  },
  { name: 'the kernel.hostname sysctl', edit: (s) => sysctl(s, { 'kernel.hostname': 'x' }), expect: 'linux.sysctl["kernel.hostname"]: conflicts with the hostname field: set that instead' },
  { name: 'a malformed sysctl name', edit: (s) => sysctl(s, { 'net..ipv4': '1' }), expect: 'linux.sysctl["net..ipv4"]: is not a sysctl name such as net.ipv4.ip_forward' },
  { name: 'SCMP_ACT_NOTIFY as the default action', edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_NOTIFY' }), expect: 'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action' },
  {
    name: 'an errno return on an allow rule',
    edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] }),
    expect: 'linux.seccomp.syscalls.0.errnoRet: is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW',
  },
  {
    name: 'a seccomp notification without a listener',
    edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }),
    expect: `linux.seccomp.listenerPath: is required when a syscall uses SCMP_ACT_NOTIFY; linux.seccomp.syscalls.0.action: SCMP_ACT_NOTIFY: ${NO_LISTENER}`,
  },
  {
    name: 'a seccomp argument index of 6',
    edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['ioctl'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }),
    expect: 'linux.seccomp.syscalls.0.args.0.index: must be between 0 and 5 (a system call has six arguments), got 6',
  },
  { name: 'a relative hook path', edit: (s) => hooks(s, { createRuntime: [{ path: 'true' }] }), expect: 'hooks.createRuntime.0.path: must be an absolute path, got "true"' },
  { name: 'a hook env entry without =', edit: (s) => hooks(s, { poststart: [{ path: '/bin/true', env: ['PATH'] }] }), expect: 'hooks.poststart.0.env.0: must be KEY=VALUE, got "PATH"' },
  { name: 'ociVersion 1.0', edit: (s) => void (s['ociVersion'] = '1.0'), expect: 'ociVersion: must be a SemVer version such as 1.0.2, got "1.0"' },
  { name: 'time offsets without a time namespace', edit: at('1.1.0', (s) => void (linux(s)['timeOffsets'] = { monotonic: { secs: 10 } })), expect: 'linux.timeOffsets: needs a time namespace in linux.namespaces' },
  { name: 'time offset nanoseconds of a whole second', edit: at('1.1.0', (s) => { withTime(s); linux(s)['timeOffsets'] = { monotonic: { nanosecs: 1000000000 } }; }), expect: 'linux.timeOffsets.monotonic.nanosecs: must be below one second (0 … 999999999), got 1000000000' },
  { name: 'an I/O priority of 8', edit: at('1.1.0', (s) => void (proc(s)['ioPriority'] = { class: 'IOPRIO_CLASS_BE', priority: 8 })), expect: 'process.ioPriority.priority: must be between 0 (highest) and 7 (lowest), got 8' },
  { name: 'a nice value of 20', edit: at('1.1.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_OTHER', nice: 20 })), expect: 'process.scheduler.nice: must be between -20 and 19 for SCHED_OTHER, got 20' },
  { name: 'SCHED_FIFO without a priority', edit: at('1.1.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_FIFO' })), expect: 'process.scheduler.priority: must be between 1 and 99 for SCHED_FIFO, got 0' },
  { name: 'a deadline runtime for SCHED_BATCH', edit: at('1.1.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_BATCH', runtime: 1000 })), expect: 'process.scheduler.runtime: is only meaningful with SCHED_DEADLINE, not SCHED_BATCH' },
  { name: 'a CPU burst above the quota', edit: (s) => void (resources(s)['cpu'] = { quota: 10000, period: 100000, burst: 50000 }), expect: 'linux.resources.cpu.burst: must not exceed cpu.quota 10000, got 50000' },
  {
    name: 'every problem at once, schema and semantic',
    edit: (s) => {
      proc(s)['cwd'] = 'work';
      proc(s)['terminal'] = 'no';
      namespaces(s).push({ type: 'ipc' });
      sysctl(s, { 'fs.file-max': '1000' });
    },
    expect: 'process.terminal: must be boolean, got "no"; process.cwd: must be an absolute path, got "work"; linux.namespaces.6.type: ipc is listed twice (also linux.namespaces.2); linux.sysctl["fs.file-max"]: is not namespaced: a container may not set it',
  },
];

/** Problems only the host can show: a missing root filesystem or bind mount source. */
const hostCases: Case[] = [
  {
    name: 'a missing bind mount source',
    edit: (s, { tmp }) => void mounts(s).push({ destination: '/data', type: 'bind', source: path.join(tmp, 'gone'), options: ['rbind', 'ro'] }),
    expect: ({ tmp }) => `mounts.7.source: ${path.join(tmp, 'gone')}: no such file or directory`,
  },
  {
    name: 'a missing root filesystem, with a config problem',
    edit: (s, { tmp }) => {
      s['root'] = { path: path.join(tmp, 'no-rootfs') };
      proc(s)['cwd'] = '.';
    },
    expect: ({ tmp }) => `process.cwd: must be an absolute path, got "."; root.path: ${path.join(tmp, 'no-rootfs')}: no such directory`,
  },
];

/** Valid, but a container in a VM cannot have it (E_UNSUPPORTED). */
const unsupportedCases: Case[] = [
  { name: 'joining a pid namespace', edit: (s) => void (namespaces(s)[0] = { type: 'pid', path: '/proc/1/ns/pid' }), expect: 'linux.namespaces.0: joining the host\'s pid namespace /proc/1/ns/pid is not possible from a VM' },
  { name: 'joining an ipc namespace', edit: (s) => void (namespaces(s)[2] = { type: 'ipc', path: '/proc/1/ns/ipc' }), expect: 'linux.namespaces.2: joining the host\'s ipc namespace /proc/1/ns/ipc is not possible from a VM' },
  {
    name: 'joining a user namespace',
    edit: (s) => void namespaces(s).push({ type: 'user', path: '/proc/1/ns/user' }),
    expect: 'linux.namespaces.6: joining the host\'s user namespace /proc/1/ns/user is not possible from a VM',
  },
  {
    name: 'a seccomp notification listener',
    edit: (s) => seccomp(s, { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/seccomp.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }),
    expect: `linux.seccomp.listenerPath: a seccomp notification listener on the host cannot be reached from the VM; linux.seccomp.syscalls.0.action: SCMP_ACT_NOTIFY: ${NO_LISTENER}`,
  },
  { name: 'a kernel memory limit', edit: (s) => void (resources(s)['memory'] = { limit: 67108864, kernel: 33554432 }), expect: "linux.resources.memory.kernel: the guest's cgroup v2 has no kernel memory limit" },
  { name: 'a swappiness of 0', edit: (s) => void (resources(s)['memory'] = { swappiness: 0 }), expect: "linux.resources.memory.swappiness: the guest's cgroup v2 has no per-cgroup swappiness" },
  { name: 'useHierarchy, even false', edit: (s) => void (resources(s)['memory'] = { useHierarchy: false }), expect: "linux.resources.memory.useHierarchy: the guest's cgroup v2 has no use_hierarchy switch (it is always hierarchical)" },
  { name: 'an OOM killer turned off', edit: (s) => void (resources(s)['memory'] = { limit: 67108864, disableOOMKiller: true }), expect: "linux.resources.memory.disableOOMKiller: the guest's cgroup v2 has no way to disable the OOM killer" },
  { name: 'a network class id', edit: (s) => void (resources(s)['network'] = { classID: 1048577 }), expect: "linux.resources.network: the guest's cgroup v2 has no net_cls or net_prio controller (cgroup v1 only)" },
  {
    name: 'a read throttle on a host disk',
    edit: (s) => void (resources(s)['blockIO'] = { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }] }),
    expect: 'linux.resources.blockIO.throttleReadBpsDevice: names host block devices: the VM has none (its files come through virtio-fs)',
  },
  { name: 'Intel RDT', edit: (s) => void (linux(s)['intelRdt'] = { closID: 'guaranteed' }), expect: 'linux.intelRdt: Intel RDT (resctrl) is not available in the VM' },
  { name: 'an RDMA limit', edit: (s) => void (resources(s)['rdma'] = { mlx5_0: { hcaHandles: 3 } }), expect: 'linux.resources.rdma: the VM has no RDMA devices (no rdma cgroup controller in the guest)' },
  { name: 'an exec CPU affinity', edit: at('1.2.1', (s) => void (proc(s)['execCPUAffinity'] = { initial: '0', final: '1' })), expect: `process.execCPUAffinity: ${NO_AFFINITY}` },
  { name: 'SCHED_ISO', edit: at('1.1.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_ISO' })), expect: 'process.scheduler.policy: SCHED_ISO: Linux has no SCHED_ISO policy' },
  {
    name: 'a host network device',
    edit: at('1.3.0', (s) => void (linux(s)['netDevices'] = { eth1: { name: 'eth0' } })),
    expect: `linux.netDevices: ${NET_DEVICES}`,
  },
  {
    name: 'a NUMA memory policy',
    edit: at('1.3.0', (s) => void (linux(s)['memoryPolicy'] = { mode: 'MPOL_BIND', nodes: '0-1' })),
    expect: `linux.memoryPolicy: ${NUMA}`,
  },
  { name: 'Intel RDT schemata', edit: at('1.3.0', (s) => void (linux(s)['intelRdt'] = { schemata: ['L3:0=f'], enableMonitoring: true })), expect: 'linux.intelRdt: Intel RDT (resctrl) is not available in the VM' },
  { name: 'an idmap mount option', edit: at('1.2.0', (s) => void (mounts(s)[1] = { ...mounts(s)[1], options: ['nosuid', 'idmap'] })), expect: `mounts.1.options.1: idmap: ${IDMAP}` },
  {
    name: 'nosymfollow',
    edit: at('1.1.0', (s) => void (mounts(s)[1] = { ...mounts(s)[1], options: ['nosuid', 'nosymfollow'] })),
    expect: "mounts.1.options.1: nosymfollow: the guest's crun 1.8.1 does not know it: it would reach the filesystem as mount data (and be ignored on a bind mount)",
  },
  {
    name: 'a seccomp architecture the guest\'s libseccomp lacks',
    edit: at('1.2.1', (s) => seccomp(s, { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_LOONGARCH64'] })),
    expect: "linux.seccomp.architectures.1: SCMP_ARCH_LOONGARCH64: the guest's libseccomp 2.5.4 does not know this architecture (crun would fail the create); a VM of this machine's architecture cannot run its binaries anyway",
  },
  { name: 'a windows section', edit: (s) => void (s['windows'] = { layerFolders: ['C:\\layers'] }), expect: `windows: a section for Windows: ${PLATFORM}` },
  { name: 'a freebsd section', edit: at('1.3.0', (s) => void (s['freebsd'] = { jail: { vnet: 'new' } })), expect: `freebsd: a section for FreeBSD: ${PLATFORM}` },
  { name: 'an unknown field in a config newer than this runtime', edit: at('1.4.0', (s) => void (linux(s)['fooBar'] = 1)), expect: `linux.fooBar: ${NO_RELEASE} (the config is for 1.4.0, newer than this runtime knows)` },
  { name: 'a per-container VM section', edit: (s) => void (s['vm'] = { kernel: { path: '/boot/vmlinuz' } }), expect: 'vm: the hypervisor, kernel and image are chosen by the runtime configuration, not per container' },
  {
    name: 'an id-mapped bind mount',
    edit: (s, { tmp }) => void mounts(s).push({ destination: '/data', type: 'bind', source: tmp, options: ['rbind'], uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] }),
    expect: `mounts.7.uidMappings: ${IDMAP}`,
  },
  {
    name: 'an unsupported setting next to an invalid one (both named)',
    edit: (s) => {
      namespaces(s)[0] = { type: 'pid', path: '/proc/1/ns/pid' };
      proc(s)['args'] = [];
    },
    expect: 'process.args: must name the program to run; linux.namespaces.0: joining the host\'s pid namespace /proc/1/ns/pid is not possible from a VM',
  },
];

const cases = [...schemaCases, ...semanticCases, ...hostCases, ...unsupportedCases];

let suite: TestEnv;
let rootfs: string;
const envs: TestEnv[] = [];
beforeAll(() => {
  requirePrerequisites();
  suite = testEnv('badcfg');
  rootfs = path.join(suite.tmp, 'rootfs');
  makeRootfs(rootfs);
});
afterAll(() => {
  for (const e of envs) e.cleanup();
  suite.cleanup();
});

describe(`${cases.length} bad configs: create exits 1 with one line naming every problem, before any VM starts`, () => {
  it('has at least 60 cases, each with its own name', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  // Each case has its own --root and temp dir, so that leftovers() speaks of that case alone and
  // the cases can run side by side.
  it.concurrent.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const env = testEnv(`badcfg${i}`);
    envs.push(env);
    const bundle = path.join(env.tmp, 'bundle');
    fs.mkdirSync(bundle);
    let text = c.raw;
    if (text === undefined) {
      const spec = structuredClone(defaultSpec(['true']));
      spec['root'] = { path: rootfs, readonly: true };
      c.edit?.(spec, { tmp: env.tmp });
      text = JSON.stringify(spec, null, 2);
    }
    fs.writeFileSync(path.join(bundle, 'config.json'), text);
    const log = path.join(env.tmp, 'log.json');
    const r = await kr(env.root, ['--log', log, '--log-format', 'json', 'create', '--bundle', bundle, `bad${i}`], { timeoutMs: 60000 });
    const problems = typeof c.expect === 'function' ? c.expect({ tmp: env.tmp }) : c.expect;
    const line = `${path.join(bundle, 'config.json')}: ${problems}`;
    expect(r.stderr.trim()).toBe(line);
    expectClean(env, r, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), log);
  });
});
