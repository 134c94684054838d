/**
 * What `features` reports (runc's format, runtime-spec 1.3.0's features schema), derived from the
 * table of fields by release (src/oci/fields.ts) and the newest schema set, so that it says what
 * `create` actually accepts.
 */
import { isRecord } from '../util/json.js';
import { CAPABILITIES } from './bundle.js';
import { FIELDS, type FieldRule } from './fields.js';
import { HOST_HOOKS } from './hooks.js';
import { NEWEST_RELEASE, OLDEST_RELEASE, newestRelease, schemaSet } from './schemas.js';

/** runtime-spec 1.0.x mount options crun 1.8.1 (in the guest) understands. */
const BASE_MOUNT_OPTIONS = [
  'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'iversion', 'lazytime', 'loud', 'mand',
  'noatime', 'nodev', 'nodiratime', 'noexec', 'noiversion', 'nolazytime', 'nomand', 'norelatime', 'nostrictatime', 'nosuid',
  'private', 'rbind', 'relatime', 'remount', 'ro', 'rprivate', 'rshared', 'rslave', 'runbindable', 'rw', 'shared', 'silent',
  'slave', 'strictatime', 'suid', 'sync', 'unbindable',
];
/** runtime-spec 1.0.x namespaces. */
const BASE_NAMESPACES = ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'];

/** A defs-linux.json enum of the newest schema set. */
function linuxEnum(name: string): string[] {
  const defs = schemaSet(newestRelease()).get('defs-linux.json')?.['definitions'];
  const def = isRecord(defs) ? defs[name] : undefined;
  const values = isRecord(def) ? def['enum'] : undefined;
  return Array.isArray(values) ? values.filter((v): v is string => typeof v === 'string') : [];
}

const rowsAt = (path: string): FieldRule[] => FIELDS.filter((r) => r.path === path);
const refused = (path: string): Set<string | undefined> => new Set(rowsAt(path).filter((r) => r.handling === 'refuse').map((r) => r.value));
const accepted = (path: string): string[] => rowsAt(path).filter((r) => r.handling !== 'refuse' && r.value !== undefined).map((r) => r.value ?? '');
/** Whether the table refuses `path` itself (not one value of it). */
const refusesField = (path: string): boolean => rowsAt(path).some((r) => r.handling === 'refuse' && r.value === undefined);

export function features(): Record<string, unknown> {
  const notRefused = (values: string[], path: string): string[] => values.filter((v) => !refused(path).has(v));
  const seccompFlags = linuxEnum('SeccompFlag');
  return {
    ociVersionMin: OLDEST_RELEASE,
    ociVersionMax: NEWEST_RELEASE,
    // prestart, createRuntime, poststart, poststop run on the host; createContainer and
    // startContainer run in the container's namespaces in the guest (crun runs them).
    hooks: [...HOST_HOOKS, 'createContainer', 'startContainer'],
    mountOptions: [...new Set([...BASE_MOUNT_OPTIONS, ...accepted('mounts.*.options.*')])].sort(),
    linux: {
      namespaces: [...BASE_NAMESPACES, ...accepted('linux.namespaces.*.type')],
      capabilities: CAPABILITIES,
      // The container's cgroup is the guest's: a pure cgroup v2 hierarchy managed by crun.
      cgroup: { v1: false, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        actions: notRefused(linuxEnum('SeccompAction'), 'linux.seccomp.syscalls.*.action'),
        operators: linuxEnum('SeccompOperators'),
        archs: notRefused(linuxEnum('SeccompArch'), 'linux.seccomp.architectures.*'),
        knownFlags: seccompFlags,
        // crun 1.8.1 passes each of them to seccomp(2) (and retries without any the kernel lacks).
        supportedFlags: seccompFlags,
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: !refusesField('linux.intelRdt') },
      mountExtensions: { idmap: { enabled: !refused('mounts.*.options.*').has('idmap') } },
      netDevices: { enabled: !refusesField('linux.netDevices') },
    },
    annotations: {
      'io.katacontainers.runtime': 'kata-runtime',
      'io.katacontainers.isolation': 'vm',
    },
    potentiallyUnsafeConfigAnnotations: [],
  };
}
