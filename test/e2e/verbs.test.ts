/**
 * runc's other verbs and the spec features engines rely on, through the real CLI and real VMs:
 * exec (foreground, detached, with a terminal), terminals through --console-socket, ps, pause and
 * resume, update, events (stats and OOM), host hooks, bind mounts, spec and features.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recvFdFromListener } from '../../src/native/index.js';
import { schemaErrors } from '../../src/oci/validate.js';
import { CLI, kr, leftovers, requirePrerequisites, testEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
let guestKernel: string;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('verbs');
  guestKernel = fs.readFileSync('/usr/local/share/kata-runtime/guest/kernel-version', 'utf8').trim();
});
afterAll(() => env.cleanup());

async function waitFor(pred: () => boolean, what: string, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stateOf(id: string): Promise<Record<string, unknown>> {
  return kr(env.root, ['state', id]).then((r) => JSON.parse(r.stdout.toString()) as Record<string, unknown>);
}

/** Reads a received pty master until `until` shows up (or EIO at its end), then closes it. */
function readMaster(fd: number, until: RegExp, timeoutMs = 60000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = fs.createReadStream('', { fd, autoClose: true });
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`pty never showed ${until}: ${JSON.stringify(text)}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(text);
    };
    s.on('data', (d) => {
      text += d.toString();
      if (until.test(text)) done();
    });
    s.on('error', done); // EIO: the other side is gone
    s.on('end', done);
  });
}

describe('exec', () => {
  let bundle: string;
  beforeAll(async () => {
    bundle = env.bundle('execbox', ['sleep', '600']);
    const r = await kr(env.root, ['run', '-d', '-b', bundle, 'execbox'], { detached: true });
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await kr(env.root, ['delete', '--force', 'execbox']);
  });

  it('runs in the container, keeps stdout and stderr apart and returns the exit code', async () => {
    const r = await kr(env.root, ['exec', 'execbox', 'sh', '-c', 'uname -r; echo to-err >&2; exit 3']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout.toString()).toBe(`${guestKernel}\n`);
    expect(r.stderr).toBe('to-err\n');
  });

  it('passes stdin through and applies --env, --cwd and --user', async () => {
    const r = await kr(env.root, ['exec', '-e', 'GREETING=hi', '--cwd', '/tmp', '-u', '65534:65534', 'execbox', 'sh', '-c', 'cat; echo "$GREETING $(pwd) $(id -u):$(id -g)"'], { input: 'from stdin\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toBe('from stdin\nhi /tmp 65534:65534\n');
  });

  it('returns when the process ends, even if the caller never closes stdin', async () => {
    const child = spawn(process.execPath, [CLI, '--root', env.root, 'exec', 'execbox', 'sh', '-c', 'exit 9'], { stdio: ['pipe', 'ignore', 'inherit'] });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    child.stdin.destroy();
    expect(code).toBe(9);
  });

  it('takes a process from --process', async () => {
    const file = path.join(env.tmp, 'process.json');
    fs.writeFileSync(file, JSON.stringify({ args: ['sh', '-c', 'echo "$A"; exit 7'], env: ['A=from-file', 'PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } }));
    const r = await kr(env.root, ['exec', '--process', file, 'execbox']);
    expect(r.code, r.stderr).toBe(7);
    expect(r.stdout.toString()).toBe('from-file\n');
  });

  it('leaves a detached helper whose pid is in --pid-file and whose status is the process\'s', async () => {
    const pidFile = path.join(env.tmp, 'exec.pid');
    const out = path.join(env.tmp, 'exec-detached.out');
    const fd = fs.openSync(out, 'w');
    const child = spawn(process.execPath, [CLI, '--root', env.root, 'exec', '-d', '--pid-file', pidFile, 'execbox', 'sh', '-c', 'sleep 1; echo detached-out; exit 5'], {
      stdio: ['ignore', fd, 'inherit'],
    });
    fs.closeSync(fd);
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(1);
    expect(fs.readFileSync(pidFile, 'utf8')).toMatch(/^[0-9]+$/);
    // The helper is not our child: wait for it to go, then read what it wrote.
    await waitFor(() => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 'the exec helper to exit');
    expect(fs.readFileSync(out, 'utf8')).toBe('detached-out\n');
  });

  it('fails with 255 and crun\'s message for a missing executable; the container keeps running', async () => {
    const r = await kr(env.root, ['exec', 'execbox', '/no/such/binary']);
    expect(r.code, r.stderr).toBe(255);
    expect(r.stderr).toMatch(/no such file or directory|not found/i);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect((await stateOf('execbox'))['status']).toBe('running');
  });

  it('fails with 255 for a bad --process file', async () => {
    const file = path.join(env.tmp, 'bad-process.json');
    fs.writeFileSync(file, '{"args": "not an array", "cwd": "/"}');
    const r = await kr(env.root, ['exec', '--process', file, 'execbox']);
    expect(r.code, r.stderr).toBe(255);
    expect(r.stderr).toMatch(/args must not be empty/);
  });

  it('gives a terminal through --console-socket, with the size the caller sets', async () => {
    const sock = path.join(env.tmp, 'exec-console.sock');
    const received = recvFdFromListener(sock, 120000);
    const child = spawn(process.execPath, [CLI, '--root', env.root, 'exec', '-t', '-d', '--console-socket', sock, '--pid-file', path.join(env.tmp, 'tty.pid'), 'execbox', 'sh', '-c', 'tty; sleep 2; stty size; exit 4'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise((r) => child.on('exit', (c) => r(c)));
    const { fd, data } = await received;
    expect(data).toMatch(/^\/dev\/pts\/[0-9]+$/);
    const { setWinsize } = await import('../../src/native/index.js');
    setWinsize(fd, 33, 101);
    const text = await readMaster(fd, /33 101/);
    expect(text).toMatch(/\/dev\/pts\/[0-9]+/);
    expect(text).toMatch(/33 101/);
    expect(await exited).toBe(0);
  });

  it('lists the container\'s processes with ps', async () => {
    const json = await kr(env.root, ['ps', '--format', 'json', 'execbox']);
    expect(json.code).toBe(0);
    // JSON: the host pid engines know the container by (state's pid), for docker top / ctr task ps
    expect(JSON.parse(json.stdout.toString())).toEqual([(await stateOf('execbox'))['pid']]);
    const table = await kr(env.root, ['ps', 'execbox']);
    expect(table.stdout.toString()).toMatch(/^UID\s+PID\s+PPID\s+CMD\n/);
    expect(table.stdout.toString()).toMatch(/sleep 600/);
  });

  it('applies update to the guest cgroup and reports it in events --stats', async () => {
    expect((await kr(env.root, ['update', '--memory', '96m', '--pids-limit', '50', 'execbox'])).code).toBe(0);
    const r = await kr(env.root, ['events', '--stats', 'execbox']);
    expect(r.code, r.stderr).toBe(0);
    const ev = JSON.parse(r.stdout.toString()) as { type: string; id: string; data: { memory: { usage: { limit?: number } }; pids: { limit?: number; current: number } } };
    expect(ev.type).toBe('stats');
    expect(ev.id).toBe('execbox');
    expect(ev.data.memory.usage.limit).toBe(96 * 1024 * 1024);
    expect(ev.data.pids.limit).toBe(50);
    expect(ev.data.pids.current).toBeGreaterThanOrEqual(1);
  });
});

describe('terminals, pause, hooks, mounts', () => {
  it('gives the container a terminal through --console-socket', async () => {
    const b = env.bundle('ttyinit', ['sh', '-c', 'tty; stty size; echo done'], (spec) => {
      const p = spec['process'] as Record<string, unknown>;
      p['terminal'] = true;
      p['consoleSize'] = { height: 40, width: 120 };
    });
    const sock = path.join(env.tmp, 'init-console.sock');
    const received = recvFdFromListener(sock, 120000);
    const create = kr(env.root, ['create', '--console-socket', sock, '-b', b, 'ttyinit']);
    const { fd, data } = await received;
    expect((await create).code).toBe(0);
    expect(data).toMatch(/^\/dev\/pts\/[0-9]+$/);
    const reading = readMaster(fd, /done/);
    expect((await kr(env.root, ['start', 'ttyinit'])).code).toBe(0);
    const text = await reading;
    expect(text).toMatch(/\/dev\/pts\/0\r?\n/);
    expect(text).toMatch(/40 120/);
    await waitFor(() => fs.existsSync(path.join(env.root, 'ttyinit')) && JSON.parse(fs.readFileSync(path.join(env.root, 'ttyinit', 'state.json'), 'utf8')).status === 'stopped', 'ttyinit to stop');
    expect((await kr(env.root, ['delete', 'ttyinit'])).code).toBe(0);
  });

  it('pauses and resumes the whole VM', async () => {
    const data = path.join(env.tmp, 'pause-data');
    fs.mkdirSync(data);
    const b = env.bundle('pauser', ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 0.1; done'], (spec) => {
      (spec['mounts'] as unknown[]).push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'rw'] });
    });
    const started = await kr(env.root, ['run', '-d', '-b', b, 'pauser'], { detached: true });
    expect(started.code, started.stderr).toBe(0);
    const count = (): number => Number(fs.readFileSync(path.join(data, 'count'), 'utf8').trim() || '0');
    await waitFor(() => fs.existsSync(path.join(data, 'count')) && count() > 2, 'the counter to run');
    expect((await kr(env.root, ['pause', 'pauser'])).code).toBe(0);
    expect((await stateOf('pauser'))['status']).toBe('paused');
    const frozen = count();
    await new Promise((r) => setTimeout(r, 1500));
    expect(count()).toBe(frozen);
    expect((await kr(env.root, ['pause', 'pauser'])).code).toBe(1); // already paused
    expect((await kr(env.root, ['delete', 'pauser'])).code).toBe(1); // paused is not stopped
    expect((await kr(env.root, ['resume', 'pauser'])).code).toBe(0);
    expect((await stateOf('pauser'))['status']).toBe('running');
    await waitFor(() => count() > frozen, 'the counter to move again', 20000);
    expect((await kr(env.root, ['pause', 'pauser'])).code).toBe(0);
    // SIGKILL of a paused container ends it (as a frozen cgroup's processes die).
    expect((await kr(env.root, ['kill', 'pauser', 'KILL'])).code).toBe(0);
    await waitFor(() => JSON.parse(fs.readFileSync(path.join(env.root, 'pauser', 'state.json'), 'utf8')).status === 'stopped', 'pauser to stop', 20000);
    expect((await kr(env.root, ['delete', 'pauser'])).code).toBe(0);
  });

  it('runs host hooks with the state on stdin, in the spec\'s order', async () => {
    const log = path.join(env.tmp, 'hooks.log');
    const hook = (name: string): Record<string, unknown> => ({
      path: '/bin/sh',
      args: ['sh', '-c', `read -r state; echo "${name} $state" >> ${log}`],
      env: ['PATH=/bin:/usr/bin'],
      timeout: 10,
    });
    const b = env.bundle('hooked', ['true'], (spec) => {
      (spec['root'] as Record<string, unknown>)['readonly'] = false;
      spec['hooks'] = {
        createRuntime: [hook('createRuntime')],
        prestart: [hook('prestart')],
        poststart: [hook('poststart')],
        poststop: [hook('poststop')],
        // runs inside the container, in the guest: its path and output are the container's
        startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'read -r state; echo "$state" > /tmp/startContainer'] }],
      };
    });
    expect((await kr(env.root, ['run', '-b', b, 'hooked'])).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(b, 'rootfs', 'tmp', 'startContainer'), 'utf8'))).toMatchObject({ id: 'hooked' });
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    // prestart before createRuntime: the runtime-spec's lifecycle order, and runc's
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['prestart', 'createRuntime', 'poststart', 'poststop']);
    const prestart = JSON.parse(lines[0]?.slice('prestart '.length) ?? '{}') as Record<string, unknown>;
    expect(prestart).toMatchObject({ id: 'hooked', status: 'creating', bundle: b });
    expect(prestart['pid']).toBeGreaterThan(1);
    const poststop = JSON.parse(lines[3]?.slice('poststop '.length) ?? '{}') as Record<string, unknown>;
    expect(poststop).toMatchObject({ id: 'hooked', status: 'stopped' });
  });

  it('shares bind-mounted directories read-write and files read-only', async () => {
    const dir = path.join(env.tmp, 'bind-dir');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'from-host'), 'host data\n');
    const file = path.join(env.tmp, 'bind-hosts');
    fs.writeFileSync(file, '127.0.0.1 bound-file\n');
    const b = env.bundle('binder', ['sh', '-c', 'cat /data/from-host; echo vm data > /data/from-vm; cat /etc/hosts; echo x >> /etc/hosts && echo WROTE || echo READONLY'], (spec) => {
      (spec['mounts'] as unknown[]).push(
        { destination: '/data', type: 'bind', source: dir, options: ['rbind', 'rw'] },
        { destination: '/etc/hosts', type: 'bind', source: file, options: ['rbind', 'ro'] },
      );
    });
    const r = await kr(env.root, ['run', '-b', b, 'binder']);
    expect(r.stdout.toString()).toBe('host data\n127.0.0.1 bound-file\nREADONLY\n');
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'from-vm'), 'utf8')).toBe('vm data\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('127.0.0.1 bound-file\n');
  });

  it('reports an OOM kill in the guest as an oom event', async () => {
    const b = env.bundle('oomer', ['sh', '-c', 'sleep 3; dd if=/dev/zero of=/dev/null bs=96M count=1; sleep 600'], (spec) => {
      const linux = spec['linux'] as Record<string, unknown>;
      linux['resources'] = { ...(linux['resources'] as Record<string, unknown>), memory: { limit: 32 * 1024 * 1024 } };
    });
    expect((await kr(env.root, ['run', '-d', '-b', b, 'oomer'], { detached: true })).code).toBe(0);
    const ev = spawn(process.execPath, [CLI, '--root', env.root, 'events', '--interval', '1s', 'oomer'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    ev.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('"type":"oom"'), 'an oom event', 60000);
      const oom = out.split('\n').find((l) => l.includes('"oom"')) ?? '';
      expect(JSON.parse(oom)).toEqual({ type: 'oom', id: 'oomer' });
      expect(out).toMatch(/"type":"stats"/);
    } finally {
      ev.kill();
      await kr(env.root, ['delete', '--force', 'oomer']);
    }
  });

  it('leaves nothing behind', () => {
    expect(leftovers(env)).toEqual([]);
  });
});

describe('spec and features', () => {
  it('spec writes runc\'s default config, which validates, and refuses to overwrite it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-spec-'));
    try {
      expect((await kr(env.root, ['spec', '--bundle', dir])).code).toBe(0);
      const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      expect(schemaErrors(spec)).toEqual([]);
      expect((spec['process'] as Record<string, unknown>)['terminal']).toBe(true);
      const again = await kr(env.root, ['spec', '--bundle', dir]);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/config\.json exists/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('features describes what is supported', async () => {
    const r = await kr(env.root, ['features']);
    expect(r.code, r.stderr).toBe(0);
    const f = JSON.parse(r.stdout.toString()) as { ociVersionMax: string; hooks: string[]; linux: { cgroup: { v2: boolean } } };
    expect(f.ociVersionMax).toBe('1.3.0');
    expect(f.hooks).toContain('prestart');
    expect(f.linux.cgroup.v2).toBe(true);
  });
});
