/**
 * The one table of what kata-runtime does with each config field (and enum value, and mount
 * option) that a runtime-spec release after 1.0.2 added, plus the older sections a VM refuses.
 * bundle.ts refuses what it says to refuse, translate.ts rewrites what it says to translate, the
 * agent applies what it says the agent applies, `features` reports from it, and a unit test checks
 * that every property the newest schema set adds to Debian's base has a row here.
 *
 * `crun` rows were checked against crun 1.8.1's source (the guest's crun): it reads the field and
 * applies it as it is.
 */
import { isRecord } from '../util/json.js';

export type Handling =
  /** The guest's crun 1.8.1 applies it as it is. */
  | 'crun'
  /** Rewritten into something crun 1.8.1 knows (src/oci/translate.ts). */
  | 'translate'
  /** Taken out of crun's config and applied by the agent (agent/src/server.rs). */
  | 'agent'
  /** Refused before any VM starts (E_UNSUPPORTED), with `note` as the reason. */
  | 'refuse';

export interface FieldRule {
  /** A JSON path pattern: names separated by dots, `*` for any array index or map key. */
  path: string;
  /** The row is about this value at `path` (an enum value, a mount option), not the field. */
  value?: string;
  /** The runtime-spec release that added it (1.0.0: an older field listed for its refusal). */
  since: string;
  handling: Handling;
  /** What happens, in words; for `refuse`, the reason given in the error. */
  note: string;
  /** `refuse` only when this holds of the value found (default: whenever it is there). */
  refuseIf?: (value: unknown) => boolean;
}

const nonEmpty = (v: unknown): boolean =>
  Array.isArray(v) ? v.length > 0 : isRecord(v) ? Object.keys(v).length > 0 : v !== undefined && v !== null && v !== '' && v !== false;

const IDMAP = "id-mapped mounts are not supported on the VM's shared filesystem (virtio-fs on the guest's Linux 6.1 cannot be id-mapped)";
const RDT = 'Intel RDT (resctrl) is not available in the VM';
const NO_SYMFOLLOW = "the guest's crun 1.8.1 does not know it: it would reach the filesystem as mount data (and be ignored on a bind mount)";
const LIBSECCOMP = "the guest's libseccomp 2.5.4 does not know this architecture (crun would fail the create); a VM of this machine's architecture cannot run its binaries anyway";
const PLATFORM = (name: string): string => `a section for ${name}: this runtime runs Linux containers and would ignore it`;

/** Recursive (AT_RECURSIVE) mount options crun 1.8.1 knows (its mount_flags.perf table). */
const RECURSIVE_OPTIONS = [
  'rro', 'rrw', 'rnosuid', 'rsuid', 'rnodev', 'rdev', 'rnoexec', 'rexec', 'rnoatime', 'ratime', 'rstrictatime', 'rnostrictatime',
  'rrelatime', 'rnorelatime', 'rnodiratime', 'rdiratime',
];

export const FIELDS: readonly FieldRule[] = [
  // ---- other platforms' sections and the vm section (refused as wholes) ----
  { path: 'vm', since: '1.0.0', handling: 'refuse', note: 'the hypervisor, kernel and image are chosen by the runtime configuration, not per container' },
  { path: 'vm.hwConfig', since: '1.3.0', handling: 'refuse', note: 'the VM\'s hardware is chosen by the runtime configuration, not per container' },
  { path: 'windows', since: '1.0.0', handling: 'refuse', note: PLATFORM('Windows') },
  { path: 'windows.resources.cpu.affinity', since: '1.2.1', handling: 'refuse', note: PLATFORM('Windows') },
  { path: 'solaris', since: '1.0.0', handling: 'refuse', note: PLATFORM('Solaris') },
  { path: 'zos', since: '1.1.0', handling: 'refuse', note: PLATFORM('z/OS') },
  { path: 'zos.namespaces', since: '1.2.1', handling: 'refuse', note: PLATFORM('z/OS') },
  { path: 'freebsd', since: '1.3.0', handling: 'refuse', note: PLATFORM('FreeBSD') },

  // ---- top level and process ----
  { path: 'domainname', since: '1.1.0', handling: 'crun', note: 'set by crun in the container\'s uts namespace (needs one)' },
  { path: 'process.ioPriority', since: '1.1.0', handling: 'agent', note: 'set by the agent on the container\'s init (ioprio_set) between crun create and crun start' },
  { path: 'process.scheduler', since: '1.1.0', handling: 'agent', note: 'set by the agent on the container\'s init (sched_setattr) between crun create and crun start' },
  { path: 'process.scheduler.policy', value: 'SCHED_ISO', since: '1.1.0', handling: 'refuse', note: 'Linux has no SCHED_ISO policy' },
  { path: 'process.execCPUAffinity', since: '1.2.1', handling: 'refuse', note: "the container's CPUs are the VM's vCPUs, not host CPUs" },

  // ---- mounts ----
  { path: 'mounts.*.uidMappings', since: '1.1.0', handling: 'refuse', note: IDMAP, refuseIf: nonEmpty },
  { path: 'mounts.*.gidMappings', since: '1.1.0', handling: 'refuse', note: IDMAP, refuseIf: nonEmpty },
  ...RECURSIVE_OPTIONS.map((o): FieldRule => ({ path: 'mounts.*.options.*', value: o, since: '1.1.0', handling: 'crun', note: 'applied recursively by crun (mount_setattr with AT_RECURSIVE)' })),
  { path: 'mounts.*.options.*', value: 'tmpcopyup', since: '1.1.0', handling: 'crun', note: 'crun copies the directory\'s contents into the tmpfs' },
  ...['nosymfollow', 'symfollow', 'rnosymfollow', 'rsymfollow'].map((o): FieldRule => ({ path: 'mounts.*.options.*', value: o, since: '1.1.0', handling: 'refuse', note: NO_SYMFOLLOW })),
  { path: 'mounts.*.options.*', value: 'idmap', since: '1.2.0', handling: 'refuse', note: IDMAP },
  { path: 'mounts.*.options.*', value: 'ridmap', since: '1.2.0', handling: 'refuse', note: IDMAP },

  // ---- linux ----
  {
    path: 'linux.namespaces.*.type',
    value: 'time',
    since: '1.1.0',
    handling: 'agent',
    note: "crun 1.8.1 cannot make a time namespace together with a new pid namespace (the process it forks the container's init from is the pid namespace's init and exits, killing it): the agent runs crun create in a new time namespace (CLONE_NEWTIME; the guest kernel has CONFIG_TIME_NS), so the container is created in it, and crun exec in the container's",
  },
  { path: 'linux.timeOffsets', since: '1.1.0', handling: 'agent', note: 'written by the agent to /proc/self/timens_offsets of the new time namespace before the container is in it; needs a time namespace' },
  { path: 'linux.resources.unified', since: '1.1.0', handling: 'crun', note: 'written to the guest cgroup\'s files by crun' },
  { path: 'linux.resources.cpu.burst', since: '1.1.0', handling: 'translate', note: 'crun 1.8.1 has no burst: becomes linux.resources.unified["cpu.max.burst"]' },
  { path: 'linux.resources.cpu.idle', since: '1.1.0', handling: 'crun', note: 'cpu.idle, written by crun' },
  { path: 'linux.resources.memory.checkBeforeUpdate', since: '1.1.0', handling: 'crun', note: 'crun compares memory.current with the new limit on update' },
  { path: 'linux.seccomp.defaultErrnoRet', since: '1.1.0', handling: 'crun', note: 'crun\'s seccomp filter returns it' },
  { path: 'linux.seccomp.syscalls.*.errnoRet', since: '1.1.0', handling: 'crun', note: 'crun\'s seccomp filter returns it' },
  { path: 'linux.seccomp.listenerPath', since: '1.1.0', handling: 'refuse', note: 'a seccomp notification listener on the host cannot be reached from the VM', refuseIf: nonEmpty },
  { path: 'linux.seccomp.listenerMetadata', since: '1.1.0', handling: 'crun', note: 'handed by crun to the listener, which needs listenerPath (refused): alone it does nothing, as under runc' },
  { path: 'linux.seccomp.defaultAction', value: 'SCMP_ACT_KILL_PROCESS', since: '1.1.0', handling: 'crun', note: 'libseccomp 2.5.4 in the guest' },
  { path: 'linux.seccomp.defaultAction', value: 'SCMP_ACT_KILL_THREAD', since: '1.1.0', handling: 'crun', note: 'libseccomp 2.5.4 in the guest' },
  { path: 'linux.seccomp.syscalls.*.action', value: 'SCMP_ACT_KILL_PROCESS', since: '1.1.0', handling: 'crun', note: 'libseccomp 2.5.4 in the guest' },
  { path: 'linux.seccomp.syscalls.*.action', value: 'SCMP_ACT_KILL_THREAD', since: '1.1.0', handling: 'crun', note: 'libseccomp 2.5.4 in the guest' },
  { path: 'linux.seccomp.syscalls.*.action', value: 'SCMP_ACT_NOTIFY', since: '1.1.0', handling: 'refuse', note: 'seccomp notifications go to a listener on the host, which the VM cannot reach' },
  { path: 'linux.seccomp.architectures.*', value: 'SCMP_ARCH_RISCV64', since: '1.1.0', handling: 'crun', note: 'libseccomp 2.5.4 in the guest knows it' },
  ...['SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB'].map((a): FieldRule => ({ path: 'linux.seccomp.architectures.*', value: a, since: '1.2.1', handling: 'refuse', note: LIBSECCOMP })),
  { path: 'linux.seccomp.flags.*', value: 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV', since: '1.1.0', handling: 'crun', note: 'crun passes it to seccomp(2)' },
  { path: 'linux.intelRdt', since: '1.0.0', handling: 'refuse', note: RDT, refuseIf: nonEmpty },
  { path: 'linux.intelRdt.enableCMT', since: '1.1.0', handling: 'refuse', note: RDT },
  { path: 'linux.intelRdt.enableMBM', since: '1.1.0', handling: 'refuse', note: RDT },
  { path: 'linux.intelRdt.schemata', since: '1.3.0', handling: 'refuse', note: RDT },
  { path: 'linux.intelRdt.enableMonitoring', since: '1.3.0', handling: 'refuse', note: RDT },
  {
    path: 'linux.netDevices',
    since: '1.3.0',
    handling: 'refuse',
    note: "moving a host network device into the container needs passing it through to the VM; not supported (the container gets the VM's mirror of its network namespace, docs/networking.md)",
    refuseIf: nonEmpty,
  },
  {
    path: 'linux.memoryPolicy',
    since: '1.3.0',
    handling: 'translate',
    note: 'the VM has one NUMA node; host NUMA nodes cannot be named inside it (only mode MPOL_DEFAULT without nodes or flags, the default, is accepted: it is left out for crun)',
    refuseIf: (v) => !(isRecord(v) && v['mode'] === 'MPOL_DEFAULT' && (v['nodes'] ?? '') === '' && !nonEmpty(v['flags'])),
  },
];

/** The rows for a handling. */
export function rulesFor(handling: Handling): FieldRule[] {
  return FIELDS.filter((r) => r.handling === handling);
}

/** A place in a config a row's pattern matched: its path segments and the value there. */
export interface Match {
  at: (string | number)[];
  value: unknown;
}

/** Where `rule` applies in `config`: every place its path pattern reaches (with its value, if it names one). */
export function matches(config: unknown, rule: FieldRule): Match[] {
  let found: Match[] = [{ at: [], value: config }];
  for (const seg of rule.path.split('.')) {
    const next: Match[] = [];
    for (const m of found) {
      if (seg === '*') {
        if (Array.isArray(m.value)) m.value.forEach((v, i) => next.push({ at: [...m.at, i], value: v }));
        else if (isRecord(m.value)) for (const [k, v] of Object.entries(m.value)) next.push({ at: [...m.at, k], value: v });
      } else if (isRecord(m.value) && m.value[seg] !== undefined) {
        next.push({ at: [...m.at, seg], value: m.value[seg] });
      }
    }
    found = next;
  }
  return rule.value === undefined ? found : found.filter((m) => m.value === rule.value);
}

/** The refusals the table makes of `config`: a place inside an already refused one is not repeated. */
export function refusals(config: unknown): { at: (string | number)[]; message: string }[] {
  const out: { at: (string | number)[]; message: string }[] = [];
  const inside = (at: (string | number)[]): boolean => out.some((r) => r.at.length <= at.length && r.at.every((s, i) => s === at[i]));
  for (const rule of rulesFor('refuse').concat(FIELDS.filter((r) => r.handling !== 'refuse' && r.refuseIf))) {
    for (const m of matches(config, rule)) {
      if (!(rule.refuseIf?.(m.value) ?? true) || inside(m.at)) continue;
      out.push({ at: m.at, message: rule.value === undefined ? rule.note : `${rule.value}: ${rule.note}` });
    }
  }
  return out;
}
