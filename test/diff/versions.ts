import fs from 'node:fs';
import path from 'node:path';
import { errorMentions, type Ctx, type DiffCase, type Outcome, type Spec } from './harness.js';

/**
 * The runtime-spec versions as engines write them (issue 9): for each released version an
 * engine writes today, a bundle with the shape that engine gives config.json (its fields,
 * defaults and order), and one case per field added after 1.0.2 that runc 1.1.5 implements.
 * The shapes were read from the engines' sources (named in each case); the data is ours.
 * docs/differential.md lists them, and the fields left to the e2e suite and why.
 */

const sh = (script: string): string[] => ['sh', '-c', script];

// ---- the probe ------------------------------------------------------------------------------

/** The paths an engine masks and makes read-only (its maskedPaths and readonlyPaths). */
interface Paths {
  masked: string[];
  readonly: string[];
}

/**
 * What a container of an engine's shape shows: its identity, capabilities, no_new_privs and
 * seccomp state, oom_score_adj, umask, names, environment, and the mounts the runtime made,
 * sorted (runc and crun make them in different orders). Left out of the mount list: the root,
 * the engine's bind mounts (/etc/..., /dev/shm, ...) and the cgroup mount, which show the host's
 * filesystems and cgroup hierarchy under runc and the guest's under kata-runtime; /proc/acpi,
 * which the guest has not (`masked-proc-acpi`); the masked paths, whose mounts are each
 * runtime's own way of masking (runc binds the container's /dev/null read-write, crun the
 * guest's devtmpfs one read-only; crun sizes its empty tmpfs 0k): `MASKED` must read empty
 * instead. The read-only paths show as `<path> ro|rw` (their other flags:
 * `readonly-paths-flags`). Then `more`, the case's own lines.
 */
function probe(paths: Paths, ...more: string[]): string[] {
  const awk = String.raw`
    $2 == "/" || $2 ~ /^\/(etc\/|sys\/fs\/cgroup|proc\/acpi$|run\/\.containerenv$|dev\/shm$|dev\/termination-log$)/ || index(m, " " $2 " ") { next }
    index(r, " " $2 " ") { split($4, o, ","); print $2, o[1]; next }
    { print $1, $2, $3, $4 }`;
  return sh([
    'id',
    'grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status',
    'echo "oom_score_adj=$(cat /proc/self/oom_score_adj) umask=$(umask)"',
    'echo "hostname=$(hostname) domainname=$(cat /proc/sys/kernel/domainname)"',
    'env | grep -v -e "^PWD=" -e "^SHLVL=" | sort',
    `awk -v m=" ${paths.masked.join(' ')} " -v r=" ${paths.readonly.join(' ')} " '${awk}' /proc/self/mounts | sort`,
    // masked: empty (a file bound to /dev/null, an empty read-only dir) or absent alike
    `for p in ${MASKED.join(' ')}; do echo "$p: $(cat $p 2>&1 | wc -c) $(ls -A $p 2>&1 | wc -l)"; done`,
    'touch /dev/shm/probe; echo "shm rc=$?"',
    ...more,
  ].join('\n'));
}
/**
 * Paths every engine masks that both kernels have or lack alike (an unmasked /proc file would
 * be the host's or the guest's).
 */
const MASKED = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/sys/firmware'];
/** rlimits, for the engines that write them: absent ones are `rlimits-absent`'s. */
const NOFILE = 'echo "nofile=$(ulimit -Sn):$(ulimit -Hn)"';
const NPROC = 'echo "nproc=$(ulimit -Su):$(ulimit -Hu)"';
/** A child needing `mib` MiB, over the engine's memory limit (swap is no help: neither host nor guest has any): OOM-killed, 137. */
const overLimit = (mib: number): string => `dd if=/dev/zero of=/dev/null bs=${mib}M count=1 2>/dev/null; echo "dd ${mib}M rc=$?"`;
/** A syscall every engine's default seccomp profile refuses without CAP_SYS_ADMIN (docker, containerd) or lets the capability check decide (podman). */
const UNSHARE = 'unshare -U true; echo "unshare rc=$?"';

// ---- engine data ----------------------------------------------------------------------------

/** The capabilities moby (oci/caps) and containerd (populateDefaultUnixSpec) give a container. */
const ENGINE_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];
/** containers/common's default_capabilities (podman 5): no MKNOD, NET_RAW, AUDIT_WRITE. */
const PODMAN_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETFCAP',
  'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
/** moby's DefaultLinuxSpec (23.0: without powercap, which 24.0 added). */
const MOBY_23: Paths = {
  masked: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
  readonly: READONLY_PATHS,
};
const MOBY_27: Paths = { masked: [...MOBY_23.masked, '/sys/devices/virtual/powercap'], readonly: READONLY_PATHS };
/** containerd's populateDefaultUnixSpec; kubelet sends the same set (DefaultProcMount) to CRI. */
const CONTAINERD: Paths = {
  masked: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/sys/devices/virtual/powercap', '/proc/scsi'],
  readonly: READONLY_PATHS,
};
/** containers/common's DefaultMaskedPaths / DefaultReadOnlyPaths (podman 5). */
const PODMAN: Paths = {
  masked: ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/devices/virtual/powercap', '/sys/firmware', '/sys/fs/selinux', '/proc/interrupts'],
  readonly: ['/proc/asound', ...READONLY_PATHS],
};

/** A 64-hex container id, as the engines make them (fixed: the cases must be reproducible). */
const ID = 'c0ffee42d00d5eed1e55ba5eba11ad5a1e55c0de0ddba11facade5eedfacade1';

/**
 * The part of the engines' default seccomp allow list that a shell and the two runtimes use
 * (the engines list about 350 names; every name here is in moby's, containerd's and
 * containers/common's lists). Like the engines' lists it names syscalls of other architectures
 * too (ugetrlimit, sigreturn): runtimes skip names their libseccomp does not know.
 */
const ALLOWED = [
  'accept', 'accept4', 'access', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod', 'chown', 'clock_getres',
  'clock_gettime', 'clock_nanosleep', 'close', 'close_range', 'connect', 'copy_file_range', 'creat', 'dup', 'dup2',
  'dup3', 'epoll_create1', 'epoll_ctl', 'epoll_pwait', 'epoll_wait', 'eventfd2', 'execve', 'execveat', 'exit',
  'exit_group', 'faccessat2', 'fadvise64', 'fallocate', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchownat', 'fcntl',
  'fdatasync', 'fgetxattr', 'flock', 'fork', 'fstat', 'fstatfs', 'fsync', 'ftruncate', 'futex', 'getcwd', 'getdents',
  'getdents64', 'getegid', 'geteuid', 'getgid', 'getgroups', 'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid',
  'getppid', 'getpriority', 'getrandom', 'getresgid', 'getresuid', 'getrlimit', 'getrusage', 'getsid', 'getsockname',
  'getsockopt', 'gettid', 'gettimeofday', 'getuid', 'getxattr', 'inotify_add_watch', 'inotify_init1', 'inotify_rm_watch',
  'ioctl', 'kill', 'lgetxattr', 'link', 'linkat', 'listen', 'lseek', 'lstat', 'madvise', 'membarrier', 'mincore', 'mkdir',
  'mkdirat', 'mknodat', 'mlock', 'mmap', 'mprotect', 'mremap', 'msync', 'munlock', 'munmap', 'nanosleep', 'newfstatat',
  'open', 'openat', 'openat2', 'pause', 'pipe', 'pipe2', 'poll', 'ppoll', 'prctl', 'pread64', 'preadv', 'prlimit64',
  'pselect6', 'pwrite64', 'pwritev', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recvfrom', 'recvmmsg',
  'recvmsg', 'rename', 'renameat', 'renameat2', 'restart_syscall', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending',
  'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_tgsigqueueinfo',
  'sched_getaffinity', 'sched_getparam', 'sched_getscheduler', 'sched_setaffinity', 'sched_yield', 'seccomp', 'select',
  'sendfile', 'sendmmsg', 'sendmsg', 'sendto', 'set_robust_list', 'set_tid_address', 'setfsgid', 'setfsuid', 'setgid',
  'setgroups', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setresgid', 'setresuid', 'setreuid', 'setrlimit',
  'setsid', 'setsockopt', 'setuid', 'shutdown', 'sigaltstack', 'sigreturn', 'socketpair', 'stat', 'statfs', 'statx',
  'symlink', 'symlinkat', 'sync', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete',
  'timer_settime', 'timerfd_create', 'timerfd_settime', 'times', 'tkill', 'truncate', 'ugetrlimit', 'umask', 'uname',
  'unlink', 'unlinkat', 'utimensat', 'vfork', 'wait4', 'waitid', 'write', 'writev',
];

type Rule = Record<string, unknown>;
const allow = (names: string[], more: Rule = {}): Rule => ({ names, action: 'SCMP_ACT_ALLOW', ...more });
const eq = (index: number, value: number, op = 'SCMP_CMP_EQ'): Rule => ({ index, value, op });
/** personality(2) with the personas the engines allow: linux, linux32, UNAME26, both, query. */
const PERSONALITY = [0, 8, 131072, 131080, 4294967295].map((v) => allow(['personality'], { args: [eq(0, v)] }));
/** clone(2) without namespace flags (CLONE_NEWNS | ... | CLONE_NEWCGROUP masked to 0). */
const CLONE_NO_NS = allow(['clone'], { args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
/** clone3(2) fails with ENOSYS so that libc falls back to clone(2), whose flags can be filtered. */
const CLONE3_ENOSYS: Rule = { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 };
const X86 = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];

/**
 * moby's default profile (profiles/seccomp/default.json) as the daemon resolves it into the spec
 * for the default capabilities on amd64: defaultErrnoRet 1 (docker 20.10+), the architectures of
 * the amd64 archMap entry, the allow list, socket(2) but AF_VSOCK, the personas, arch_prctl and
 * modify_ldt, chroot (CAP_SYS_CHROOT), clone without namespace flags and clone3 -> ENOSYS.
 */
function mobySeccomp(): Rule {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: X86,
    syscalls: [
      allow(ALLOWED),
      allow(['process_vm_readv', 'process_vm_writev', 'ptrace']),
      allow(['socket'], { args: [eq(0, 40, 'SCMP_CMP_NE')] }),
      ...PERSONALITY,
      allow(['arch_prctl']),
      allow(['modify_ldt']),
      allow(['chroot']),
      CLONE_NO_NS,
      CLONE3_ENOSYS,
    ],
  };
}

/**
 * containerd's contrib/seccomp DefaultProfile (1.7 and 2.x alike): SCMP_ACT_ERRNO without
 * defaultErrnoRet (EPERM), the amd64 architectures, one allow list (socket included), the
 * personas, the capability-dependent groups resolved for the default capabilities, clone
 * without namespace flags and clone3 -> ENOSYS.
 */
function containerdSeccomp(): Rule {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: X86,
    syscalls: [
      allow([...ALLOWED, 'socket', 'process_vm_readv', 'process_vm_writev', 'ptrace']),
      ...PERSONALITY,
      allow(['arch_prctl', 'modify_ldt']),
      allow(['chroot']),
      CLONE_NO_NS,
      CLONE3_ENOSYS,
    ],
  };
}

/**
 * podman's socket(2) rules for a container without CAP_AUDIT_WRITE: socket(AF_NETLINK, *,
 * NETLINK_AUDIT) fails with EINVAL, anything else is allowed (two rules, either argument differs).
 */
const AUDIT_SOCKET: Rule[] = [
  { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 22, args: [eq(0, 16), eq(2, 9)] },
  allow(['socket'], { args: [eq(2, 9, 'SCMP_CMP_NE')] }),
  allow(['socket'], { args: [eq(0, 16, 'SCMP_CMP_NE')] }),
];

/**
 * containers/common's seccomp.json (podman 5) resolved for podman's default capabilities:
 * defaultErrnoRet 38 (ENOSYS: a syscall the profile does not know looks unimplemented), a first
 * group refused with EPERM, the allow list (unshare, mount, clone, clone3... are allowed: the
 * capability checks decide), the personas, and each capability-dependent group as EPERM for the
 * capabilities podman drops, with socket(2) of NETLINK_AUDIT refused with EINVAL (no
 * CAP_AUDIT_WRITE). Every rule carries errnoRet where podman writes one. One rule is left out
 * (see below): runc 1.1.5 cannot load it with the others.
 */
function podmanSeccomp(): Rule {
  const eperm = (names: string[]): Rule => ({ names, action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 38,
    architectures: X86,
    syscalls: [
      eperm(['bdflush', 'kexec_file_load', 'kexec_load', 'migrate_pages', 'move_pages', 'nfsservctl', 'nice', 'swapoff', 'swapon', 'sysfs', 'userfaultfd', 'ustat', 'vmsplice']),
      allow([...ALLOWED, 'clone', 'clone3', 'mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'keyctl', 'ptrace']),
      ...PERSONALITY,
      allow(['arch_prctl']),
      allow(['modify_ldt']),
      eperm(['open_by_handle_at']),
      eperm(['lookup_dcookie', 'perf_event_open', 'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns']),
      allow(['chroot']),
      eperm(['delete_module', 'finit_module', 'init_module', 'query_module']),
      eperm(['acct']),
      eperm(['kcmp', 'process_madvise']),
      eperm(['ioperm', 'iopl']),
      eperm(['clock_settime', 'clock_settime64', 'settimeofday', 'stime']),
      eperm(['vhangup']),
      // podman also allows socket(2) for any domain but AF_NETLINK; libseccomp 2.5.4 refuses
      // that rule next to the EINVAL one on the x86 sub-architecture: `seccomp-podman-audit-socket`
      ...AUDIT_SOCKET.slice(0, 2),
      eperm(['bpf']),
    ],
  };
}

const mount = (destination: string, type: string, source: string, options: string[]): Rule => ({ destination, type, source, options });
/** containerd's defaultMounts (pkg/oci/mounts.go), 1.6 to 2.3 alike; `run` is the /run tmpfs CRI removes. */
function containerdMounts(run: boolean): Rule[] {
  return [
    mount('/proc', 'proc', 'proc', ['nosuid', 'noexec', 'nodev']),
    mount('/dev', 'tmpfs', 'tmpfs', ['nosuid', 'strictatime', 'mode=755', 'size=65536k']),
    mount('/dev/pts', 'devpts', 'devpts', ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']),
    mount('/dev/shm', 'tmpfs', 'shm', ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']),
    mount('/dev/mqueue', 'mqueue', 'mqueue', ['nosuid', 'noexec', 'nodev']),
    mount('/sys', 'sysfs', 'sysfs', ['nosuid', 'noexec', 'nodev', 'ro']),
    ...(run ? [mount('/run', 'tmpfs', 'tmpfs', ['nosuid', 'strictatime', 'mode=755', 'size=65536k'])] : []),
  ];
}
/** moby's DefaultLinuxSpec mounts (oci/defaults.go, 23.0 to 27.5 alike), /dev/shm sized by the daemon (--shm-size, 64 MiB). */
function mobyMounts(): Rule[] {
  return [
    mount('/proc', 'proc', 'proc', ['nosuid', 'noexec', 'nodev']),
    mount('/dev', 'tmpfs', 'tmpfs', ['nosuid', 'strictatime', 'mode=755', 'size=65536k']),
    mount('/dev/pts', 'devpts', 'devpts', ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']),
    mount('/sys', 'sysfs', 'sysfs', ['nosuid', 'noexec', 'nodev', 'ro']),
    mount('/sys/fs/cgroup', 'cgroup', 'cgroup', ['ro', 'nosuid', 'noexec', 'nodev']),
    mount('/dev/mqueue', 'mqueue', 'mqueue', ['nosuid', 'noexec', 'nodev']),
    mount('/dev/shm', 'tmpfs', 'shm', ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864']),
  ];
}
/**
 * Files an engine keeps per container and binds in (resolv.conf, hostname, hosts...): made in
 * the case's host dir, as the engine makes them in its state dir, and bound with `options`.
 */
function engineFiles(ctx: Ctx, hostname: string, dests: string[], options: string[]): Rule[] {
  const dir = path.join(ctx.host, 'engine');
  fs.mkdirSync(dir, { recursive: true });
  const content: Record<string, string> = {
    '/etc/resolv.conf': 'nameserver 10.0.2.3\n',
    '/etc/hostname': `${hostname}\n`,
    '/etc/hosts': `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.88.0.5\t${hostname}\n`,
    '/run/.containerenv': 'engine="podman-5.6.0"\nname="web"\n',
    '/dev/termination-log': '',
  };
  return dests.map((d) => {
    const source = path.join(dir, d.replace(/\//g, '_'));
    fs.writeFileSync(source, content[d] ?? '');
    return mount(d, 'bind', source, options);
  });
}
/** A directory the engine prepared for /dev/shm (a tmpfs of its own in real life). */
function shmDir(ctx: Ctx): string {
  const d = path.join(ctx.host, 'engine', 'shm');
  fs.mkdirSync(d, { recursive: true, mode: 0o1777 });
  fs.chmodSync(d, 0o1777);
  return d;
}
const devicesDenyAll = (): Rule[] => [{ allow: false, access: 'rwm' }];
/** moby's device rules: deny all, then the default devices and /dev/pts, /dev/ptmx; /dev/fuse denied. */
function mobyDevices(): Rule[] {
  const c = (major: number, minor: number, allowed = true): Rule => ({ allow: allowed, type: 'c', major, minor, access: 'rwm' });
  return [...devicesDenyAll(), c(1, 5), c(1, 3), c(1, 9), c(1, 8), c(5, 0), c(5, 1), c(10, 229, false)];
}

/** Replaces the whole of config.json by an engine's, keeping `process.args` (the probe). */
function replace(s: Spec, spec: Record<string, unknown>): void {
  const process = s['process'];
  for (const k of Object.keys(s)) Reflect.deleteProperty(s, k);
  Object.assign(s, spec);
  (s['process'] as { args?: unknown }).args = process['args'];
}
/** Builds a process object in the engines' (runtime-spec Go struct) key order, args filled in by `replace`. */
function proc(p: Record<string, unknown>): Record<string, unknown> {
  const { user, env, cwd, capabilities, ...rest } = p;
  return { user, args: [], env, cwd, capabilities, ...rest };
}

/** The session's own rlimit (`ulimit -H<flag>` / `-S<flag>`): what podman writes when it cannot raise them. */
function ownLimit(flag: string): number {
  const r = fs.readFileSync(`/proc/${process.pid}/limits`, 'utf8');
  const row = { n: 'Max open files', u: 'Max processes' }[flag[1] ?? ''] ?? '';
  const m = new RegExp(`^${row}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(r);
  const v = m?.[flag[0] === 'H' ? 2 : 1] ?? 'unlimited';
  return v === 'unlimited' ? 1048576 : Math.min(1048576, Number(v));
}

// ---- the engines' bundles -------------------------------------------------------------------

/** What a `docker run` changes in the spec moby's daemon writes (daemon/oci_linux.go createSpec). */
interface MobyRun {
  ociVersion: string;
  /** Part of the spec's process (user, capabilities, rlimits, noNewPrivileges). */
  process: Record<string, unknown>;
  hostname: string;
  readonlyRoot: boolean;
  /** `--tmpfs` and such, after the daemon's own mounts. */
  mounts: Rule[];
  /** linux.resources besides the device rules and the empty blockIO. */
  resources: Record<string, unknown>;
  paths: Paths;
}

/**
 * moby's spec over oci.DefaultLinuxSpec, on a cgroup v1 host with the cgroupfs driver and no
 * AppArmor (no apparmorProfile): absolute `root.path`, PATH and HOSTNAME, `oomScoreAdj: 0`, the
 * per-container files bound `rbind[, ro], rprivate`, the two sysctls it adds for a private
 * network namespace, its device rules, an empty `blockIO`, `/docker/<id>`, no cgroup namespace
 * (cgroupns "host" on v1), its seccomp profile. No hooks: libnetwork's (dockerd itself) is left out.
 */
function moby(s: Spec, ctx: Ctx, run: MobyRun): void {
  const bind = run.readonlyRoot ? ['rbind', 'ro', 'rprivate'] : ['rbind', 'rprivate'];
  replace(s, {
    ociVersion: run.ociVersion,
    process: proc({ env: [PATH_ENV, `HOSTNAME=${run.hostname}`], cwd: '/', ...run.process, oomScoreAdj: 0 }),
    root: { path: path.join(ctx.bundle, 'rootfs'), ...(run.readonlyRoot ? { readonly: true } : {}) },
    hostname: run.hostname,
    mounts: [...mobyMounts(), ...engineFiles(ctx, run.hostname, ['/etc/resolv.conf', '/etc/hostname', '/etc/hosts'], bind), ...run.mounts],
    linux: {
      sysctl: { 'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647' },
      resources: { devices: mobyDevices(), ...run.resources, blockIO: {} },
      cgroupsPath: `/docker/${ID}`,
      namespaces: [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }],
      seccomp: mobySeccomp(),
      maskedPaths: run.paths.masked,
      readonlyPaths: run.paths.readonly,
    },
  });
}

/**
 * docker 23.0 (moby v23.0.x vendors runtime-spec v1.0.3-0.20210326190908, so it writes
 * `ociVersion: "1.0.2-dev"`) for `docker run --read-only --user nobody --cap-drop ALL --cap-add
 * NET_BIND_SERVICE --security-opt no-new-privileges --ulimit nofile=1024:2048 --tmpfs /run
 * --hostname web-1`: the user from the rootfs' passwd with its gid as additional gid, no ambient
 * set, a tmpfs with docker's options (noexec, nosuid, nodev, rprivate).
 */
function docker23(s: Spec, ctx: Ctx): void {
  const caps = ['CAP_NET_BIND_SERVICE'];
  moby(s, ctx, {
    ociVersion: '1.0.2-dev',
    process: {
      user: { uid: 65534, gid: 65534, additionalGids: [65534] },
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 2048, soft: 1024 }],
      noNewPrivileges: true,
    },
    hostname: 'web-1',
    readonlyRoot: true,
    mounts: [mount('/run', 'tmpfs', 'tmpfs', ['noexec', 'nosuid', 'nodev', 'rprivate'])],
    resources: {},
    paths: MOBY_23,
  });
}

/**
 * docker 27.5 (moby v27.5.1, runtime-spec v1.2.0: `ociVersion: "1.2.0"`) for `docker run
 * --memory 64m --cpus 0.5 --pids-limit 100 --hostname web-2`: root with moby's 14 capabilities,
 * no rlimits (the container inherits containerd's), no no_new_privs, swap twice the memory
 * limit (the daemon's default), the cpu quota for 0.5 CPU, /sys/devices/virtual/powercap masked.
 */
function docker27(s: Spec, ctx: Ctx): void {
  moby(s, ctx, {
    ociVersion: '1.2.0',
    process: {
      user: { uid: 0, gid: 0, additionalGids: [0] },
      capabilities: { bounding: ENGINE_CAPS, effective: ENGINE_CAPS, permitted: ENGINE_CAPS },
    },
    hostname: 'web-2',
    readonlyRoot: false,
    mounts: [],
    resources: { memory: { limit: 67108864, swap: 134217728 }, cpu: { quota: 50000, period: 100000 }, pids: { limit: 100 } },
    paths: MOBY_27,
  });
}

/**
 * containerd 1.7 (v1.7.27, runtime-spec v1.1.0: `ociVersion: "1.1.0"`), CRI plugin, a Burstable
 * pod's workload container (requests 100m/64Mi, limits 500m/128Mi) with
 * `seccompProfile: RuntimeDefault` on a cgroup v1 host: populateDefaultUnixSpec without /run, no
 * rlimits and no default seccomp (WithoutDefaultSecuritySettings) and then RuntimeDefault's,
 * no_new_privs off, kubelet's masked/readonly paths, /sys/fs/cgroup ro, kubelet's bind mounts
 * (rbind, rprivate, rw), no cgroup namespace (v1), the io.kubernetes.cri annotations. A
 * workload container joins its sandbox's network, ipc and uts namespaces by path; a VM cannot
 * (docs/spec-support.md), so here it has its own, as the sandbox (pause) container does.
 */
function containerdCri17(s: Spec, ctx: Ctx): void {
  const sandbox = '5a5a5a5a9f1c2e3d4b5a69788796a5b4c3d2e1f00112233445566778899aabb';
  replace(s, {
    ociVersion: '1.1.0',
    process: proc({
      user: { uid: 0, gid: 0, additionalGids: [0] },
      env: [PATH_ENV, 'HOSTNAME=web-7d9f8c6b5-x2x4q', 'KUBERNETES_SERVICE_HOST=10.96.0.1', 'KUBERNETES_SERVICE_PORT=443'],
      cwd: '/',
      capabilities: { bounding: ENGINE_CAPS, effective: ENGINE_CAPS, permitted: ENGINE_CAPS },
      oomScoreAdj: 968,
    }),
    root: { path: 'rootfs' },
    hostname: 'web-7d9f8c6b5-x2x4q',
    mounts: [
      ...containerdMounts(false).filter((m) => m['destination'] !== '/dev/shm'),
      mount('/sys/fs/cgroup', 'cgroup', 'cgroup', ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']),
      ...engineFiles(ctx, 'web-7d9f8c6b5-x2x4q', ['/etc/hosts', '/dev/termination-log', '/etc/hostname', '/etc/resolv.conf'], ['rbind', 'rprivate', 'rw']),
      mount('/dev/shm', 'bind', shmDir(ctx), ['rbind', 'rprivate', 'rw']),
    ],
    annotations: {
      'io.kubernetes.cri.container-name': 'web',
      'io.kubernetes.cri.container-type': 'container',
      'io.kubernetes.cri.image-name': 'docker.io/library/busybox:1.36',
      'io.kubernetes.cri.sandbox-id': sandbox,
      'io.kubernetes.cri.sandbox-name': 'web-7d9f8c6b5-x2x4q',
      'io.kubernetes.cri.sandbox-namespace': 'default',
      'io.kubernetes.cri.sandbox-uid': '0b6a3c1e-8f2d-4c5b-9a7e-1d2c3b4a5f60',
    },
    linux: {
      resources: {
        devices: devicesDenyAll(),
        memory: { limit: 134217728, swap: 134217728 },
        cpu: { shares: 102, quota: 50000, period: 100000 },
      },
      cgroupsPath: `/kubepods/burstable/pod0b6a3c1e-8f2d-4c5b-9a7e-1d2c3b4a5f60/${ID}`,
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      seccomp: containerdSeccomp(),
      maskedPaths: CONTAINERD.masked,
      readonlyPaths: CONTAINERD.readonly,
    },
  });
}

/**
 * podman 5.6 (runtime-spec v1.2.1, as from 5.5: `ociVersion: "1.2.1"`), rootful, `cgroup_manager = "cgroupfs"`
 * (the cgroups path /libpod_parent/libpod-<id>; with systemd it is `machine.slice:libpod:<id>`),
 * for `podman run --name web --hostname web-3`: runtime-tools' generator and
 * pkg/specgen/generate over containers/common's defaults: 11 capabilities (no inheritable, no
 * ambient), rlimits NOFILE and NPROC at podman's own limits (it cannot raise them without
 * CAP_SYS_RESOURCE), umask 0022, pids.limit 2048, /proc/interrupts and /sys/fs/selinux masked,
 * /proc/asound read-only, /dev/shm and the per-container files bound (bind, rprivate), the
 * libpod annotations, the seccomp profile with defaultErrnoRet 38.
 */
function podman56(s: Spec, ctx: Ctx): void {
  const nofile = [ownLimit('Hn'), ownLimit('Sn')];
  const nproc = [ownLimit('Hu'), ownLimit('Su')];
  replace(s, {
    ociVersion: '1.2.1',
    process: proc({
      user: { uid: 0, gid: 0, umask: 0o022, additionalGids: [0] },
      env: [PATH_ENV, 'container=podman', 'HOME=/root', 'HOSTNAME=web-3'],
      cwd: '/',
      capabilities: { bounding: PODMAN_CAPS, effective: PODMAN_CAPS, permitted: PODMAN_CAPS },
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: nofile[0], soft: nofile[1] },
        { type: 'RLIMIT_NPROC', hard: nproc[0], soft: nproc[1] },
      ],
      oomScoreAdj: 0,
    }),
    root: { path: path.join(ctx.bundle, 'rootfs') },
    hostname: 'web-3',
    mounts: [
      mount('/proc', 'proc', 'proc', ['nosuid', 'noexec', 'nodev']),
      mount('/dev', 'tmpfs', 'tmpfs', ['nosuid', 'strictatime', 'mode=755', 'size=65536k']),
      mount('/sys', 'sysfs', 'sysfs', ['nosuid', 'noexec', 'nodev', 'ro']),
      mount('/dev/pts', 'devpts', 'devpts', ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']),
      mount('/dev/mqueue', 'mqueue', 'mqueue', ['nosuid', 'noexec', 'nodev']),
      ...engineFiles(ctx, 'web-3', ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/run/.containerenv'], ['bind', 'rprivate']),
      mount('/dev/shm', 'bind', shmDir(ctx), ['bind', 'rprivate', 'nosuid', 'noexec', 'nodev']),
      mount('/sys/fs/cgroup', 'cgroup', 'cgroup', ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', 'ro']),
    ],
    annotations: {
      'io.container.manager': 'libpod',
      'org.opencontainers.image.stopSignal': '15',
      'org.systemd.property.KillSignal': '15',
      'org.systemd.property.TimeoutStopUSec': 'uint64 10000000',
    },
    linux: {
      sysctl: { 'net.ipv4.ping_group_range': '0 0' },
      resources: { devices: devicesDenyAll(), pids: { limit: 2048 } },
      cgroupsPath: `/libpod_parent/libpod-${ID}`,
      // a cgroup namespace only on cgroup v2 hosts (cgroupns = "private" there, "host" on v1)
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      seccomp: podmanSeccomp(),
      maskedPaths: PODMAN.masked,
      readonlyPaths: PODMAN.readonly,
    },
  });
}

/**
 * containerd 2.3 (v2.3.4, runtime-spec v1.3.0: `ociVersion: "1.3.0"`), `ctr run --seccomp
 * --hostname ctr-1` in namespace `default`: populateDefaultUnixSpec as is (14 capabilities,
 * RLIMIT_NOFILE 1024, no_new_privs, /run tmpfs, no /sys/fs/cgroup mount, powercap masked, the
 * cgroups path /default/<id>) plus contrib/seccomp's default profile.
 */
function containerd23(s: Spec): void {
  replace(s, {
    ociVersion: '1.3.0',
    process: proc({
      user: { uid: 0, gid: 0 },
      env: [PATH_ENV],
      cwd: '/',
      capabilities: { bounding: ENGINE_CAPS, effective: ENGINE_CAPS, permitted: ENGINE_CAPS },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    }),
    root: { path: 'rootfs' },
    hostname: 'ctr-1',
    mounts: containerdMounts(true),
    linux: {
      resources: { devices: devicesDenyAll() },
      cgroupsPath: `/default/${ID}`,
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      seccomp: containerdSeccomp(),
      maskedPaths: CONTAINERD.masked,
      readonlyPaths: CONTAINERD.readonly,
    },
  });
}

// ---- fields added after 1.0.2 ---------------------------------------------------------------

/** A seccomp profile on the runc default spec, under the runtime-spec version that added what it uses. */
function seccompAt(version: string, profile: Rule): (s: Spec) => void {
  return (s) => {
    s['ociVersion'] = version;
    s['linux'].seccomp = profile;
  };
}

/**
 * mkdir(2) in a child shell (killed: the parent sees 159), then in the container's own process.
 * (Not uname(2): busybox's shell calls it as it starts.)
 */
const KILL_MKDIR = sh('sh -c "mkdir /dev/shm/a"; echo "rc=$?"; exec mkdir /dev/shm/b');
const killOn = (action: string): Rule => ({ defaultAction: 'SCMP_ACT_ALLOW', architectures: X86, syscalls: [{ names: ['mkdir', 'mkdirat'], action }] });

/** runc's warning about a relative mount destination (logrus, twice) against kata-runtime's silence. */
function withoutRelativeWarning(o: Outcome): Outcome {
  return { ...o, stderr: o.stderr.replace(/^time=.* level=warning msg=".*(not absolute|invalid configuration).*\n/gm, '') };
}

export const VERSION_CASES: DiffCase[] = [
  {
    // docker 23.0 writes ociVersion 1.0.2-dev (docker23)
    name: 'engine-docker-23-1.0.2-dev',
    args: probe(MOBY_23, NOFILE, UNSHARE, 'cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start', 'touch /x; echo "root rc=$?"; touch /run/x; echo "run rc=$?"'),
    edit: docker23,
    expect: { code: 0, stdout: /^uid=65534\(nobody\) gid=65534\(nobody\) groups=65534\(nobody\)\n(?:.*\n)*CapEff:\s+0000000000000000\n(?:.*\n)*NoNewPrivs:\s+1\nSeccomp:\s+2\n(?:.*\n)*nofile=1024:2048\nunshare rc=1\n/ },
  },
  {
    // containerd 1.7's CRI writes ociVersion 1.1.0 (containerdCri17)
    name: 'engine-containerd-1.7-cri-1.1.0',
    args: probe(CONTAINERD, UNSHARE, overLimit(192)),
    edit: containerdCri17,
    expect: { code: 0, stdout: /^uid=0\(root\) gid=0\(root\)(?:.*\n)*NoNewPrivs:\s+0\nSeccomp:\s+2\n(?:.*\n)*oom_score_adj=968 umask=0022\nhostname=web-7d9f8c6b5-x2x4q (?:.*\n)*unshare rc=1\ndd 192M rc=137\n$/ },
  },
  {
    // docker 27.5 writes ociVersion 1.2.0 (docker27)
    name: 'engine-docker-27-1.2.0',
    args: probe(MOBY_27, UNSHARE, 'cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start', overLimit(96)),
    edit: docker27,
    expect: { code: 0, stdout: /^uid=0\(root\) gid=0\(root\)(?:.*\n)*CapEff:\s+00000000a80425fb\n(?:.*\n)*Seccomp:\s+2\n(?:.*\n)*unshare rc=1\n0\s+2147483647\n0\ndd 96M rc=137\n$/ },
  },
  {
    // podman 5.6 writes ociVersion 1.2.1 (podman56)
    name: 'engine-podman-5.6-1.2.1',
    args: probe(PODMAN, NOFILE, NPROC, 'echo "/proc/interrupts: $(cat /proc/interrupts | wc -c)"', 'hostname other; echo "sethostname rc=$?"'),
    edit: podman56,
    expect: { code: 0, stdout: /^uid=0\(root\) gid=0\(root\)(?:.*\n)*CapEff:\s+00000000800405fb\n(?:.*\n)*Seccomp:\s+2\n(?:.*\n)*\/proc\/interrupts: 0\nsethostname rc=1\n$/, stderr: /sethostname: Operation not permitted/ },
  },
  {
    // containerd 2.3 writes ociVersion 1.3.0 (containerd23)
    name: 'engine-containerd-2.3-ctr-1.3.0',
    args: probe(CONTAINERD, NOFILE, UNSHARE),
    edit: containerd23,
    expect: { code: 0, stdout: /^uid=0\(root\) gid=0\(root\)(?:.*\n)*NoNewPrivs:\s+1\nSeccomp:\s+2\n(?:.*\n)*hostname=ctr-1 (?:.*\n)*nofile=1024:1024\nunshare rc=1\n$/ },
  },

  // One case per field added after runtime-spec 1.0.2 that runc 1.1.5 implements, under the
  // version that added it (errnoRet: `seccomp-errno-ret` in cases.ts, at 1.1.0).
  {
    // 1.1.0: linux.seccomp.defaultErrnoRet. ENOSYS for what the profile does not list.
    name: 'seccomp-default-errno-ret',
    args: sh('unshare -U true; echo "unshare rc=$?"; mkdir /dev/shm/d && echo made'),
    edit: seccompAt('1.1.0', { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, architectures: X86, syscalls: [allow(ALLOWED), allow(['arch_prctl']), CLONE_NO_NS, CLONE3_ENOSYS] }),
    expect: { code: 0, stdout: /^unshare rc=1\nmade\n$/, stderr: /^unshare: unshare\(0x10000000\): Function not implemented\n$/ },
  },
  {
    // 1.1.0: SCMP_ACT_KILL_PROCESS: the whole process dies of SIGSYS (the shell sees 159).
    name: 'seccomp-kill-process',
    args: KILL_MKDIR,
    edit: seccompAt('1.1.0', killOn('SCMP_ACT_KILL_PROCESS')),
    expect: { code: 159, stdout: /^rc=159\n$/, stderr: /^Bad system call\n$/ },
  },
  {
    // 1.1.0: SCMP_ACT_KILL_THREAD: the calling thread (a single-threaded process: all of it).
    name: 'seccomp-kill-thread',
    args: KILL_MKDIR,
    edit: seccompAt('1.1.0', killOn('SCMP_ACT_KILL_THREAD')),
    expect: { code: 159, stdout: /^rc=159\n$/, stderr: /^Bad system call\n$/ },
  },
  {
    // 1.2.0: a relative mount destination is allowed (deprecated), relative to "/". runc 1.1.5
    // takes it so, with two warnings on stderr.
    name: 'mount-relative-destination',
    args: sh('grep " /data " /proc/self/mounts; echo hi > /data/f && cat /data/f'),
    edit: (s) => {
      s['ociVersion'] = '1.2.0';
      s['mounts'].push({ destination: 'data', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m'] });
    },
    normalise: [{ why: 'runc 1.1.5 warns twice (logrus) that the destination is not absolute; those lines are removed', apply: withoutRelativeWarning }],
    exception: 'runc\'s deprecation warnings on stderr are its own',
    expect: { code: 0, stdout: /^tmpfs \/data tmpfs rw,nosuid,nodev,relatime,size=1024k 0 0\nhi\n$/, stderr: /not absolute/ },
  },
  {
    // No rlimits in the spec (docker, containerd's CRI): runc's container inherits the rlimits
    // of its caller (the engine's shim); kata-runtime's must get the same.
    name: 'rlimits-absent',
    args: sh(`${NOFILE}; ${NPROC}`),
    edit: (s) => {
      delete s['process'].rlimits;
    },
    expect: { code: 0, stdout: /^nofile=\d+:\d+\nnproc=\d+:\d+\n$/ },
  },
  {
    // The flags of the read-only paths under a /proc mounted nosuid, noexec, nodev (as every
    // engine mounts it): runc remounts each bind read-only keeping the flags of the mount it
    // came from.
    name: 'readonly-paths-flags',
    args: sh(String.raw`awk '$2 ~ /^\/proc\/(bus|fs|irq|sys|sysrq-trigger)$/ {print $2, $4}' /proc/self/mounts | sort`),
    edit: (s) => {
      s['mounts'][0] = mount('/proc', 'proc', 'proc', ['nosuid', 'noexec', 'nodev']);
    },
    awaiting: {
      fix: 'crun 1.8.1 in the guest remounts readonlyPaths with MS_RDONLY alone, dropping nosuid, nodev and noexec (a newer crun, or the agent remounting them)',
      now: /^\/proc\/bus ro,relatime\n/,
    },
    expect: { code: 0, stdout: /^\/proc\/bus ro,nosuid,nodev,noexec,relatime\n(?:.*\n)*\/proc\/sys ro,nosuid,nodev,noexec,relatime\n$/ },
  },
  {
    // A uid the rootfs' /etc/passwd does not know (docker --user 1000:1000): runc sets HOME=/.
    name: 'home-without-passwd-entry',
    args: sh('echo "HOME=$HOME"; id'),
    edit: (s) => {
      s['process'].user = { uid: 1000, gid: 1000 };
    },
    expect: { code: 0, stdout: /^HOME=\/\nuid=1000 gid=1000\n$/ },
  },
  {
    // podman 5's profile as written, socket(2) rules and all (AUDIT_SOCKET), with the amd64
    // architectures: libseccomp 2.5.4 (runc 1.1.5 on the host; crun 1.8.1 in the guest) cannot
    // load it ("file exists"). Both refuse the bundle; the day one of them takes it, this fails.
    name: 'seccomp-podman-audit-socket',
    args: sh('echo ran'),
    edit: seccompAt('1.1.0', { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, architectures: X86, syscalls: [allow(ALLOWED), allow(['arch_prctl']), ...AUDIT_SOCKET] }),
    normalise: [errorMentions(/file exists/i)],
    exception: 'both refuse the profile; stderr is each runtime\'s own error line',
    expect: { code: 1, stdout: /^$/, stderr: /error adding seccomp rule for syscall socket: file exists/ },
  },
];
