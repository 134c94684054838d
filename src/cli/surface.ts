/**
 * runc's command-line surface as data: for each verb, the flags that take a value (the argv
 * normaliser needs them to find the first positional argument) and the boolean ones. Names, short
 * forms and order copy runc 1.1.
 */
export interface VerbSurface {
  value: readonly string[];
  bool: readonly string[];
  short: Readonly<Record<string, string>>;
}

export const GLOBAL: VerbSurface = {
  value: ['root', 'log', 'log-format', 'criu', 'rootless', 'config'],
  bool: ['debug', 'systemd-cgroup', 'help', 'version'],
  short: { h: 'help', v: 'version' },
};

export const VERBS: Readonly<Record<string, VerbSurface>> = {
  create: { value: ['bundle', 'console-socket', 'pid-file', 'preserve-fds'], bool: ['no-pivot', 'no-new-keyring'], short: { b: 'bundle' } },
  run: {
    value: ['bundle', 'console-socket', 'pid-file', 'preserve-fds'],
    bool: ['detach', 'keep', 'no-subreaper', 'no-pivot', 'no-new-keyring'],
    short: { b: 'bundle', d: 'detach' },
  },
  start: { value: [], bool: [], short: {} },
  state: { value: [], bool: [], short: {} },
  kill: { value: [], bool: ['all'], short: { a: 'all' } },
  delete: { value: [], bool: ['force'], short: { f: 'force' } },
  list: { value: ['format'], bool: ['quiet'], short: { f: 'format', q: 'quiet' } },
  version: { value: [], bool: [], short: {} },
  exec: {
    value: ['console-socket', 'cwd', 'env', 'user', 'additional-gids', 'process', 'pid-file', 'process-label', 'apparmor', 'cap', 'preserve-fds', 'cgroup'],
    bool: ['tty', 'detach', 'no-new-privs', 'ignore-paused', 'no-subreaper'],
    short: { e: 'env', t: 'tty', u: 'user', g: 'additional-gids', p: 'process', d: 'detach', c: 'cap' },
  },
  ps: { value: ['format'], bool: [], short: { f: 'format' } },
  pause: { value: [], bool: [], short: {} },
  resume: { value: [], bool: [], short: {} },
  update: {
    value: [
      'resources', 'blkio-weight', 'cpu-period', 'cpu-quota', 'cpu-share', 'cpu-rt-period', 'cpu-rt-runtime', 'cpuset-cpus',
      'cpuset-mems', 'kernel-memory', 'kernel-memory-tcp', 'memory', 'memory-reservation', 'memory-swap', 'pids-limit',
      'l3-cache-schema', 'mem-bw-schema',
    ],
    bool: [],
    short: { r: 'resources' },
  },
  events: { value: ['interval'], bool: ['stats'], short: {} },
  features: { value: [], bool: [], short: {} },
  spec: { value: ['bundle'], bool: ['rootless'], short: { b: 'bundle' } },
  // kata-runtime's own
  env: { value: [], bool: ['json'], short: {} },
  check: { value: [], bool: [], short: {} },
};
