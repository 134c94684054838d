/**
 * runtime-spec versions: which schema set checks which ociVersion, fields of later releases,
 * unknown fields, the table of post-1.0.2 fields (complete against the schema additions), the
 * guest translation and `features`.
 */
import fs from 'node:fs';
import path from 'node:path';
import AjvModule from 'ajv-draft-04';
import { describe, expect, it } from 'vitest';
import { SPEC_VERSION } from '../../src/cli/render.js';
import { configProblems } from '../../src/oci/bundle.js';
import { defaultSpec } from '../../src/oci/default-spec.js';
import { features } from '../../src/oci/features.js';
import { FIELDS, matches, type FieldRule } from '../../src/oci/fields.js';
import { BASE, NEWEST_RELEASE, additions, newestRelease, releaseFor, schemaPaths, schemaSet, unknownFields } from '../../src/oci/schemas.js';
import { GUEST_OCI_VERSION, TRANSLATIONS, toGuestPlan, translateResources } from '../../src/oci/translate.js';
import { formatProblem, schemaVerdict } from '../../src/oci/validate.js';
import { execProcessRefusals } from '../../src/runtime/exec.js';

const Ajv = AjvModule.default;
type Json = Record<string, unknown>;

function spec(version: string, edit: (s: Json) => void = () => undefined): Json {
  const s = structuredClone(defaultSpec(['true'])) as unknown as Json;
  s['ociVersion'] = version;
  edit(s);
  return s;
}
const linux = (s: Json): Json => s['linux'] as Json;
const proc = (s: Json): Json => s['process'] as Json;
const lines = (s: Json): { invalid: string[]; unsupported: string[] } => {
  const p = configProblems(s);
  return { invalid: p.invalid.map(formatProblem), unsupported: p.unsupported.map(formatProblem) };
};

describe('which schema set checks a config', () => {
  it('follows ociVersion: pre-releases come before their release', () => {
    const cases: [string, string][] = [
      ['1.0.0', BASE], ['1.0.1', BASE], ['1.0.2', BASE], ['1.0.2-dev', BASE], ['1.0.0-rc5', BASE], ['1.1.0-rc.1', BASE], ['1.1.0-rc.3', BASE],
      ['1.1.0', '1.1.0'], ['1.1.1', '1.1.0'], ['1.1.0+dev', '1.1.0'], ['1.2.0', '1.1.0'], ['1.2.1-dev', '1.1.0'],
      ['1.2.1', '1.2.1'], ['1.2.2', '1.2.1'], ['1.3.0-rc.1', '1.2.1'], ['1.3.0', '1.3.0'], ['1.3.5', '1.3.0'], ['1.4.0', '1.3.0'], ['1.10.0', '1.3.0'],
    ];
    for (const [version, release] of cases) expect([version, releaseFor(version)]).toEqual([version, { release, newer: ['1.3.5', '1.4.0', '1.10.0'].includes(version) }]);
  });

  it('another major or no SemVer: one problem, nothing else is judged', () => {
    for (const v of ['2.0.0', '0.9.0', '0.1.0']) {
      expect(lines(spec(v, (s) => void (proc(s)['cwd'] = 'relative')))).toEqual({
        invalid: [`ociVersion: runtime-spec ${v} is not supported: this runtime implements 1.0.0 to 1.3.0 (major version 1)`],
        unsupported: [],
      });
    }
    expect(lines(spec('0.9'))).toEqual({ invalid: ['ociVersion: must be a SemVer version such as 1.0.2, got "0.9"'], unsupported: [] });
  });

  it('the addition files are 1.1.0, 1.2.1, 1.3.0, each with a comment; the newest is what we report', () => {
    expect(additions().map((a) => a.release)).toEqual(['1.1.0', '1.2.1', '1.3.0']);
    for (const a of additions()) expect(a.comment).toMatch(new RegExp(`runtime-spec ${a.release.replace(/\./g, '\\.')}`));
    expect(newestRelease()).toBe(NEWEST_RELEASE);
    expect(SPEC_VERSION).toBe(NEWEST_RELEASE);
  });

  it('builds each set cumulatively: 1.2.1 has 1.1.0\'s fields, the base has neither', () => {
    const has = (release: string, p: string): boolean => schemaPaths(schemaSet(release)).has(p);
    expect([has(BASE, 'process.ioPriority'), has('1.1.0', 'process.ioPriority'), has('1.2.1', 'process.ioPriority')]).toEqual([false, true, true]);
    expect([has('1.1.0', 'process.execCPUAffinity'), has('1.2.1', 'process.execCPUAffinity'), has('1.3.0', 'process.execCPUAffinity')]).toEqual([false, true, true]);
    expect([has('1.2.1', 'linux.memoryPolicy.mode'), has('1.3.0', 'linux.memoryPolicy.mode')]).toEqual([false, true]);
    // A field a later release drops stays known: an older config may have it.
    expect(has('1.3.0', 'linux.intelRdt.enableCMT')).toBe(true);
    expect(has('1.3.0', 'zos.devices')).toBe(true);
  });

  it('1.3.0\'s restriction applies from 1.3.0 on only: fileMode 512 is fine in 1.2.1, not in 1.3.0', () => {
    const dev = (v: string): Json => spec(v, (s) => void (linux(s)['devices'] = [{ type: 'c', path: '/dev/x', major: 1, minor: 3, fileMode: 512 }]));
    expect(lines(dev('1.2.1')).invalid).toEqual([]);
    expect(lines(dev('1.3.0')).invalid).toEqual(['linux.devices.0.fileMode: must be <= 511, got 512']);
  });
});

/** One example of each field a release after Debian's base added, with a valid value. */
const NEWER: { since: string; edit: (s: Json) => void; broken: (s: Json) => void; problem: string }[] = [
  {
    since: '1.1.0',
    edit: (s) => {
      (linux(s)['namespaces'] as Json[]).push({ type: 'time' });
      linux(s)['timeOffsets'] = { monotonic: { secs: -5, nanosecs: 9 }, boottime: { secs: 100 } };
    },
    broken: (s) => {
      (linux(s)['namespaces'] as Json[]).push({ type: 'time' });
      linux(s)['timeOffsets'] = { monotonic: { secs: '5' } };
    },
    problem: 'linux.timeOffsets.monotonic.secs: must be integer, got "5"',
  },
  {
    since: '1.1.0',
    edit: (s) => void (proc(s)['ioPriority'] = { class: 'IOPRIO_CLASS_IDLE', priority: 7 }),
    broken: (s) => void (proc(s)['ioPriority'] = { class: 'IOPRIO_CLASS_FOO' }),
    problem: 'process.ioPriority.class: must be one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, got "IOPRIO_CLASS_FOO"',
  },
  {
    since: '1.1.0',
    edit: (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_FIFO', priority: 10, flags: ['SCHED_FLAG_RESET_ON_FORK'] }),
    broken: (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_FOO' }),
    problem: 'process.scheduler.policy: must be one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE, got "SCHED_FOO"',
  },
  {
    since: '1.3.0',
    edit: (s) => void (linux(s)['memoryPolicy'] = { mode: 'MPOL_DEFAULT' }),
    broken: (s) => void (linux(s)['memoryPolicy'] = { mode: 'MPOL_DEFAULT', nodes: 0 }),
    problem: 'linux.memoryPolicy.nodes: must be string, got 0',
  },
];

describe('fields of later releases', () => {
  it('are accepted with their own version, a later one, and in a 1.0.2-dev config (as runc accepts them)', () => {
    for (const f of NEWER) {
      for (const v of [f.since, NEWEST_RELEASE, '1.4.0', '1.0.2-dev', '1.0.2']) expect([v, lines(spec(v, f.edit))]).toEqual([v, { invalid: [], unsupported: [] }]);
    }
  });

  it('the refused ones are schema-valid too, in their own release and in a 1.0.2-dev config (refused, not invalid)', () => {
    const refusedButValid: [string, (s: Json) => void][] = [
      ['1.2.1', (s) => void (proc(s)['execCPUAffinity'] = { initial: '0-1,3', final: '2' })],
      ['1.3.0', (s) => void (linux(s)['netDevices'] = { eth1: { name: 'eth9' } })],
      ['1.3.0', (s) => void (linux(s)['memoryPolicy'] = { mode: 'MPOL_INTERLEAVE', nodes: '0-1', flags: ['MPOL_F_STATIC_NODES'] })],
      ['1.3.0', (s) => void (linux(s)['intelRdt'] = { schemata: ['L3:0=ff'], enableMonitoring: true })],
      ['1.3.0', (s) => void (s['freebsd'] = { devices: [{ path: '/dev/null', mode: 438 }], jail: { host: 'new', allow: { rawSockets: true } } })],
      ['1.3.0', (s) => void (s['vm'] = { hypervisor: { path: '/q' }, kernel: { path: '/k' }, hwConfig: { vcpus: 2, iomems: [{ firstMFN: 1, nrMFNs: 2 }], irqs: [5] } })],
      ['1.2.1', (s) => void (s['windows'] = { layerFolders: ['C:\\l'], resources: { cpu: { affinity: { mask: 3, group: 0 } } } })],
      ['1.2.1', (s) => void (s['zos'] = { namespaces: [{ type: 'pid' }] })],
      ['1.2.1', (s) => void (linux(s)['seccomp'] = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_SHEB'] })],
    ];
    for (const [since, edit] of refusedButValid) {
      for (const v of [since, '1.0.2-dev']) {
        const verdict = schemaVerdict(spec(v, edit));
        expect([v, verdict.invalid, verdict.unsupported]).toEqual([v, [], []]);
        expect(lines(spec(v, edit)).unsupported).toHaveLength(1);
      }
    }
  });

  it('are type-checked by the newest schema set whatever the config\'s version', () => {
    for (const f of NEWER) for (const v of [f.since, '1.0.2-dev', '1.0.0']) expect([v, lines(spec(v, f.broken)).invalid]).toEqual([v, [f.problem]]);
  });

  it('an enum value of a later release is fine; a wrong one lists every value any release allows', () => {
    expect(lines(spec('1.0.2-dev', (s) => void (linux(s)['seccomp'] = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_RISCV64'] })))).toEqual({ invalid: [], unsupported: [] });
    expect(lines(spec('1.0.2', (s) => void (linux(s)['namespaces'] as Json[]).push({ type: 'bogus' }))).invalid).toEqual([
      'linux.namespaces.6.type: must be one of mount, pid, network, uts, ipc, user, cgroup, time, got "bogus"',
    ]);
  });
});

describe('unknown fields', () => {
  const unknown = (s: unknown): string[] => unknownFields(s, schemaSet(NEWEST_RELEASE)).map((u) => u.join('/'));

  it('are named by their path: top level, nested, in arrays; maps take any key', () => {
    const s = spec('1.3.0', (s) => {
      s['fooBar'] = 1;
      linux(s)['fooBar'] = { x: 1 };
      proc(s)['capabilities'] = { bounding: [], ambient2: [] };
      (s['mounts'] as Json[])[1] = { ...(s['mounts'] as Json[])[1], sourceX: '/x' };
      (linux(s)['namespaces'] as Json[])[0] = { type: 'pid', pth: '/p' };
      linux(s)['seccomp'] = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ', value3: 1 }] }] };
      s['annotations'] = { 'any.key': 'v' };
      linux(s)['sysctl'] = { 'net.ipv4.ip_forward': '1' };
      linux(s)['resources'] = { unified: { 'memory.high': '1M' }, rdma: { mlx: { hcaHandles: 1 } } };
      linux(s)['netDevices'] = { eth1: { name: 'x', mtu: 1 } };
      s['hooks'] = { prestart: [{ path: '/x', timout: 1 }], postStart: [] };
    });
    expect(unknown(s).sort()).toEqual([
      'fooBar',
      'hooks/postStart',
      'hooks/prestart/0/timout',
      'linux/fooBar',
      'linux/namespaces/0/pth',
      'linux/netDevices/eth1/mtu',
      'linux/seccomp/syscalls/0/args/0/value3',
      'mounts/1/sourceX',
      'process/capabilities/ambient2',
    ]);
  });

  it('are refused as invalid with one line each, or as unsupported for a config newer than ours', () => {
    const edit = (s: Json): void => void (linux(s)['fooBar'] = 1);
    const line = 'linux.fooBar: unknown field: no runtime-spec release 1.0.0–1.3.0 defines it';
    expect(lines(spec('1.0.2-dev', edit))).toEqual({ invalid: [line], unsupported: [] });
    expect(lines(spec('1.3.0', edit))).toEqual({ invalid: [line], unsupported: [] });
    expect(lines(spec('1.4.0', edit))).toEqual({ invalid: [], unsupported: [`${line} (the config is for 1.4.0, newer than this runtime knows)`] });
    expect(lines(spec('1.4.0'))).toEqual({ invalid: [], unsupported: [] });
  });
});

/** Whether a table row's path pattern covers a schema path (the same, or a prefix of it). */
function covers(rule: FieldRule, p: string): boolean {
  const a = rule.path.split('.');
  const b = p.split('.');
  return a.length <= b.length && a.every((seg, i) => seg === b[i]);
}

describe('the table of post-1.0.2 fields', () => {
  const base = schemaPaths(schemaSet(BASE));
  const newest = schemaPaths(schemaSet(NEWEST_RELEASE));

  it('has a row for every property a release after the base adds', () => {
    const added = [...newest.keys()].filter((p) => !base.has(p));
    expect(added.length).toBeGreaterThan(20);
    const missing = added.filter((p) => !FIELDS.some((r) => r.value === undefined && covers(r, p)));
    expect(missing).toEqual([]);
  });

  it('has a row for every enum value a release after the base adds to an existing field', () => {
    const missing: string[] = [];
    for (const [p, values] of newest) {
      const before = base.get(p);
      if (before === undefined || FIELDS.some((r) => r.value === undefined && covers(r, p))) continue;
      for (const v of values) if (!before.has(v) && !FIELDS.some((r) => r.path === p && r.value === v)) missing.push(`${p}=${v}`);
    }
    expect(missing).toEqual([]);
  });

  it('names real places: every row\'s path is a property of the newest schema set, every value allowed there', () => {
    for (const r of FIELDS) {
      if (r.path.startsWith('mounts.*.options')) continue; // options are free strings in the schema
      expect(newest.has(r.path), r.path).toBe(true);
      if (r.value !== undefined && (newest.get(r.path)?.size ?? 0) > 0) expect(newest.get(r.path)?.has(r.value), `${r.path}=${r.value}`).toBe(true);
    }
  });

  it('every translate row has its translation; every since is a release', () => {
    for (const r of FIELDS.filter((r) => r.handling === 'translate')) expect(TRANSLATIONS[r.path], r.path).toBeTypeOf('function');
    for (const r of FIELDS) expect(['1.0.0', '1.1.0', '1.2.0', '1.2.1', '1.3.0']).toContain(r.since);
  });

  it('finds rows in a config by pattern', () => {
    const s = spec('1.3.0', (s) => void (s['mounts'] as Json[]).push({ destination: '/a', type: 'tmpfs', options: ['rro', 'idmap'] }));
    const rule = FIELDS.find((r) => r.value === 'idmap');
    expect(rule && matches(s, rule)).toEqual([{ at: ['mounts', 7, 'options', 1], value: 'idmap' }]);
  });

  it('refuses what it says, with the field and why', () => {
    const s = spec('1.3.0', (s) => {
      (s['mounts'] as Json[]).push({ destination: '/a', type: 'tmpfs', source: 'tmpfs', options: ['rro', 'nosymfollow', 'ridmap'] });
      proc(s)['execCPUAffinity'] = { initial: '0', final: '0-1' };
      linux(s)['netDevices'] = { eth1: {} };
      linux(s)['memoryPolicy'] = { mode: 'MPOL_BIND', nodes: '0' };
      linux(s)['intelRdt'] = { schemata: ['L3:0=f'], enableMonitoring: true };
      linux(s)['seccomp'] = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_M68K'] };
      s['freebsd'] = { jail: { vnet: 'new' } };
      s['windows'] = { layerFolders: ['c:\\x'] };
      proc(s)['scheduler'] = { policy: 'SCHED_ISO' };
    });
    expect(lines(s)).toEqual({
      invalid: [],
      unsupported: [
        'windows: a section for Windows: this runtime runs Linux containers and would ignore it',
        'freebsd: a section for FreeBSD: this runtime runs Linux containers and would ignore it',
        'process.scheduler.policy: SCHED_ISO: Linux has no SCHED_ISO policy',
        'process.execCPUAffinity: the container\'s CPUs are the VM\'s vCPUs, not host CPUs',
        'mounts.7.options.1: nosymfollow: the guest\'s crun 1.8.1 does not know it: it would reach the filesystem as mount data (and be ignored on a bind mount)',
        'mounts.7.options.2: ridmap: id-mapped mounts are not supported on the VM\'s shared filesystem (virtio-fs on the guest\'s Linux 6.1 cannot be id-mapped)',
        'linux.seccomp.architectures.1: SCMP_ARCH_M68K: the guest\'s libseccomp 2.5.4 does not know this architecture (crun would fail the create); a VM of this machine\'s architecture cannot run its binaries anyway',
        'linux.intelRdt: Intel RDT (resctrl) is not available in the VM',
        'linux.netDevices: moving a host network device into the container needs passing it through to the VM; not supported (the container gets the VM\'s mirror of its network namespace, docs/networking.md)',
        'linux.memoryPolicy: the VM has one NUMA node; host NUMA nodes cannot be named inside it (only mode MPOL_DEFAULT without nodes or flags, the default, is accepted: it is left out for crun)',
      ],
    });
  });

  it('checks the new fields as runc does', () => {
    expect(lines(spec('1.2.1', (s) => {
      linux(s)['timeOffsets'] = { monotonic: { secs: 1, nanosecs: 1000000000 } };
      proc(s)['ioPriority'] = { class: 'IOPRIO_CLASS_BE', priority: 8 };
      proc(s)['scheduler'] = { policy: 'SCHED_BATCH', nice: 20, priority: 5, runtime: 10 };
      linux(s)['resources'] = { cpu: { quota: 10000, period: 100000, burst: 20000 } };
    })).invalid).toEqual([
      'process.ioPriority.priority: must be between 0 (highest) and 7 (lowest), got 8',
      'process.scheduler.nice: must be between -20 and 19 for SCHED_BATCH, got 20',
      'process.scheduler.priority: is only meaningful with SCHED_FIFO or SCHED_RR, not SCHED_BATCH',
      'process.scheduler.runtime: is only meaningful with SCHED_DEADLINE, not SCHED_BATCH',
      'linux.resources.cpu.burst: must not exceed cpu.quota 10000, got 20000',
      'linux.timeOffsets: needs a time namespace in linux.namespaces',
      'linux.timeOffsets.monotonic.nanosecs: must be below one second (0 … 999999999), got 1000000000',
    ]);
    expect(lines(spec('1.1.0', (s) => void (proc(s)['scheduler'] = { policy: 'SCHED_RR' }))).invalid).toEqual(['process.scheduler.priority: must be between 1 and 99 for SCHED_RR, got 0']);
  });

  it('exec --process: refused and agent-only process fields are named', () => {
    expect(execProcessRefusals({ args: ['x'], cwd: '/', ioPriority: { class: 'IOPRIO_CLASS_BE' }, execCPUAffinity: { initial: '0' } })).toEqual([
      'process.ioPriority: is applied to a container\'s init only; an exec\'d process cannot have it (crun exec in the guest would ignore it)',
      'process.execCPUAffinity: the container\'s CPUs are the VM\'s vCPUs, not host CPUs',
    ]);
    expect(execProcessRefusals({ args: ['x'], cwd: '/' })).toEqual([]);
  });
});

describe('the guest spec', () => {
  const guest = (s: Json): Json => toGuestPlan(s as never, 'c1', '/nonexistent-bundle').spec as unknown as Json;

  it('says 1.0.2 whatever the config says (crun 1.8.1 wants "1.0" in it); the host config keeps its own', () => {
    for (const v of ['1.0.2-dev', '1.1.0', '1.2.1', '1.3.0', '1.4.0']) {
      const s = spec(v);
      expect(guest(s)['ociVersion']).toBe(GUEST_OCI_VERSION);
      expect(s['ociVersion']).toBe(v);
    }
    expect(GUEST_OCI_VERSION).toContain('1.0');
  });

  it('cpu.burst becomes unified cpu.max.burst; MPOL_DEFAULT is left out; agent fields stay for the agent', () => {
    const g = guest(spec('1.3.0', (s) => {
      linux(s)['resources'] = { cpu: { quota: 50000, period: 100000, burst: 20000 }, unified: { 'memory.high': '1M' } };
      linux(s)['memoryPolicy'] = { mode: 'MPOL_DEFAULT' };
      (linux(s)['namespaces'] as Json[]).push({ type: 'time' });
      linux(s)['timeOffsets'] = { monotonic: { secs: 5 } };
      proc(s)['ioPriority'] = { class: 'IOPRIO_CLASS_BE', priority: 1 };
      proc(s)['scheduler'] = { policy: 'SCHED_BATCH' };
    }));
    const l = g['linux'] as Json;
    expect(l['resources']).toEqual({ cpu: { quota: 50000, period: 100000 }, unified: { 'memory.high': '1M', 'cpu.max.burst': '20000' } });
    expect(l['memoryPolicy']).toBeUndefined();
    expect(l['timeOffsets']).toEqual({ monotonic: { secs: 5 } });
    expect((l['namespaces'] as Json[]).map((n) => n['type'])).toContain('time');
    expect((g['process'] as Json)['ioPriority']).toEqual({ class: 'IOPRIO_CLASS_BE', priority: 1 });
    expect((g['process'] as Json)['scheduler']).toEqual({ policy: 'SCHED_BATCH' });
  });

  it('update\'s resources get the same rewriting (cpu.burst becomes cpu.max.burst)', () => {
    const wrapped: Json = { linux: { resources: { cpu: { burst: 1000, quota: 20000 } } } };
    translateResources(wrapped);
    expect(wrapped).toEqual({ linux: { resources: { cpu: { quota: 20000 }, unified: { 'cpu.max.burst': '1000' } } } });
  });

  it('a config without newer fields is unchanged but for the version', () => {
    const s = spec('1.2.0');
    const g = guest(s);
    expect(g['process']).toEqual(s['process']);
    expect(g['mounts']).toEqual(s['mounts']);
  });
});

describe('features', () => {
  it('has the shape runtime-spec 1.3.0\'s features schema gives, with values the schemas allow', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    for (const [file, schema] of schemaSet(NEWEST_RELEASE)) ajv.addSchema(schema, file);
    const schema: unknown = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'features-schema-1.3.0.json'), 'utf8'));
    const validate = ajv.compile(schema as object);
    const f = features();
    expect(validate(f), JSON.stringify(validate.errors)).toBe(true);
  });

  it('reports 1.0.0 to 1.3.0 and what the table accepts or refuses', () => {
    const f = features() as { ociVersionMin: string; ociVersionMax: string; mountOptions: string[]; linux: Json };
    expect([f.ociVersionMin, f.ociVersionMax]).toEqual(['1.0.0', '1.3.0']);
    expect(f.linux['namespaces']).toContain('time');
    expect(f.mountOptions).toEqual(expect.arrayContaining(['rro', 'rnosuid', 'tmpcopyup']));
    for (const o of ['idmap', 'ridmap', 'nosymfollow', 'rnosymfollow']) expect(f.mountOptions).not.toContain(o);
    const seccomp = f.linux['seccomp'] as Json;
    expect(seccomp['actions']).not.toContain('SCMP_ACT_NOTIFY');
    expect(seccomp['archs']).toContain('SCMP_ARCH_RISCV64');
    expect(seccomp['archs']).not.toContain('SCMP_ARCH_M68K');
    expect(f.linux['intelRdt']).toEqual({ enabled: false });
    expect(f.linux['mountExtensions']).toEqual({ idmap: { enabled: false } });
    expect(f.linux['netDevices']).toEqual({ enabled: false });
  });
});
