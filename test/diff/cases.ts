import fs from 'node:fs';
import path from 'node:path';
import { CAPABILITIES } from '../../src/oci/bundle.js';
import { DEFAULT_CAPS } from '../../src/oci/default-spec.js';
import { errorMentions, hooksLog, type Ctx, type DiffCase, type Normalisation, type Outcome, type Spec } from './harness.js';
import { VERSION_CASES } from './versions.js';

/**
 * The table of the differential suite: each bundle runs under runc and under kata-runtime and
 * must give the same stdout, stderr and exit code (and the same host-side observation), except
 * where a case documents an inherent difference (docs/differential.md lists them all).
 */

const sh = (script: string): string[] => ['sh', '-c', script];

function caps(s: Spec, list: string[]): void {
  s['process'].capabilities = { bounding: list, effective: list, permitted: list, ambient: list };
}
function mount(s: Spec, m: Record<string, unknown>): void {
  s['mounts'].push(m);
}
function resources(s: Spec, r: Record<string, unknown>): void {
  Object.assign(s['linux'].resources, r);
}
function rlimits(s: Spec, ...l: Array<[string, number, number]>): void {
  s['process'].rlimits = l.map(([type, soft, hard]) => ({ type, soft, hard }));
}
function hook(s: Spec, kind: string, script: string, extra: Record<string, unknown> = {}): void {
  s['hooks'] ??= {};
  (s['hooks'][kind] ??= []).push({ path: '/bin/sh', args: ['sh', '-c', script], ...extra });
}
function seccomp(s: Spec, rules: Array<Record<string, unknown>>): void {
  s['linux'].seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: rules };
}
/** The host dir `name` (made by setup) bound at `dest`. */
function bindHost(s: Spec, ctx: Ctx, name: string, dest: string, options: string[] = ['rbind', 'rw']): void {
  mount(s, { destination: dest, type: 'bind', source: path.join(ctx.host, name), options });
}
/** host/data (0755 root): a file `secret` and a dir `sub`, each with [mode, uid, gid]. */
function dataTree(ctx: Ctx, secret: [number, number, number], sub: [number, number, number]): void {
  const d = path.join(ctx.host, 'data');
  fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(d, 'secret'), 's3cret\n');
  for (const [name, [mode, uid, gid]] of [['secret', secret], ['sub', sub]] as const) {
    fs.chownSync(path.join(d, name), uid, gid);
    fs.chmodSync(path.join(d, name), mode);
  }
  fs.chmodSync(d, 0o755);
}

/** Host dir/file listing with contents, for observations. */
function listing(dir: string): string {
  if (!fs.existsSync(dir)) return '(missing)';
  return fs
    .readdirSync(dir)
    .sort()
    .map((f) => `${f}: ${JSON.stringify(fs.readFileSync(path.join(dir, f), 'utf8'))}`)
    .join('\n');
}



const MiB = 1024 * 1024;

/**
 * A host hook that appends one line to the case's hooks log (hooksLog): `label`, then what it saw:
 * the keys of the state on its stdin, its status, whether its pid is a live process (`absent` when
 * the state has none), whether id and bundle are the case's, its argv[0] and argument count, its
 * cwd (unless `cwd: false`) and its environment: the names, and a checksum of the whole (PWD and
 * OLDPWD left out: the shell derives them from the cwd). Then it runs `then` (`exit 1`, ...).
 */
function recorder(ctx: Ctx, name: string, label: string, o: { then?: string; cwd?: boolean; timeout?: number; env?: string[] } = {}): Record<string, unknown> {
  // One awk for the state and the names (a recorder runs some 40 times a suite, under load).
  const awk = String.raw`
    NR == 1 {
      s = $0; gsub(/[{}]/, "", s); n = split(s, kv, ",")
      for (i = 1; i <= n; i++) {
        k = kv[i]; sub(/^"/, "", k); sub(/".*/, "", k)
        v = kv[i]; sub(/^"[^"]*": */, "", v); gsub(/"/, "", v)
        keys = keys k " "; val[k] = v
      }
      next
    }
    $0 != "" { nm = $0; sub(/=.*/, "", nm); names = names nm " " }
    END {
      pid = val["pid"]; p = "absent"
      if (pid == "0") p = "zero"
      else if (pid != "") { p = "dead"; if ((getline st < ("/proc/" pid "/stat")) > 0 && st !~ /^[0-9]+ \(.*\) Z/) p = "alive" }
      split(sum, cs, " ")
      printf "%s keys=[%s] status=%s pid=%s id=%s bundle=%s argv0=%s argc=%s%s env=[%s] envsum=%s\n", label, keys, val["status"], p, val["id"] == id ? "ok" : val["id"], val["bundle"] == bundle ? "ok" : val["bundle"], a0, argc, showcwd == 1 ? " cwd=" (cwd == bundle ? "bundle" : cwd) : "", names, cs[1]
    }`;
  const script = [
    String.raw`e=$(env | grep -v -e '^PWD=' -e '^OLDPWD=' | sort)`,
    String.raw`sum=$(printf '%s\n' "$e" | cksum)`,
    String.raw`a0=$(tr '\0' '\n' < /proc/$$/cmdline | head -n 1)`,
    String.raw`{ cat; echo; printf '%s\n' "$e"; } | awk -v label="$0" -v id="$2" -v bundle="$3" -v cwd="$PWD" -v a0="$a0" -v argc=$# -v sum="$sum" -v showcwd=${o.cwd === false ? 0 : 1} '${awk}' >> "$1"`,
    o.then ?? 'true',
  ].join('\n');
  return {
    path: '/bin/sh',
    args: ['sh', '-c', script, label, hooksLog(ctx), `diff-${name}`, ctx.bundle],
    ...(o.timeout === undefined ? {} : { timeout: o.timeout }),
    ...(o.env === undefined ? {} : { env: o.env }),
  };
}

type HostKind = 'prestart' | 'createRuntime' | 'poststart' | 'poststop';
/** Host hooks as `recorder`s: per kind, [label, options] for each hook. */
type Recorders = Partial<Record<HostKind, Array<[string, Parameters<typeof recorder>[3]?]>>>;

/** A hook that fails the way a broken hook does: a line on stderr, exit 1. */
const FAIL = 'echo "hook failed" >&2; exit 1';
/** A hook that outlives its 1 s timeout (exec: runc waits for the stdio a child would hold). */
const HANG = 'exec sleep 30';

/**
 * A lifecycle case (DiffCase.steps) whose host hooks are `recorder`s (poststop ones never record
 * their cwd: runc's is its caller's in `delete`, docs/cli-compat.md) and whose guest hooks, if
 * any, `guest` gives. The transcript and the hooks' log are compared; stderr only as "this step
 * wrote to stderr", since its wording is each runtime's own.
 */
function lifecycle(c: Omit<DiffCase, 'args' | 'compare' | 'exception' | 'edit'> & { args?: string[]; hooks: Recorders; guest?: Record<string, Array<Record<string, unknown>>>; why?: string }): DiffCase {
  const { hooks, guest, why, ...rest } = c;
  return {
    args: sh('echo main'),
    ...rest,
    edit: (s, ctx) => {
      const all: Record<string, Array<Record<string, unknown>>> = { ...guest };
      for (const [kind, list] of Object.entries(hooks)) {
        all[kind] = (list ?? []).map(([label, o]) => recorder(ctx, c.name, label, { ...(kind === 'poststop' ? { cwd: false } : {}), ...o }));
      }
      s['hooks'] = all;
    },
    compare: ['code', 'stdout', 'host'],
    exception: `stderr is each runtime's own wording; the transcript records which steps wrote to it${why === undefined ? '' : `. ${why}`}`,
  };
}

/** runc 1.1.5 runs poststart hooks in create (status `created`); the spec and we, in start. */
const POSTSTART_STATUS: Normalisation = {
  why: 'runc 1.1.5 runs poststart hooks in create, with status `created` (fixed upstream, opencontainers/runc#4347); the runtime-spec and kata-runtime run them in start, with status `running`',
  apply: (o, rt) => (rt === 'kata' ? o : { ...o, host: o.host.replace(/^((?:a\d|poststart) .*)status=created /gm, '$1status=running ') }),
};

/**
 * One host phase with a broken hook: the second of three fails (`fails`), or the first outlives
 * `timeout: 1` (`timeout`). The rest of the phase must not run; the poststop hooks (s1, s2) run,
 * and nothing is left. create's phases through create; poststart through `run` (runc 1.1.5 runs
 * it in create, the spec in start: run does both), with a process that would print after 3 s;
 * poststop through delete, which still succeeds.
 */
function brokenHook(kind: HostKind, how: 'fails' | 'timeout'): DiffCase {
  const x = { prestart: 'p', createRuntime: 'c', poststart: 'a', poststop: 's' }[kind];
  const list: Array<[string, Parameters<typeof recorder>[3]?]> = how === 'fails'
    ? [[`${x}1`], [`${x}2`, { then: FAIL }], [`${x}3`]]
    : [[`${x}1`, { then: HANG, timeout: 1 }], [`${x}2`]];
  const ran = how === 'fails' ? `${x}1 ${x}2` : `${x}1`;
  const name = `hook-${kind.replace(/[A-Z]/g, (l) => `-${l.toLowerCase()}`)}-${how}`;
  const stopped = /^s1 keys=\[ociVersion id status bundle \] status=stopped pid=absent id=ok bundle=ok /m;
  if (kind === 'poststop') {
    return lifecycle({
      name,
      hooks: { poststop: list },
      steps: ['create', 'start', 'wait', 'delete', 'state'],
      expect: { code: 0, stdout: new RegExp(`^create: exit 0\nstart: exit 0\nwait: stopped\ndelete: exit 0, stderr\n {2}hooks: ${ran}\nstate: exit 1\ncontainer stdout: "main\\\\n"\ncontainer stderr: none\n$`), host: stopped },
    });
  }
  const verb = kind === 'poststart' ? 'run' : 'create';
  return lifecycle({
    name,
    ...(kind === 'poststart' ? { args: sh('sleep 3; echo main'), normalise: [POSTSTART_STATUS] } : {}),
    hooks: { [kind]: list, poststop: [['s1'], ['s2']] },
    steps: [verb, 'state'],
    expect: { code: 1, stdout: new RegExp(`^${verb}: exit 1, stderr\n {2}hooks: ${ran} s1 s2\nstate: exit 1\ncontainer stdout: ""\ncontainer stderr: none\n$`), host: stopped },
  });
}


const PEER_GROUPS_WHY = 'peer group numbers are normalised (the kernel\'s counters)';
/** Peer group numbers are the kernel's counters (they depend on what else is mounted): only the tags are compared. */
const PEER_GROUPS: Normalisation = {
  why: 'peer group numbers in mountinfo (`shared:N`, `master:N`) become `N`: they count the mounts made so far',
  apply: (o) => ({ ...o, stdout: o.stdout.replace(/\b(shared|master|propagate_from):\d+/g, '$1:N') }),
};

/**
 * The container prints the mount point and mountinfo tags (`shared:N`, `master:N`, `unbindable`)
 * of /, and of every mount at or under /data or /scratch; only the tags' presence is compared.
 */
const MOUNT_TAGS: Pick<DiffCase, 'args' | 'normalise' | 'exception'> = {
  args: sh('awk \'$5 == "/" || $5 ~ /^\\/(data|scratch)/ { o = ""; for (i = 7; $i != "-"; i++) o = o " " $i; print $5 o }\' /proc/self/mountinfo'),
  normalise: [PEER_GROUPS],
  exception: PEER_GROUPS_WHY,
};
/** A host whose / is shared (systemd) adds ` master:N` to runc's lines; allowed in the expectations. */
const M = '( master:\\d+)?';

/** The tag runc gives the bind on a host whose / is private: none, `shared:N` or `unbindable`. */
type Tag = '' | 'shared' | 'unbindable';

/**
 * A host dir bound at /data with `options`, linux.rootfsPropagation set when given; the container
 * prints the tags of / and /data.
 */
function propagationCase(name: string, options: string[], tag: Tag, rootfsPropagation?: string): DiffCase {
  return {
    name,
    ...MOUNT_TAGS,
    setup: (ctx) => fs.mkdirSync(path.join(ctx.host, 'data')),
    edit: (s, ctx) => {
      bindHost(s, ctx, 'data', '/data', options);
      if (rootfsPropagation !== undefined) s['linux']['rootfsPropagation'] = rootfsPropagation;
    },
    expect: { code: 0, stdout: new RegExp(`^/${M}\n/data${{ '': '', shared: ' shared:\\d+', unbindable: ' unbindable' }[tag]}${M}\n$`) },
  };
}

/** Opens descriptors 3, 4, ... printing each until the shell fails (and exits 1) for want of one. */
const OPEN_FDS = 'i=3; while [ $i -lt 64 ]; do eval "exec $i</etc/passwd"; echo $i; i=$((i+1)); done';

export const CASES: DiffCase[] = [
  // ---- the process, its stdio and exit status -------------------------------------------------
  {
    name: 'stdout-stderr-exit',
    args: sh('echo out; echo err >&2; exit 3'),
    expect: { code: 3, stdout: /^out\n$/, stderr: /^err\n$/ },
  },
  { name: 'exit-255', args: sh('exit 255'), expect: { code: 255 } },
  {
    name: 'child-killed-by-signal',
    args: sh('sh -c "kill -KILL \\$\\$"; echo rc=$?; sh -c "kill -TERM \\$\\$"; echo rc=$?'),
    expect: { code: 0, stdout: /^rc=137\nrc=143\n$/ },
  },
  {
    // PID 1 of a pid namespace ignores signals it has no handler for, even SIGKILL from inside.
    name: 'pid1-ignores-own-signals',
    args: sh('kill -TERM $$; kill -KILL $$; echo still here'),
    expect: { code: 0, stdout: /^still here\n$/ },
  },
  {
    name: 'args-verbatim',
    args: ['printf', '[%s]\\n', 'a b', '', 'c"d', "e'f", '$HOME', '*', 'ü\ttab'],
    expect: { code: 0, stdout: /^\[a b\]\n\[\]\n/ },
  },
  {
    name: 'stdin-relayed',
    args: sh('wc -l; echo done'),
    input: 'one\ntwo\nthree\n',
    expect: { code: 0, stdout: /^3\ndone\n$/ },
  },
  { name: 'large-stdout', args: ['seq', '1', '200000'], expect: { code: 0, stdout: /\n200000\n$/ } },
  {
    name: 'missing-executable',
    args: ['/nonexistent'],
    normalise: [errorMentions(/\/nonexistent/, /no such file or directory/i)],
    exception: 'the error is the runtime\'s own, not the container\'s: wording differs',
    expect: { code: 1, stdout: /^$/, stderr: /nonexistent/ },
  },

  // ---- environment and working directory -------------------------------------------------------
  {
    name: 'env',
    args: ['env'],
    edit: (s) => {
      s['process'].env.push('FOO=bar baz', 'EMPTY=', 'EQ=a=b=c');
    },
    expect: { code: 0, stdout: /FOO=bar baz\n/ },
  },
  {
    name: 'env-home-from-passwd',
    args: sh('echo "HOME=$HOME"; id'),
    edit: (s) => {
      s['process'].user = { uid: 65534, gid: 65534 };
    },
    expect: { code: 0, stdout: /^HOME=\/\n/ },
  },
  {
    name: 'env-home-explicit',
    args: sh('echo "HOME=$HOME"'),
    edit: (s) => {
      s['process'].env.push('HOME=/custom');
    },
    expect: { code: 0, stdout: /^HOME=\/custom\n$/ },
  },
  { name: 'cwd', args: sh('pwd; ls'), edit: (s) => { s['process'].cwd = '/etc'; }, expect: { code: 0, stdout: /^\/etc\ngroup\npasswd\n$/ } },
  {
    name: 'cwd-created-if-missing',
    args: sh('pwd; stat -c "%a %u:%g" .'),
    edit: (s) => {
      s['process'].cwd = '/made/by/runtime';
    },
    expect: { code: 0, stdout: /^\/made\/by\/runtime\n/ },
  },

  // ---- user, groups, umask ---------------------------------------------------------------------
  {
    name: 'user-uid-gid',
    args: sh('id; grep -E "^(Uid|Gid|Groups):" /proc/self/status'),
    edit: (s) => {
      s['process'].user = { uid: 1000, gid: 1000 };
    },
    expect: { code: 0, stdout: /^uid=1000 gid=1000/ },
  },
  {
    name: 'user-additional-gids',
    args: sh('id; grep -E "^(Uid|Gid|Groups):" /proc/self/status'),
    edit: (s) => {
      s['process'].user = { uid: 1000, gid: 1000, additionalGids: [10, 20, 65534] };
    },
    expect: { code: 0, stdout: /groups=/ },
  },
  {
    name: 'user-names-from-rootfs',
    args: ['id'],
    edit: (s) => {
      s['process'].user = { uid: 65534, gid: 65534, additionalGids: [0] };
    },
    expect: { code: 0, stdout: /nobody/ },
  },
  {
    name: 'umask',
    args: sh('umask; touch /dev/shm/f; mkdir /dev/shm/d; stat -c "%a %n" /dev/shm/f /dev/shm/d'),
    edit: (s) => {
      s['process'].user.umask = 0o027;
    },
    expect: { code: 0, stdout: /^0027\n640 \/dev\/shm\/f\n750 \/dev\/shm\/d\n$/ },
  },
  { name: 'umask-default', args: sh('umask'), expect: { code: 0, stdout: /^0022\n$/ } },

  // ---- rlimits ---------------------------------------------------------------------------------
  {
    name: 'rlimit-nofile',
    args: sh('ulimit -Sn; ulimit -Hn'),
    edit: (s) => rlimits(s, ['RLIMIT_NOFILE', 512, 2048]),
    expect: { code: 0, stdout: /^512\n2048\n$/ },
  },
  {
    name: 'rlimit-nofile-enforced',
    args: sh(OPEN_FDS),
    edit: (s) => rlimits(s, ['RLIMIT_NOFILE', 24, 24]),
    expect: { code: 1, stdout: /^3\n(.*\n)*23\n$/, stderr: /^sh: eval: line \d+: can't open \/etc\/passwd: Too many open files\n$/ },
  },
  {
    // A small limit that runc's own init copes with (it needs 7 descriptors).
    // crun (the guest's runtime) applies rlimits before its own setup, which needs about 18 fds:
    // below that create fails there (docs/spec-support.md). 24 is small and works under both.
    name: 'rlimit-nofile-small',
    args: sh(OPEN_FDS),
    edit: (s) => rlimits(s, ['RLIMIT_NOFILE', 24, 24]),
    expect: { code: 1, stdout: /^3\n4\n(.*\n)*23\n$/, stderr: /Too many open files/ },
  },
  {
    name: 'rlimit-nproc',
    args: sh('ulimit -Su; ulimit -Hu'),
    edit: (s) => rlimits(s, ['RLIMIT_NOFILE', 1024, 1024], ['RLIMIT_NPROC', 64, 128]),
    expect: { code: 0, stdout: /^64\n128\n$/ },
  },
  {
    name: 'rlimit-stack',
    args: sh('ulimit -Ss; ulimit -Hs'),
    edit: (s) => rlimits(s, ['RLIMIT_NOFILE', 1024, 1024], ['RLIMIT_STACK', 4 * MiB, 16 * MiB]),
    expect: { code: 0, stdout: /^4096\n16384\n$/ },
  },
  {
    name: 'rlimit-fsize-enforced',
    args: sh('dd if=/dev/zero of=/dev/shm/f bs=1k count=100 2>/dev/null; echo rc=$?; stat -c %s /dev/shm/f'),
    edit: (s) => rlimits(s, ['RLIMIT_NOFILE', 1024, 1024], ['RLIMIT_FSIZE', 10240, 10240]),
    expect: { code: 0, stdout: /^rc=153\n10240\n$/ },
  },
  {
    // Every rlimit set: nothing is inherited from the caller (runc) or the guest (kata-runtime).
    // No hard limit above the caller's where raising it needs CAP_SYS_RESOURCE (NICE, RTPRIO: 0):
    // runc, unlike kata-runtime's guest, cannot raise them without it.
    name: 'rlimit-all',
    args: ['cat', '/proc/self/limits'],
    edit: (s) =>
      rlimits(
        s,
        ['RLIMIT_CPU', 3600, 7200], ['RLIMIT_FSIZE', 1 << 30, 1 << 30], ['RLIMIT_DATA', 512 * MiB, 1024 * MiB],
        ['RLIMIT_STACK', 8 * MiB, 8 * MiB], ['RLIMIT_CORE', 0, 1 * MiB], ['RLIMIT_RSS', 256 * MiB, 256 * MiB],
        ['RLIMIT_NPROC', 1000, 2000], ['RLIMIT_NOFILE', 1024, 4096], ['RLIMIT_MEMLOCK', 64 * 1024, 64 * 1024],
        ['RLIMIT_AS', 2048 * MiB, 4096 * MiB], ['RLIMIT_LOCKS', 100, 200], ['RLIMIT_SIGPENDING', 500, 1000],
        ['RLIMIT_MSGQUEUE', 409600, 409600], ['RLIMIT_NICE', 0, 0], ['RLIMIT_RTPRIO', 0, 0], ['RLIMIT_RTTIME', 100000, 200000],
      ),
    expect: { code: 0, stdout: /Max open files\s+1024\s+4096/ },
  },

  // ---- capabilities and no_new_privs -----------------------------------------------------------
  { name: 'caps-default', args: sh('grep ^Cap /proc/self/status'), expect: { code: 0, stdout: /CapEff:\s+0000000020000420/ } },
  {
    name: 'caps-added',
    args: sh('grep ^Cap /proc/self/status'),
    edit: (s) => caps(s, [...DEFAULT_CAPS, 'CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_SETUID']),
    expect: { code: 0, stdout: /CapEff:\s+00000000202014a3/ },
  },
  { name: 'caps-none', args: sh('grep ^Cap /proc/self/status'), edit: (s) => caps(s, []), expect: { code: 0, stdout: /CapBnd:\s+0{16}/ } },
  {
    // Every capability but CAP_SYS_RESOURCE, which the sessions running this suite lack: runc
    // cannot grant what its caller does not have, kata-runtime's guest could.
    name: 'caps-all-but-sys-resource',
    args: sh('grep ^Cap /proc/self/status'),
    edit: (s) => caps(s, CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE')),
    expect: { code: 0, stdout: /CapEff:\s+000001fffeffffff/ },
  },
  {
    name: 'caps-distinct-sets',
    args: sh('grep ^Cap /proc/self/status'),
    edit: (s) => {
      s['process'].capabilities = {
        bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID', 'CAP_NET_RAW'],
        effective: ['CAP_KILL'],
        permitted: ['CAP_KILL', 'CAP_CHOWN'],
        inheritable: ['CAP_CHOWN'],
        ambient: ['CAP_CHOWN'],
      };
    },
    expect: { code: 0, stdout: /CapInh:\s+0000000000000001/ },
  },
  {
    name: 'caps-nonroot-ambient',
    args: sh('grep ^Cap /proc/self/status'),
    edit: (s) => {
      s['process'].user = { uid: 1000, gid: 1000 };
      s['process'].capabilities.inheritable = DEFAULT_CAPS;
    },
    expect: { code: 0, stdout: /CapEff:\s+0000000020000420\n.*\nCapAmb:\s+0000000020000420/ },
  },
  {
    name: 'cap-chown-missing',
    args: sh('touch /dev/shm/x; chown 1000:1000 /dev/shm/x; echo rc=$?'),
    expect: { code: 0, stdout: /^rc=1\n$/, stderr: /Operation not permitted/ },
  },
  { name: 'no-new-privs-on', args: sh('grep NoNewPrivs /proc/self/status'), expect: { code: 0, stdout: /^NoNewPrivs:\s+1\n$/ } },
  {
    name: 'no-new-privs-off',
    args: sh('grep NoNewPrivs /proc/self/status'),
    edit: (s) => {
      s['process'].noNewPrivileges = false;
    },
    expect: { code: 0, stdout: /^NoNewPrivs:\s+0\n$/ },
  },
  { name: 'oom-score-adj', args: ['cat', '/proc/self/oom_score_adj'], edit: (s) => { s['process'].oomScoreAdj = 500; }, expect: { code: 0, stdout: /^500\n$/ } },

  // ---- root filesystem, bind mounts, tmpfs -----------------------------------------------------
  {
    name: 'root-readonly',
    args: sh('touch /x; echo rc=$?; echo y >> /etc/passwd; echo rc=$?; mkdir /tmp/d; echo rc=$?'),
    expect: { code: 0, stdout: /^rc=1\nrc=1\nrc=1\n$/, stderr: /Read-only file system/ },
  },
  {
    name: 'root-readwrite',
    args: sh('touch /x && echo hi > /etc/motd && cat /etc/motd && ls -A / | tr "\\n" " "'),
    edit: (s) => {
      s['root'].readonly = false;
    },
    observe: (ctx) => fs.readFileSync(path.join(ctx.bundle, 'rootfs', 'etc', 'motd'), 'utf8'),
    expect: { code: 0, stdout: /^hi\n/, host: /^hi\n$/ },
  },
  {
    name: 'bind-dir-rw',
    args: sh('cat /data/hello.txt; echo from-container > /data/new.txt; ls /data'),
    setup: (ctx) => {
      fs.mkdirSync(path.join(ctx.host, 'data'));
      fs.writeFileSync(path.join(ctx.host, 'data', 'hello.txt'), 'hello from the host\n');
    },
    edit: (s, ctx) => bindHost(s, ctx, 'data', '/data'),
    observe: (ctx) => listing(path.join(ctx.host, 'data')),
    expect: { code: 0, stdout: /^hello from the host\nhello.txt\nnew.txt\n$/, host: /new.txt: "from-container\\n"/ },
  },
  {
    name: 'bind-dir-ro',
    args: sh('cat /data/hello.txt; echo x > /data/new.txt; echo rc=$?; rm /data/hello.txt; echo rc=$?'),
    setup: (ctx) => {
      fs.mkdirSync(path.join(ctx.host, 'data'));
      fs.writeFileSync(path.join(ctx.host, 'data', 'hello.txt'), 'hello\n');
    },
    edit: (s, ctx) => bindHost(s, ctx, 'data', '/data', ['rbind', 'ro']),
    observe: (ctx) => listing(path.join(ctx.host, 'data')),
    expect: { code: 0, stdout: /^hello\nrc=1\nrc=1\n$/, stderr: /Read-only file system/, host: /^hello.txt: "hello\\n"$/ },
  },
  {
    name: 'bind-file-rw',
    args: sh('cat /etc/app.conf; echo appended >> /etc/app.conf'),
    setup: (ctx) => fs.writeFileSync(path.join(ctx.host, 'app.conf'), 'key=value\n'),
    edit: (s, ctx) => mount(s, { destination: '/etc/app.conf', type: 'bind', source: path.join(ctx.host, 'app.conf'), options: ['bind', 'rw'] }),
    observe: (ctx) => fs.readFileSync(path.join(ctx.host, 'app.conf'), 'utf8'),
    expect: { code: 0, stdout: /^key=value\n$/, host: /^key=value\nappended\n$/ },
  },
  {
    name: 'bind-file-ro',
    args: sh('cat /etc/app.conf; echo appended >> /etc/app.conf; echo rc=$?'),
    setup: (ctx) => fs.writeFileSync(path.join(ctx.host, 'app.conf'), 'key=value\n'),
    edit: (s, ctx) => mount(s, { destination: '/etc/app.conf', type: 'bind', source: path.join(ctx.host, 'app.conf'), options: ['bind', 'ro'] }),
    observe: (ctx) => fs.readFileSync(path.join(ctx.host, 'app.conf'), 'utf8'),
    expect: { code: 0, stdout: /^key=value\nrc=1\n$/, stderr: /Read-only file system/, host: /^key=value\n$/ },
  },
  {
    name: 'bind-ownership-modes',
    args: sh('stat -c "%a %u:%g %s %F %n" /data /data/secret /data/sub /etc/app.conf'),
    setup: (ctx) => {
      dataTree(ctx, [0o640, 1000, 100], [0o2750, 1001, 1001]);
      fs.writeFileSync(path.join(ctx.host, 'app.conf'), 'x\n');
      fs.chmodSync(path.join(ctx.host, 'app.conf'), 0o600);
    },
    edit: (s, ctx) => {
      bindHost(s, ctx, 'data', '/data', ['rbind', 'ro']);
      mount(s, { destination: '/etc/app.conf', type: 'bind', source: path.join(ctx.host, 'app.conf'), options: ['bind', 'ro'] });
    },
    expect: { code: 0, stdout: /640 1000:100 7 regular file \/data\/secret/ },
  },
  {
    name: 'bind-nonroot-permissions',
    args: sh('cat /data/secret; echo rc=$?; echo x > /data/new; echo rc=$?; ls /data/sub; echo rc=$?'),
    setup: (ctx) => dataTree(ctx, [0o600, 0, 0], [0o700, 0, 0]),
    edit: (s, ctx) => {
      s['process'].user = { uid: 1000, gid: 1000 };
      bindHost(s, ctx, 'data', '/data');
    },
    observe: (ctx) => fs.readdirSync(path.join(ctx.host, 'data')).sort().join(' '),
    expect: { code: 0, stdout: /^rc=1\nrc=1\nrc=1\n$/, stderr: /Permission denied/, host: /^secret sub$/ },
  },
  {
    name: 'tmpfs-options',
    args: sh('grep " /scratch " /proc/self/mounts; stat -c "%a %u:%g" /scratch; df -k /scratch | tail -n1 | tr -s " " | cut -d" " -f2'),
    edit: (s) => mount(s, { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'mode=1770'] }),
    expect: { code: 0, stdout: /^tmpfs \/scratch tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=1770 0 0\n1770 0:0\n1024\n$/ },
  },
  {
    name: 'tmpfs-full',
    args: sh('dd if=/dev/zero of=/scratch/f bs=64k count=32 2>/dev/null; echo rc=$?; stat -c %s /scratch/f; echo x > /scratch/g; echo rc=$?'),
    edit: (s) => mount(s, { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] }),
    expect: { code: 0, stdout: /^rc=1\n1048576\nrc=1\n$/, stderr: /No space left on device/ },
  },
  {
    name: 'tmpfs-noexec',
    args: sh('cp /bin/busybox /scratch/bb && /scratch/bb true; echo rc=$?'),
    edit: (s) => mount(s, { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'size=8m'] }),
    expect: { code: 0, stdout: /^rc=126\n$/, stderr: /Permission denied/ },
  },
  {
    name: 'tmpfs-owner',
    args: sh('stat -c "%a %u:%g" /scratch; touch /scratch/f && stat -c "%u:%g" /scratch/f'),
    edit: (s) => {
      s['process'].user = { uid: 1000, gid: 1000 };
      mount(s, { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['uid=1000', 'gid=1000', 'mode=700'] });
    },
    expect: { code: 0, stdout: /^700 1000:1000\n1000:1000\n$/ },
  },
  // Mount propagation: the bind's flag, then the root's (docs/architecture.md "Mount propagation").
  propagationCase('bind-propagation-none', ['rbind'], ''),
  propagationCase('bind-propagation-shared', ['bind', 'shared'], 'shared'),
  propagationCase('bind-propagation-rshared', ['rbind', 'rshared'], 'shared'),
  propagationCase('bind-propagation-slave', ['bind', 'slave'], ''),
  propagationCase('bind-propagation-rslave', ['rbind', 'rslave'], ''),
  propagationCase('bind-propagation-private', ['bind', 'private'], ''),
  propagationCase('bind-propagation-rprivate', ['rbind', 'rprivate'], ''),
  propagationCase('bind-propagation-unbindable', ['rbind', 'runbindable'], 'unbindable'),
  propagationCase('rootfs-propagation-private', ['rbind', 'rshared'], 'shared', 'private'),
  propagationCase('rootfs-propagation-shared', ['rbind', 'rshared'], 'shared', 'shared'),
  propagationCase('rootfs-propagation-slave', ['rbind', 'rshared'], 'shared', 'slave'),
  // What containerd's CRI writes for a Kubernetes HostToContainer and a Bidirectional mount.
  propagationCase('rootfs-propagation-rslave', ['rbind', 'rslave'], '', 'rslave'),
  propagationCase('rootfs-propagation-rshared', ['rbind', 'rshared'], 'shared', 'rshared'),
  propagationCase('rootfs-propagation-rprivate', ['rbind', 'rshared'], 'shared', 'rprivate'),
  {
    // Propagation at work inside the container: /other, bound from the rshared /data, joins its
    // peer group and is made its slave; a tmpfs mounted on /data/sub appears on /other/sub, one
    // mounted on /other/sub stays there. Under kata-runtime /data was private until crun's
    // post-pivot rprivate was avoided, and /other/sub then got only its own tmpfs.
    name: 'propagation-inside-container',
    args: sh('mount --bind /data /other && mount --make-slave /other && mount -t tmpfs a /data/sub && mount -t tmpfs b /other/sub && awk \'$5 ~ /^\\/(data|other)/ { o = ""; for (i = 7; $i != "-"; i++) o = o " " $i; print $5 o ($(i + 1) == "tmpfs" ? " " $(i + 2) : "") }\' /proc/self/mountinfo'),
    setup: (ctx) => {
      for (const d of ['data/sub', 'other/sub']) fs.mkdirSync(path.join(ctx.host, d), { recursive: true });
    },
    edit: (s, ctx) => {
      caps(s, [...DEFAULT_CAPS, 'CAP_SYS_ADMIN']);
      bindHost(s, ctx, 'data', '/data', ['rbind', 'rshared']);
      bindHost(s, ctx, 'other', '/other', ['rbind']);
    },
    normalise: [PEER_GROUPS],
    exception: PEER_GROUPS_WHY,
    expect: { code: 0, stdout: new RegExp(`^/data shared:\\d+${M}\n/other${M}\n/other master:\\d+\n/data/sub shared:\\d+ a\n/other/sub master:\\d+ a\n/other/sub b\n$`) },
  },
  {
    name: 'tmpfs-propagation-shared',
    ...MOUNT_TAGS,
    edit: (s) => {
      mount(s, { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['rshared', 'size=1m'] });
      mount(s, { destination: '/scratch/in', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
    },
    expect: { code: 0, stdout: new RegExp(`^/${M}\n/scratch shared:\\d+\n/scratch/in shared:\\d+\n$`) },
  },

  // ---- masked and readonly paths ---------------------------------------------------------------
  {
    name: 'masked-paths',
    args: sh('for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats; do cat $p; echo "$p rc=$?"; done; ls -A /sys/firmware; echo rc=$?'),
    expect: { code: 0, stdout: /\/proc\/keys rc=0\n/, stderr: /can't open '\/proc\/kcore': No such file or directory/ },
  },
  {
    // The guest (a microvm without ACPI) has no /proc/acpi to mask.
    name: 'masked-proc-acpi',
    args: sh('ls -A /proc/acpi; echo rc=$?'),
    compare: ['code'],
    exception: 'the guest kernel has no ACPI (QEMU microvm): /proc/acpi does not exist there, so there is nothing to mask; under runc it is an empty masked dir',
    expect: { code: 0, stdout: /^rc=0\n$/ },
  },
  {
    name: 'masked-custom',
    args: sh('cat /etc/group; echo rc=$?; ls -A /root; echo rc=$?'),
    edit: (s) => {
      s['linux'].maskedPaths.push('/etc/group', '/root');
    },
    expect: { code: 0, stdout: /^rc=0\nrc=0\n$/ },
  },
  {
    name: 'readonly-paths',
    args: sh('echo h > /proc/sysrq-trigger; echo rc=$?; echo x > /proc/sys/kernel/hostname; echo rc=$?; cat /proc/sys/kernel/hostname'),
    expect: { code: 0, stdout: /^rc=1\nrc=1\nrunc\n$/, stderr: /Read-only file system/ },
  },
  {
    name: 'readonly-custom',
    args: sh('touch /dev/shm/x; echo rc=$?; ls /dev/shm'),
    edit: (s) => {
      s['linux'].readonlyPaths.push('/dev/shm');
    },
    expect: { code: 0, stdout: /^rc=1\n$/, stderr: /Read-only file system/ },
  },

  // ---- namespaces, hostname, sysctl ------------------------------------------------------------
  {
    name: 'hostname',
    args: sh('hostname; cat /proc/sys/kernel/hostname'),
    edit: (s) => {
      s['hostname'] = 'box-1.example';
    },
    expect: { code: 0, stdout: /^box-1.example\nbox-1.example\n$/ },
  },
  {
    name: 'hostname-without-uts-namespace',
    args: ['hostname'],
    edit: (s) => {
      s['linux'].namespaces = s['linux'].namespaces.filter((n: { type: string }) => n.type !== 'uts');
    },
    compare: ['code', 'stdout'],
    exception: 'both refuse the bundle; stderr is the runtime\'s own error line, whose wording differs',
    expect: { code: 1, stdout: /^$/, stderr: /hostname/ },
  },
  {
    name: 'pid-namespace',
    args: sh('echo $$; ps -o pid,comm; true'),
    normalise: [
      {
        why: 'pids other than 1 replaced by N: they count the processes each runtime\'s own setup forked in the new pid namespace before the container\'s (runc\'s init stages use 2-5, crun none)',
        apply: (o) => ({ ...o, stdout: o.stdout.replace(/^ *(?!1 )\d+ /gm, 'N ') }),
      },
    ],
    exception: 'pids after 1 depend on the runtime\'s own setup processes',
    expect: { code: 0, stdout: /^1\nPID\s+COMMAND\n\s*1 sh\n\s*\d+ ps\n$/ },
  },
  {
    name: 'network-namespace',
    args: sh('ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags /sys/class/net/lo/mtu'),
    expect: { code: 0, stdout: /^lo\n/ },
  },
  {
    name: 'sysctl-net',
    args: sh('cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ping_group_range'),
    edit: (s) => {
      s['linux'].sysctl = { 'net.ipv4.ip_forward': '1', 'net.ipv4.ping_group_range': '0 100' };
    },
    expect: { code: 0, stdout: /^1\n0\s+100\n$/ },
  },
  {
    name: 'sysctl-ipc',
    args: sh('cat /proc/sys/kernel/shmmax /proc/sys/kernel/msgmax'),
    edit: (s) => {
      s['linux'].sysctl = { 'kernel.shmmax': '4096', 'kernel.msgmax': '1024' };
    },
    expect: { code: 0, stdout: /^4096\n1024\n$/ },
  },
  {
    name: 'sysctl-not-namespaced',
    args: ['true'],
    edit: (s) => {
      s['linux'].sysctl = { 'kernel.panic': '1' };
    },
    compare: ['code', 'stdout'],
    exception: 'both refuse the bundle; stderr is the runtime\'s own error line, whose wording differs',
    expect: { code: 1, stdout: /^$/, stderr: /kernel.panic/ },
  },

  // ---- seccomp ---------------------------------------------------------------------------------
  {
    name: 'seccomp-errno-mkdir',
    args: sh('mkdir /dev/shm/d; echo rc=$?; touch /dev/shm/f; echo rc=$?'),
    edit: (s) => seccomp(s, [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }]),
    expect: { code: 0, stdout: /^rc=1\nrc=0\n$/, stderr: /^mkdir: can't create directory '\/dev\/shm\/d': Operation not permitted\n$/ },
  },
  {
    name: 'seccomp-errno-ret',
    args: sh('mkdir /dev/shm/d; echo rc=$?'),
    // errnoRet came with runtime-spec 1.1.0
    edit: (s) => {
      s['ociVersion'] = '1.1.0';
      seccomp(s, [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }]);
    },
    expect: { code: 0, stdout: /^rc=1\n$/, stderr: /Permission denied/ },
  },
  {
    name: 'seccomp-kill',
    args: ['uname', '-s'],
    edit: (s) => seccomp(s, [{ names: ['uname'], action: 'SCMP_ACT_KILL' }]),
    expect: { code: 159, stdout: /^$/, stderr: /^$/ },
  },
  {
    name: 'seccomp-arg-filter',
    args: sh('kill -USR1 $$ 2>/dev/null; echo usr1 rc=$?; kill -0 $$; echo zero rc=$?'),
    edit: (s) => seccomp(s, [{ names: ['kill'], action: 'SCMP_ACT_ERRNO', args: [{ index: 1, value: 10, op: 'SCMP_CMP_EQ' }] }]),
    expect: { code: 0, stdout: /^usr1 rc=1\nzero rc=0\n$/ },
  },

  // ---- hooks (both runtimes run them on the host) ----------------------------------------------
  {
    name: 'hook-prestart-state',
    args: ['cat', '/hook/out'],
    setup: (ctx) => fs.mkdirSync(path.join(ctx.host, 'hook')),
    edit: (s, ctx) => {
      const out = path.join(ctx.host, 'hook', 'out');
      hook(s, 'prestart', `s=$(cat); for k in id status bundle; do printf '%s\\n' "$s" | grep -o "\\"$k\\": *\\"[^\\"]*\\"" | tr -d ' '; done > ${out}`);
      bindHost(s, ctx, 'hook', '/hook');
    },
    observe: (ctx) => listing(path.join(ctx.host, 'hook')),
    expect: { code: 0, stdout: /^"id":"diff-hook-prestart-state"\n"status":"creating"\n"bundle":"\// },
  },
  {
    name: 'hook-args-env-cwd',
    args: ['cat', '/hook/out'],
    setup: (ctx) => fs.mkdirSync(path.join(ctx.host, 'hook')),
    edit: (s, ctx) => {
      const out = path.join(ctx.host, 'hook', 'out');
      s['hooks'] = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', `{ echo "$0|$1|$2"; pwd; env | sort; } > ${out}`, 'zero', 'one', 'two words'], env: ['FOO=bar', 'PATH=/usr/bin:/bin'] }] };
      bindHost(s, ctx, 'hook', '/hook');
    },
    expect: { code: 0, stdout: /^zero\|one\|two words\n\/.*\nFOO=bar\nPATH=\/usr\/bin:\/bin\nPWD=/ },
  },
  // The hook matrix: every host phase succeeding, failing and timing out, through the lifecycle
  // verbs (DiffCase.steps); createContainer/startContainer run in the guest, by crun.
  lifecycle({
    name: 'hook-state-create-delete',
    hooks: {
      prestart: [['prestart']],
      createRuntime: [['createRuntime', { env: [] }]],
      poststop: [['poststop', { env: ['HOOK=given', 'PATH=/usr/bin:/bin'] }]],
    },
    steps: ['create', 'state', 'start', 'wait', 'delete', 'state'],
    hookSet: true,
    expect: {
      code: 0,
      stdout: /^create: exit 0\n {2}hooks: createRuntime prestart\nstate: created\nstart: exit 0\nwait: stopped\ndelete: exit 0\n {2}hooks: poststop\nstate: exit 1\ncontainer stdout: "main\\n"\ncontainer stderr: none\n$/,
      // sorted (hookSet): createRuntime, poststop, prestart
      host: /^createRuntime keys=\[ociVersion id status pid bundle \] status=creating pid=alive id=ok bundle=ok argv0=sh argc=3 cwd=bundle env=\[\] envsum=\d+\npoststop keys=\[ociVersion id status bundle \] status=stopped pid=absent id=ok bundle=ok argv0=sh argc=3 env=\[HOOK PATH \] envsum=\d+\nprestart keys=\[ociVersion id status pid bundle \] status=creating pid=alive id=ok bundle=ok argv0=sh argc=3 cwd=bundle env=\[.+\] envsum=\d+\n$/,
    },
  }),
  lifecycle({
    name: 'hook-poststart-state',
    args: ['sleep', '30'],
    hooks: { poststart: [['poststart']], poststop: [['poststop']] },
    steps: ['create', 'start', 'state', 'kill', 'wait', 'delete'],
    normalise: [
      {
        why: 'runc 1.1.5 runs poststart hooks in create, with status `created` (runc fixed this upstream, opencontainers/runc#4347): its transcript and log are moved to start and `running`, where the runtime-spec and kata-runtime run them',
        apply: (o, rt) => rt === 'kata' ? o : {
          ...o,
          stdout: o.stdout.replace(/^(create: exit 0)\n {2}hooks: poststart\n(start: exit 0)$/m, '$1\n$2\n  hooks: poststart'),
          host: o.host.replace(/^(poststart .*)status=created /m, '$1status=running '),
        },
      },
    ],
    why: 'runc 1.1.5 runs poststart in create, against the runtime-spec (see the normalisation)',
    expect: {
      code: 0,
      stdout: /^create: exit 0\n {2}hooks: poststart\nstart: exit 0\nstate: running\nkill: exit 0\nwait: stopped\ndelete: exit 0\n {2}hooks: poststop\ncontainer stdout: ""\ncontainer stderr: none\n$/,
      host: /^poststart keys=\[ociVersion id status pid bundle \] status=created pid=alive id=ok bundle=ok argv0=sh argc=3 cwd=bundle env=\[.+\] envsum=\d+\npoststop keys=\[ociVersion id status bundle \] status=stopped pid=absent /,
    },
  }),
  lifecycle({
    name: 'hook-order-all-phases',
    // the process outlives the poststart hooks under both runtimes (their pid is alive)
    args: sh('sleep 2; echo main'),
    normalise: [POSTSTART_STATUS],
    hooks: { poststop: [['s1'], ['s2']], poststart: [['a1'], ['a2']], createRuntime: [['c1'], ['c2']], prestart: [['p1'], ['p2']] },
    steps: ['run', 'state'],
    expect: { code: 0, stdout: /^run: exit 0\n {2}hooks: p1 p2 c1 c2 a1 a2 s1 s2\nstate: exit 1\ncontainer stdout: "main\\n"\n/ },
  }),
  brokenHook('prestart', 'fails'),
  brokenHook('prestart', 'timeout'),
  brokenHook('createRuntime', 'fails'),
  brokenHook('createRuntime', 'timeout'),
  brokenHook('poststart', 'fails'),
  brokenHook('poststart', 'timeout'),
  brokenHook('poststop', 'fails'),
  brokenHook('poststop', 'timeout'),
  // In the guest under kata-runtime, in runc's init under runc: /bin/sh is the guest's busybox
  // (createContainer), the container's (startContainer), or the host's (createContainer, runc).
  lifecycle({
    name: 'hook-create-container-fails',
    hooks: { poststop: [['s1']] },
    guest: { createContainer: [{ path: '/bin/sh', args: ['sh', '-c', FAIL] }] },
    steps: ['create', 'state'],
    expect: { code: 1, stdout: /^create: exit 1, stderr\n {2}hooks: s1\nstate: exit 1\ncontainer stdout: ""\n/ },
  }),
  lifecycle({
    name: 'hook-start-container-fails',
    hooks: { poststop: [['s1']] },
    guest: { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', FAIL] }] },
    steps: ['create', 'start', 'wait', 'delete', 'state'],
    expect: { code: 0, stdout: /^create: exit 0\nstart: exit 0\nwait: stopped\ndelete: exit 0\n {2}hooks: s1\nstate: exit 1\ncontainer stdout: ""\ncontainer stderr: some\n$/ },
  }),
  {
    // startContainer runs in the container: its namespaces, root and hostname are the process's.
    name: 'hook-start-container-namespaces',
    args: sh('for n in mnt uts ipc net pid cgroup; do [ "$(readlink /proc/self/ns/$n)" = "$(sed -n "s/^$n //p" /dev/shm/hook)" ] && echo "$n same" || echo "$n differs"; done; grep -v "^[a-z]* [a-z]*:" /dev/shm/hook'),
    edit: (s) => {
      s['hostname'] = 'hooked';
      s['hooks'] = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'for n in mnt uts ipc net pid cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done > /dev/shm/hook; { hostname; ls /; id -u; } >> /dev/shm/hook'] }] };
    },
    expect: { code: 0, stdout: /^mnt same\nuts same\nipc same\nnet same\npid same\ncgroup same\nhooked\n/ },
  },
  // ---- cgroup resources ------------------------------------------------------------------------
  {
    name: 'memory-oom-kill',
    args: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'],
    edit: (s) => resources(s, { memory: { limit: 32 * MiB } }),
    expect: { code: 137, stdout: /^$/, stderr: /^$/ },
  },
  {
    name: 'memory-oom-child',
    args: sh('dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo rc=$?'),
    edit: (s) => resources(s, { memory: { limit: 32 * MiB } }),
    expect: { code: 0, stdout: /^rc=137\n$/ },
  },
  {
    name: 'memory-within-limit',
    args: sh('dd if=/dev/zero of=/dev/null bs=8M count=4 2>/dev/null; echo rc=$?'),
    edit: (s) => resources(s, { memory: { limit: 64 * MiB } }),
    expect: { code: 0, stdout: /^rc=0\n$/ },
  },
  {
    name: 'pids-limit',
    args: sh('for i in 1 2 3 4 5 6; do sleep 5 & echo "started $i"; done; echo never'),
    edit: (s) => resources(s, { pids: { limit: 4 } }),
    expect: { code: 2, stdout: /^started 1\nstarted 2\nstarted 3\n$/, stderr: /can't fork/ },
  },
  {
    name: 'devices-denied',
    args: sh('mknod /dev/mem2 c 1 1 && cat /dev/mem2; echo rc=$?'),
    edit: (s) => caps(s, [...DEFAULT_CAPS, 'CAP_MKNOD']),
    expect: { code: 0, stdout: /^rc=1\n$/, stderr: /Operation not permitted/ },
  },
  {
    name: 'devices-added',
    args: sh('stat -c "%F %t:%T %a %u:%g" /dev/fuse; head -c 4 /dev/zero2 | od -An -tx1'),
    edit: (s) => {
      s['linux'].devices = [
        { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o640, uid: 0, gid: 0 },
        { path: '/dev/zero2', type: 'c', major: 1, minor: 5, fileMode: 0o666 },
      ];
      s['linux'].resources.devices.push({ allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' });
    },
    expect: { code: 0, stdout: /^character special file a:e5 640 0:0\n 00 00 00 00\n$/ },
  },

  // ---- what the container sees of its kernel ---------------------------------------------------
  {
    name: 'uname',
    args: ['uname', '-a'],
    normalise: [
      {
        why: 'the kernel release and build string (3rd field to the machine name) are the guest kernel\'s under kata-runtime, the host\'s under runc: replaced by <kernel>',
        apply: (o) => ({ ...o, stdout: o.stdout.replace(/^(\S+ \S+) .* (x86_64 \S+)$/m, '$1 <kernel> $2') }),
      },
    ],
    exception: 'each container sees its own kernel: the host\'s under runc, the guest\'s under kata-runtime',
    expect: { code: 0, stdout: /^Linux runc .* x86_64 GNU\/Linux\n$/ },
  },
  {
    name: 'cpu-count',
    args: sh('grep -c ^processor /proc/cpuinfo; nproc'),
    normalise: [
      {
        why: 'the number of CPUs is the host\'s under runc, the VM\'s vCPUs under kata-runtime: each count replaced by N',
        apply: (o) => ({ ...o, stdout: o.stdout.replace(/^\d+$/gm, 'N') }),
      },
    ],
    exception: 'the VM has its own (virtual) CPUs',
    expect: { code: 0, stdout: /^\d+\n\d+\n$/ },
  },
  {
    name: 'dev-contents',
    args: sh('stat -c "%A %t:%T %u:%g %N" /dev/*'),
    normalise: [
      {
        why: 'crun, the OCI runtime inside the VM, also creates the /dev/core -> /proc/kcore symlink (runc does not): that line is removed',
        apply: (o) => ({ ...o, stdout: o.stdout.replace(/^.*'\/dev\/core' -> '\/proc\/kcore'\n/m, '') }),
      },
    ],
    exception: 'crun in the guest creates /dev/core as well; every other entry must be identical',
    expect: { code: 0, stdout: /null/ },
  },

  // ---- runtime-spec versions as engines write them (versions.ts) ------------------------------
  ...VERSION_CASES,
];
