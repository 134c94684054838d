import { RuntimeCommand } from '../cli/base.js';
import { SPEC_VERSION } from '../cli/render.js';
import { HOST_HOOKS } from '../oci/hooks.js';

/** Every capability a container process can be given (the guest kernel knows them all). */
const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** Mount options crun (in the guest) understands. */
const MOUNT_OPTIONS = [
  'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'iversion', 'lazytime', 'loud', 'mand',
  'noatime', 'nodev', 'nodiratime', 'noexec', 'noiversion', 'nolazytime', 'nomand', 'norelatime', 'nostrictatime', 'nosuid',
  'private', 'rbind', 'relatime', 'remount', 'ro', 'rprivate', 'rshared', 'rslave', 'runbindable', 'rw', 'shared', 'silent',
  'slave', 'strictatime', 'suid', 'sync', 'tmpcopyup', 'unbindable',
];

export default class Features extends RuntimeCommand {
  static override description = 'show the enabled features (JSON, runc features format)';

  async run(): Promise<void> {
    await this.parse(Features);
    const features = {
      ociVersionMin: '1.0.0',
      ociVersionMax: SPEC_VERSION,
      // prestart, createRuntime, poststart, poststop run on the host; createContainer and
      // startContainer run in the container's namespaces in the guest (crun runs them).
      hooks: [...HOST_HOOKS, 'createContainer', 'startContainer'],
      mountOptions: MOUNT_OPTIONS,
      linux: {
        namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
        capabilities: CAPABILITIES,
        // The container's cgroup is the guest's: a pure cgroup v2 hierarchy managed by crun.
        cgroup: { v1: false, v2: true, systemd: false, systemdUser: false },
        seccomp: { enabled: true },
        apparmor: { enabled: false },
        selinux: { enabled: false },
      },
      annotations: {
        'io.katacontainers.runtime': 'kata-runtime',
        'io.katacontainers.isolation': 'vm',
      },
      potentiallyUnsafeConfigAnnotations: [],
    };
    process.stdout.write(JSON.stringify(features, null, '    ') + '\n');
  }
}
