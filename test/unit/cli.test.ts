import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeArgv } from '../../src/cli/argv.js';
import { formatList } from '../../src/cli/render.js';
import { parseSignal } from '../../src/runtime/signals.js';
import { formatLogLine } from '../../src/util/log.js';

describe('normalizeArgv', () => {
  it.each([
    // containerd's shim
    [['--root', '/run/containerd/runc/default', '--log', '/b/log.json', '--log-format', 'json', 'create', '--bundle', '/b', '--pid-file', '/b/init.pid', 'c1'],
      ['create', '--root=/run/containerd/runc/default', '--log=/b/log.json', '--log-format=json', '--bundle=/b', '--pid-file=/b/init.pid', '--', 'c1']],
    // conmon: --flag=value
    [['--log-format=json', '--log', '/x/oci-log', 'create', '--bundle', 'B', 'id'], ['create', '--log-format=json', '--log=/x/oci-log', '--bundle=B', '--', 'id']],
    // Go single-dash long flags
    [['-root', '/r', 'kill', '-all', 'c1', '9'], ['kill', '--root=/r', '--all', '--', 'c1', '9']],
    [['delete', '-f', 'c1'], ['delete', '--force', '--', 'c1']],
    [['run', '-d', '-b', '/b', 'x'], ['run', '--detach', '--bundle=/b', '--', 'x']],
    // global flags after the verb are accepted too
    [['state', '--root', '/r', 'c1'], ['state', '--root=/r', '--', 'c1']],
    // arguments after the first positional are untouched
    [['kill', 'c1', '-9'], ['kill', '--', 'c1', '-9']],
    [['--version'], ['version']],
    [['-v'], ['version']],
    [[], ['help']],
    [['list', '--format', 'json', '-q'], ['list', '--format=json', '--quiet', '--']],
  ])('%j', (input, want) => {
    expect(normalizeArgv(input)).toEqual(want);
  });
});

describe('parseSignal', () => {
  it.each([
    ['9', 9], ['KILL', 9], ['SIGKILL', 9], ['kill', 9], ['sigterm', 15], ['TERM', 15], ['HUP', 1], ['USR1', 10], ['SIGRTMIN', 34], ['RTMIN+2', 36], ['RTMAX-1', 63], ['64', 64], ['0', 0],
  ])('%s → %d', (s, n) => expect(parseSignal(s)).toBe(n));

  it.each(['65', 'SIGFOO', '', '-9', '9x', 'RTMIN+40'])('rejects %j', (s) => {
    expect(() => parseSignal(s)).toThrow(/invalid signal/);
  });
});

describe('log lines', () => {
  const t = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  it('json is one object per line with level, msg, time', () => {
    const line = formatLogLine('json', 'error', 'boom "x"', t);
    expect(line.endsWith('\n')).toBe(true);
    const v = JSON.parse(line) as Record<string, string>;
    expect(v).toMatchObject({ level: 'error', msg: 'boom "x"' });
    expect(v['time']).toMatch(/^2026-01-0\dT\d\d:\d\d:05(Z|[+-]\d\d:\d\d)$/);
  });
  it('text is logrus-style', () => {
    expect(formatLogLine('text', 'warning', 'slow', t)).toMatch(/^time="[^"]+" level=warning msg="slow"\n$/);
  });
});

describe('list rendering', () => {
  const s = { ociVersion: '1.0.2', id: 'abc', pid: 42, status: 'running', bundle: '/b', rootfs: '/b/rootfs', created: '2026-01-01T00:00:00.000000000Z', owner: '' };
  it('prints null for an empty JSON list', () => expect(formatList([], 'json', false)).toBe('null\n'));
  it('prints a one-line JSON array', () => expect(formatList([s], 'json', false).split('\n')).toHaveLength(2));
  it('prints ids only with -q', () => expect(formatList([s], 'table', true)).toBe('abc\n'));
  it('prints runc\'s table', () => {
    const out = formatList([s], 'table', false).split('\n');
    expect(out[0]).toBe(`ID          PID         STATUS      BUNDLE      ${'CREATED'.padEnd(s.created.length + 3)}OWNER`);
    expect(out[1]).toMatch(/^abc {9}42 {10}running {5}\/b {10}2026/);
  });
});

describe('state fast path', () => {
  it('answers a plain `state ID` from the record, and leaves everything else to oclif', async () => {
    const { fastState } = await import('../../src/cli/fast.js');
    const { StateStore } = await import('../../src/runtime/store.js');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-fast-'));
    try {
      const store = new StateStore(root);
      store.createDir('c1');
      const rec = {
        version: 1 as const, id: 'c1', ociVersion: '1.0.2', bundle: '/b', rootfs: '/b/rootfs', created: '2026-01-01T00:00:00.000000000Z', owner: '',
        annotations: {}, status: 'stopped' as const, monitorPid: 0, monitorStartTime: '', guestPid: 0, exit: null, qemuPid: 0, qemuStartTime: '', virtiofsdPid: 0, virtiofsdStartTime: '',
      };
      store.write(rec);
      let out = '';
      const w = (s: string): void => void (out += s);
      expect(fastState(normalizeArgv(['--root', root, '--log', '/l', '--log-format', 'json', 'state', 'c1']), w)).toBe(true);
      expect(JSON.parse(out)).toEqual({ ociVersion: '1.0.2', id: 'c1', pid: 0, status: 'stopped', bundle: '/b', rootfs: '/b/rootfs', created: '2026-01-01T00:00:00.000000000Z', owner: '' });
      out = '';
      for (const argv of [
        ['--root', root, 'state', 'nope'], // unknown id: oclif prints the error
        ['--root', root, 'state', '../x'], // invalid id
        ['--root', root, '--debug', 'state', 'c1'], // debug logging goes through the runtime
        ['--root', root, 'state', '--help'],
        ['--root', root, 'list'],
        ['--root', root, 'state'],
      ]) expect(fastState(normalizeArgv(argv), w), argv.join(' ')).toBe(false);
      expect(out).toBe('');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('the CLI on hostile stdio (src/cli/stdio.ts)', () => {
  const cli = path.resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
  /** fd 1 on /dev/null opened O_RDONLY, as containerd's CRI path gives it. */
  const rdonly = (args: string[]): { status: number | null; signal: NodeJS.Signals | null; stderr: string } => {
    const fd = fs.openSync('/dev/null', 'r');
    try {
      const r = spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
      return { status: r.status, signal: r.signal, stderr: r.stderr };
    } finally {
      fs.closeSync(fd);
    }
  };

  it('fails `features` in Go\'s words when stdout is read-only, and ignores it for `spec --help`', () => {
    expect(rdonly(['features'])).toEqual({ status: 1, signal: null, stderr: 'write /dev/stdout: bad file descriptor\n' });
    expect(rdonly(['spec', '--help'])).toEqual({ status: 0, signal: null, stderr: '' });
  });

  it('dies of SIGPIPE when stdout is a pipe without a reader, as a Go program does', () => {
    const r = spawnSync('/bin/sh', ['-c', '{ sleep 0.2; "$@"; echo "rc=$?" >&2; } | true', 'sh', process.execPath, cli, 'features'], { encoding: 'utf8' });
    expect(r.stderr).toBe('rc=141\n');
  });
});

describe('a broken configuration.toml breaks only the verbs that need it', () => {
  const CLI = path.resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
  const tmp = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), 'kata-conf-'));
  const conf = path.join(tmp, 'broken.toml');
  fs.writeFileSync(conf, '[hypervisor.qemu\nthis is = = not toml\n');
  const cli = (args: string[]): { code: number | null; err: string } => {
    const r = spawnSync(process.execPath, [CLI, '--root', path.join(tmp, 'root'), '--config', conf, ...args], { encoding: 'utf8' });
    return { code: r.status, err: r.stderr };
  };

  it('delete --force, kill and delete of a container still work (here: one that does not exist)', () => {
    expect(cli(['delete', '--force', 'nope'])).toEqual({ code: 0, err: '' });
    expect(cli(['kill', 'nope', 'KILL']).err).toMatch(/^container nope does not exist\n$/);
    expect(cli(['delete', 'nope']).err).toMatch(/^container nope does not exist\n$/);
  });

  it('create names the file', async () => {
    const { makeDemoBundle } = await import('../../src/oci/demo.js');
    const r = cli(['create', '-b', makeDemoBundle(path.join(tmp, 'b'), ['true']), 'x']);
    expect(r.code).toBe(1);
    expect(r.err.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(r.err).toContain(conf);
  });
});
