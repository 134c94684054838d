/**
 * runc's behaviour, exactly: what a runc user does on the command line, and what runc 1.1.5
 * answers, one behaviour per test. Every test runs under kata-runtime and, with
 * KATA_E2E_RUNTIME=runc, under Debian's runc, which proves the test itself. Where a VM forces a
 * difference (docs/cli-compat.md says why), the test says so next to the assertion.
 *
 * One long-running container (`box`) serves the tests that only need a running container, so
 * the file boots as few VMs as it can.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recvFdFromListener } from '../../src/native/index.js';
import { e2eRuntime, kr, leftovers, requirePrerequisites, RUNC, runtimeArgv, testEnv, waitForStatus, type Result, type TestEnv } from './helpers.js';

const RT = e2eRuntime();
const KATA = RT === 'kata';

let env: TestEnv;
beforeAll(() => {
  if (KATA) requirePrerequisites();
  else if (!fs.existsSync(RUNC)) throw new Error(`${RUNC} is missing`);
  env = testEnv('parity', RT);
});
afterAll(() => env.cleanup());

/** The CLI under test. */
function rt(args: string[], opts: { input?: string; detached?: boolean; timeoutMs?: number } = {}): Promise<Result> {
  return kr(env.root, args, { ...opts, runtime: RT });
}

/** A bundle without a terminal (makeDemoBundle's default spec has one, as `runc spec` does). */
function bundle(name: string, args: string[], edit?: (spec: Record<string, unknown>) => void): string {
  return env.bundle(name, args, (s) => {
    (s['process'] as Record<string, unknown>)['terminal'] = false;
    edit?.(s);
  });
}

/** stderr without the runtime's own log-line decoration: runc's `time=… level=error msg="…"`. */
function errorText(r: Result): string {
  return r.stderr.trim();
}

/** One line, no terminal colours, no word of the agent; runc's text for the failure. */
function expectStartError(r: Result, what: RegExp): void {
  const lines = errorText(r).split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\x1b|agent/);
  expect(r.stderr).toMatch(what);
}

describe('with a running container', () => {
  beforeAll(async () => {
    const r = await rt(['run', '-d', '-b', bundle('box', ['sleep', '600']), 'box'], { detached: true });
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await rt(['delete', '--force', 'box']);
  });

  it('kill ID 0 asks whether init is alive: exit 0, nothing delivered', async () => {
    const r = await rt(['kill', 'box', '0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect((await waitForStatus(env.root, 'box', 'running', 5000, RT))['status']).toBe('running');
  });

  it('exec --pid-file in the foreground: the pid stands for the process (SIGTERM to it ends it)', async () => {
    const pidFile = path.join(env.tmp, 'exec.pid');
    const running = rt(['exec', '--pid-file', pidFile, 'box', 'sleep', '60']);
    const deadline = Date.now() + 60000;
    while (!fs.existsSync(pidFile)) {
      if (Date.now() > deadline) throw new Error('the pid file never appeared');
      await new Promise((r) => setTimeout(r, 50));
    }
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGTERM');
    const r = await running;
    expect(r.code, r.stderr).toBe(143);
  });

  it.each([[[] as string[]], [['-d']]])('exec %j --pid-file in a missing directory: exit 255, one error line', async (extra) => {
    const r = await rt(['exec', ...extra, '--pid-file', '/non-existent/dir/pid', 'box', 'touch', '/dev/shm/ran'], { detached: extra.length > 0 });
    expect(r.code).toBe(255);
    expect(errorText(r).split('\n')).toHaveLength(1);
    expect(errorText(r)).toMatch(/\/non-existent\/dir.*no such file or directory/);
    // runc starts the process before it writes the file (and kills it, or with -d leaves it);
    // kata-runtime checks the directory first, so nothing ran.
    if (KATA) expect((await rt(['exec', 'box', 'test', '-e', '/dev/shm/ran'])).code).toBe(1);
  });

  it('update of a paused container is accepted and in force once it resumes', async () => {
    // The host may be cgroup v1 (runc) while the guest is v2: read whichever the container has.
    const pidsMax = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max";
    expect((await rt(['pause', 'box'])).code).toBe(0);
    try {
      const u = await rt(['update', '--pids-limit', '42', 'box']);
      expect(u.code, u.stderr).toBe(0);
      expect(u.stderr).toBe('');
    } finally {
      expect((await rt(['resume', 'box'])).code).toBe(0);
    }
    const r = await rt(['exec', 'box', 'sh', '-c', pidsMax]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe('42\n');
  });

  it('--log FILE is created by exec, and --debug adds level=debug lines to it', async () => {
    const quiet = path.join(env.tmp, 'exec-quiet.log');
    const r1 = await rt(['--log', quiet, 'exec', 'box', 'true']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(fs.existsSync(quiet)).toBe(true);
    const debug = path.join(env.tmp, 'exec-debug.log');
    const r2 = await rt(['--debug', '--log', debug, 'exec', 'box', 'true']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toBe('');
    const lines = fs.readFileSync(debug, 'utf8').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/^time="[^"]+" level=debug msg=/);
  });

  it('--debug without --log puts the debug lines on stderr', async () => {
    const r = await rt(['--debug', 'exec', 'box', 'true']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^time="[^"]+" level=debug msg=/m);
  });

  it('exec of a file that does not exist: exit 255 and runc\'s one plain line', async () => {
    const r = await rt(['exec', 'box', '/run.sh']);
    expect(r.code).toBe(255);
    expectStartError(r, /exec: \\?"\/run\.sh\\?": stat \/run\.sh: no such file or directory/);
  });
});

describe('kill 0 of a stopped container', () => {
  it('fails with "container not running"', async () => {
    const b = bundle('gone', ['true']);
    const c = await rt(['create', '-b', b, 'gone'], { detached: true });
    expect(c.code, c.stderr).toBe(0);
    expect((await rt(['kill', 'gone', '0'])).code).toBe(0); // created: init exists
    expect((await rt(['start', 'gone'])).code).toBe(0);
    await waitForStatus(env.root, 'gone', 'stopped', 60000, RT);
    const r = await rt(['kill', 'gone', '0']);
    expect(r.code).toBe(1);
    expect(errorText(r)).toMatch(/container not running/);
    expect((await rt(['delete', 'gone'])).code).toBe(0);
    expect(leftovers(env)).toEqual([]);
  });
});

describe('help and version', () => {
  it.each([['foo'], ['foo', '-h'], ['help', 'foo']])('%j: "No help topic", exit 3', async (...args) => {
    const r = await rt(args);
    expect(r.code).toBe(3);
    expect(r.stdout.toString()).toBe('');
    // runc writes it as a log line (`level=error msg="No help topic for 'foo'\n"`); both are one line.
    expect(errorText(r).split('\n')).toHaveLength(1);
    expect(errorText(r)).toMatch(/No help topic for 'foo'/);
  });

  it('--help before any verb: the general help, exit 0', async () => {
    for (const verb of ['foo', 'state']) {
      const r = await rt(['--help', verb]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.toString()).toMatch(/^NAME:\n {3}(runc|kata-runtime) - /);
    }
  });

  it('--version: "<name> version X", "commit: Y", "spec: Z" first, as tools parse it', async () => {
    const r = await rt(['--version']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.toString().split('\n');
    expect(lines[0]).toMatch(KATA ? /^kata-runtime version \d+\.\d+\.\d+$/ : /^runc version \S+$/);
    expect(lines[1]).toMatch(/^commit: \S+$/);
    expect(lines[2]).toMatch(/^spec: \d+\.\d+\.\d+(-dev)?$/);
  });
});

describe('validate what the spec requires, not more', () => {
  it('an unknown capability is warned about and dropped; device access letters beyond rwm are accepted; a bind source made by an earlier mount is found', async () => {
    const host = path.join(env.tmp, 'host9');
    fs.mkdirSync(path.join(host, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(host, 'sub', 'f'), 'from the earlier mount\n');
    const b = bundle('strict', ['sh', '-c', 'cat /data/f && grep CapBnd /proc/self/status && echo x > /dev/null && echo devices-ok'], (s) => {
      const caps = (s['process'] as Record<string, Record<string, string[]>>)['capabilities'] ?? {};
      for (const set of ['bounding', 'effective', 'permitted']) caps[set] = ['CAP_KILL', 'CAP_UNKNOWN'];
      const linux = s['linux'] as Record<string, Record<string, unknown>>;
      (linux['resources'] ??= {})['devices'] = [{ allow: false, access: 'rwa' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwa' }];
      const mounts = s['mounts'] as Array<Record<string, unknown>>;
      // /mnt is the host dir; /data is its sub/, named through the rootfs: it exists only once
      // /mnt is mounted (runc resolves sources in mount order).
      mounts.push({ destination: '/mnt', type: 'bind', source: host, options: ['rbind'] }, { destination: '/data', type: 'bind', source: 'rootfs/mnt/sub', options: ['rbind'] });
    });
    const r = await rt(['run', '-b', b, 'strict']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe('from the earlier mount\nCapBnd:\t0000000000000020\ndevices-ok\n');
    expect(r.stderr).toMatch(/level=warning msg="ignoring unknown or unavailable capabilities: \[CAP_UNKNOWN\]"/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(leftovers(env)).toEqual([]);
  });

  it('a namespace listed twice is refused, as runc refuses it', async () => {
    const b = bundle('dupns', ['true'], (s) => {
      ((s['linux'] as Record<string, unknown[]>)['namespaces'] ??= []).push({ type: 'cgroup' });
    });
    const r = await rt(['run', '-b', b, 'dupns']);
    expect(r.code).toBe(1);
    expect(errorText(r).split('\n')).toHaveLength(1);
    expect(errorText(r)).toMatch(/cgroup.*(twice|duplicated)|duplicated ns.*cgroup/);
    expect(leftovers(env)).toEqual([]);
  });
});

describe('with a container whose env has an empty HOME and whose caps include an inheritable one', () => {
  beforeAll(async () => {
    const b = bundle('homecap', ['sh', '-c', 'echo "${HOME-unset}" > /dev/shm/inithome; exec sleep 600'], (s) => {
      const proc = s['process'] as Record<string, unknown>;
      proc['env'] = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME='];
      const caps = proc['capabilities'] as Record<string, string[]>;
      caps['bounding'] = [...(caps['bounding'] ?? []), 'CAP_NET_ADMIN'];
      caps['inheritable'] = ['CAP_KILL', 'CAP_NET_ADMIN'];
    });
    fs.appendFileSync(path.join(b, 'rootfs', 'etc', 'passwd'), 'u:x:1001:1001::/home/u:/bin/sh\n');
    const r = await rt(['run', '-d', '-b', b, 'homecap'], { detached: true });
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await rt(['delete', '--force', 'homecap']);
  });

  it('an empty or missing HOME is the user\'s passwd home, else /', async () => {
    const init = await rt(['exec', 'homecap', 'cat', '/dev/shm/inithome']);
    expect(init.stdout.toString(), init.stderr).toBe('/root\n');
    const home = async (...args: string[]): Promise<string> => {
      const r = await rt(['exec', ...args, 'homecap', 'sh', '-c', 'echo "${HOME-unset}"']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.toString();
    };
    expect(await home()).toBe('/root\n');
    expect(await home('--user', '1000')).toBe('/\n'); // no passwd entry
    expect(await home('--user', '1001')).toBe('/home/u\n');
    expect(await home('--env', 'HOME=/elsewhere')).toBe('/elsewhere\n');
  });

  it('exec --cap adds the capability to the ambient set too', async () => {
    const r = await rt(['exec', '--cap', 'CAP_NET_ADMIN', 'homecap', 'grep', '-E', '^Cap(Inh|Amb)', '/proc/self/status']);
    expect(r.code, r.stderr).toBe(0);
    // CAP_KILL (5) was ambient already; CAP_NET_ADMIN (12) joins it: it is inheritable here.
    expect(r.stdout.toString()).toBe('CapInh:\t0000000000001020\nCapAmb:\t0000000000001020\n');
  });
});

describe('terminal output', () => {
  it('keeps the pty\'s output CR translation (ONLCR), as runc 1.1.5 does: lines end in \\r\\n', async () => {
    // The issue expected runc to clear ONLCR; runc 1.1.5 (this host's reference) does not, on the
    // console it sends over --console-socket nor in a foreground `run -t`, so neither do we.
    const b = bundle('ttyout', ['sh', '-c', 'echo a; echo b'], (s) => void ((s['process'] as Record<string, unknown>)['terminal'] = true));
    const sock = path.join(env.tmp, 'tty.sock');
    const received = recvFdFromListener(sock, 120000);
    const create = rt(['create', '--console-socket', sock, '-b', b, 'ttyout'], { detached: true });
    const { fd } = await received;
    expect((await create).code).toBe(0);
    const text = new Promise<string>((resolve) => {
      const s = fs.createReadStream('', { fd, autoClose: true });
      let out = '';
      s.on('data', (d) => (out += d.toString()));
      const done = (): void => resolve(out);
      s.on('error', done); // EIO once the container's side is gone
      s.on('end', done);
    });
    expect((await rt(['start', 'ttyout'])).code).toBe(0);
    expect(await text).toBe('a\r\nb\r\n');
    await waitForStatus(env.root, 'ttyout', 'stopped', 60000, RT);
    expect((await rt(['delete', 'ttyout'])).code).toBe(0);
  });
});

describe('the fds of the state pid', () => {
  it('0, 1 and 2 are the stdio the container was given, and no other fd holds them', async () => {
    const files = ['in', 'out', 'err'].map((n) => path.join(env.tmp, `stdio13.${n}`));
    for (const f of files) fs.writeFileSync(f, '');
    const fds = files.map((f, i) => fs.openSync(f, i === 0 ? 'r' : 'a'));
    const b = bundle('fds', ['sleep', '600']);
    const r = spawnSync(...runtimeArgv(RT, env.root, ['run', '-d', '-b', b, 'fds']), { stdio: fds, timeout: 120000 });
    for (const fd of fds) fs.closeSync(fd);
    expect(r.status, fs.readFileSync(files[2] ?? '', 'utf8')).toBe(0);
    try {
      const pid = (await waitForStatus(env.root, 'fds', 'running', 60000, RT))['pid'];
      const held = fs.readdirSync(`/proc/${String(pid)}/fd`).map((fd) => [fd, fs.readlinkSync(`/proc/${String(pid)}/fd/${fd}`)] as const);
      for (const [i, f] of files.entries()) expect(held.find(([fd]) => fd === String(i))?.[1]).toBe(f);
      // The monitor is a Node process: its event loop has fds of its own (epoll, eventfd, libuv's
      // reserved /dev/null, sockets to QEMU and the agent; docs/cli-compat.md), but none of them is
      // the container's stdio or a file of the bundle.
      expect(held.filter(([fd, target]) => Number(fd) > 2 && (files.includes(target) || target.startsWith(b))).map(([fd, t]) => `${fd} -> ${t}`)).toEqual([]);
    } finally {
      await rt(['delete', '--force', 'fds']);
    }
  });
});

describe('error text', () => {
  it('run of a file that does not exist: exit 1 and runc\'s one plain line', async () => {
    const r = await rt(['run', '-b', bundle('noexe', ['/run.sh']), 'noexe']);
    expect(r.code).toBe(1);
    expectStartError(r, /unable to start container process: exec: \\?"\/run\.sh\\?": stat \/run\.sh: no such file or directory/);
    await rt(['delete', '--force', 'noexe']);
  });

  it('a /proc that is a symlink in the rootfs: one line naming /proc, not the agent', async () => {
    const b = bundle('procl', ['true']);
    fs.rmSync(path.join(b, 'rootfs', 'proc'), { recursive: true });
    fs.symlinkSync('/nonexistent', path.join(b, 'rootfs', 'proc'));
    const r = await rt(['run', '-b', b, 'procl']);
    expect(r.code).toBe(1);
    expectStartError(r, /\/proc/);
    await rt(['delete', '--force', 'procl']);
  });

  // startContainer is not here yet: crun reports its failure from the container's own stderr, where
  // the hook's stderr is not added (docs/cli-compat.md).
  it.each(['createContainer'])('a failing %s hook: its own stderr is in the error', async (kind) => {
    const b = bundle(`hook-${kind}`, ['true'], (s) => {
      s['hooks'] = { [kind]: [{ path: '/bin/sh', args: ['sh', '-c', 'echo hook-said-this >&2; exit 1'] }] };
    });
    const r = await rt(['run', '-b', b, `hook-${kind}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hook-said-this/);
    expect(r.stderr).not.toMatch(/\x1b|agent/);
    await rt(['delete', '--force', `hook-${kind}`]);
    expect(leftovers(env)).toEqual([]);
  });
});

describe('ps of a stopped container', () => {
  it('prints the header of ps(1) with the given arguments (json: null) and exits 0', async () => {
    const r = await rt(['run', '--keep', '-b', bundle('psdone', ['true']), 'psdone']);
    expect(r.code, r.stderr).toBe(0);
    try {
      const table = await rt(['ps', 'psdone']);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout.toString()).toMatch(/^UID +PID +PPID +C +STIME +TTY +TIME +CMD\n$/);
      const args = await rt(['ps', 'psdone', '-e', '-x']);
      expect(args.code, args.stderr).toBe(0);
      expect(args.stdout.toString()).toMatch(/^ +PID +TTY +STAT +TIME +COMMAND\n$/);
      const json = await rt(['ps', '-f', 'json', 'psdone']);
      expect(json.code, json.stderr).toBe(0);
      expect(json.stdout.toString()).toBe('null\n');
    } finally {
      await rt(['delete', '--force', 'psdone']);
    }
  });
});

describe('mount semantics', () => {
  it('a tmpfs takes its mountpoint\'s mode; new mountpoints under a setgid dir inherit setgid; a dangling symlink on the way is created', async () => {
    const b = bundle('mnts', ['sh', '-c', 'stat -c "%A %n" /m1 /m2 /m3 /sgd/new /jump/x']);
    const rootfs = path.join(b, 'rootfs');
    for (const [d, mode] of [['m1', 0o3777], ['m2', 0o750], ['sgd', 0o2755]] as const) {
      fs.mkdirSync(path.join(rootfs, d));
      fs.chmodSync(path.join(rootfs, d), mode);
    }
    fs.symlinkSync('/elsewhere/deeper', path.join(rootfs, 'jump'));
    const spec = JSON.parse(fs.readFileSync(path.join(b, 'config.json'), 'utf8')) as { mounts: Array<Record<string, unknown>> };
    const tmpfs = (destination: string, options: string[] = []): Record<string, unknown> => ({ destination, type: 'tmpfs', source: 'tmpfs', options });
    spec.mounts.push(tmpfs('/m1'), tmpfs('/m2', ['mode=1777']), tmpfs('/m3'), tmpfs('/sgd/new'), tmpfs('/jump/x'));
    fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(spec));
    const r = await rt(['run', '-b', b, 'mnts']);
    expect(r.code, r.stderr).toBe(0);
    // runc chmods a tmpfs to the mode of the directory it covers, even over mode=; a new one is 1777.
    expect(r.stdout.toString()).toBe('drwxrwsrwt /m1\ndrwxr-x--- /m2\ndrwxrwxrwt /m3\ndrwxrwxrwt /sgd/new\ndrwxrwxrwt /jump/x\n');
    // The mountpoints made in the rootfs: setgid inherited; the symlink's target created.
    expect((fs.statSync(path.join(rootfs, 'sgd', 'new')).mode & 0o7777).toString(8)).toBe('2755');
    expect(fs.statSync(path.join(rootfs, 'elsewhere', 'deeper', 'x')).isDirectory()).toBe(true);
    expect(leftovers(env)).toEqual([]);
  });
});
