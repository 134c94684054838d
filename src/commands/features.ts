import { writeOut } from '../cli/stdio.js';
import { RuntimeCommand } from '../cli/base.js';
import { SPEC_VERSION } from '../cli/render.js';
import { CAPABILITIES } from '../oci/bundle.js';
import { HOST_HOOKS } from '../oci/hooks.js';

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
    const { flags } = await this.parse(Features);
    this.configureLog(flags);
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
    writeOut(JSON.stringify(features, null, '    ') + '\n', true); // runc: json.Encoder, errors fail
  }
}
