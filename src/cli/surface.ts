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
  value: ['root', 'log', 'log-format', 'criu', 'rootless'],
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
};
