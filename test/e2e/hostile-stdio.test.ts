/**
 * The CLI run with the stdio callers really give it: containerd's CRI path runs `create` with fds
 * 0-2 on /dev/null opened read-only, a supervisor may start it with fds 0-2 closed, a shell
 * pipeline may have lost its reader. Whatever the stdio, the container is created, started,
 * killed and deleted correctly, every verb exits as runc 1.1.5 does, and a verb that fails still
 * leaves its error line in --log (src/cli/stdio.ts, docs/architecture.md "The CLI's stdio").
 *
 * KATA_E2E_RUNTIME=runc runs the same file against Debian's runc (the reference the expectations
 * were taken from). The one deliberate difference (docs/cli-compat.md): with fd 1 closed, runc's
 * output goes to whatever descriptor it opened first and `list`/`features` fail with
 * `write /dev/stdout: invalid argument`; Node opens /dev/null on closed fds 0-2 before anything
 * runs, so kata-runtime's output goes nowhere and those verbs succeed.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eRuntime, kr, leftovers, requirePrerequisites, runtimeArgv, testEnv, waitForStatus, type TestEnv } from './helpers.js';

const runtime = e2eRuntime();
let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('hostile', runtime);
});
afterAll(() => env.cleanup());

type Mode = 'rdonly' | 'closed' | 'epipe';

/**
 * Shell wrappers that give the command the stdio of each mode; the command's exit status is
 * written to the file named by $1 (a status of 141 is death by SIGPIPE, as the shell reports it).
 * epipe: stdout is a pipe whose reader (`true`) has exited before the command starts.
 */
const WRAPPERS: Record<Mode, string> = {
  rdonly: 'r=$1; shift; "$@" 0</dev/null 1</dev/null 2</dev/null; echo $? > "$r"',
  closed: 'r=$1; shift; "$@" 0<&- 1>&- 2>&-; echo $? > "$r"',
  epipe: 'r=$1; shift; { sleep 0.3; "$@" 2>/dev/null; echo $? > "$r"; } | true',
};

/** Runs the runtime under `mode`'s stdio; resolves with its exit status. */
function under(mode: Mode, args: string[]): Promise<number> {
  const [file, argv] = runtimeArgv(runtime, env.root, args);
  const rcFile = path.join(env.tmp, `rc-${mode}-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', WRAPPERS[mode], 'sh', rcFile, file, ...argv], { timeout: 240000 }, (err) => {
      if (err !== null) return reject(err);
      const text = fs.readFileSync(rcFile, 'utf8').trim();
      fs.rmSync(rcFile, { force: true });
      resolve(Number(text));
    });
  });
}

/** What runc 1.1.5 exits with for each printing verb, per mode (checked on this host). */
const PRINTING: { args: (id: string) => string[]; rdonly: number; closed: number; epipe: number }[] = [
  // state, ps (table), list -q, help: printed with fmt, write errors ignored.
  { args: (id) => ['state', id], rdonly: 0, closed: 0, epipe: 141 },
  { args: (id) => ['ps', id], rdonly: 0, closed: 0, epipe: 141 },
  { args: () => ['list', '-q'], rdonly: 0, closed: 0, epipe: 141 },
  { args: () => ['spec', '--help'], rdonly: 0, closed: 0, epipe: 141 },
  // list (table), features: through tabwriter / json.Encoder, a write error fails the verb.
  { args: () => ['list'], rdonly: 1, closed: runtime === 'runc' ? 1 : 0, epipe: 141 },
  { args: () => ['features'], rdonly: 1, closed: runtime === 'runc' ? 1 : 0, epipe: 141 },
];

describe.each(['rdonly', 'closed', 'epipe'] as const)('with fds 0-2 %s', (mode) => {
  it('create, start, state, kill and delete work and exit as runc does', async () => {
    const id = `hs-${mode}`;
    const log = path.join(env.tmp, `${mode}.log`);
    const b = env.bundle(id, ['sleep', '600']);
    const g = ['--log', log, '--log-format', 'json'];
    expect(await under(mode, [...g, 'create', '--bundle', b, id])).toBe(0);
    expect((await waitForStatus(env.root, id, 'created', 5000, runtime))['id']).toBe(id);
    expect(await under(mode, [...g, 'start', id])).toBe(0);
    await waitForStatus(env.root, id, 'running', 5000, runtime);
    for (const p of PRINTING) expect([p.args(id).join(' '), await under(mode, [...g, ...p.args(id)])]).toEqual([p.args(id).join(' '), p[mode]]);
    // A verb that fails on its own stdout still says so in --log, in Go's words.
    const logged = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : [];
    const errors = logged.map((l) => JSON.parse(l) as Record<string, string>).filter((l) => l['level'] === 'error');
    const failing = PRINTING.filter((p) => p[mode] === 1).length;
    expect(errors).toHaveLength(failing);
    for (const e of errors) expect(e['msg']).toMatch(/^write \/dev\/stdout: (bad file descriptor|invalid argument)$/);
    // The container is untouched by all that: it still runs, and a kill ends it.
    await waitForStatus(env.root, id, 'running', 5000, runtime);
    expect(await under(mode, [...g, 'kill', id, 'KILL'])).toBe(0);
    await waitForStatus(env.root, id, 'stopped', 60000, runtime);
    expect(await under(mode, [...g, 'delete', id])).toBe(0);
    expect((await kr(env.root, ['state', id], { runtime })).code).toBe(1);
    // A failing verb exits 1 and logs its one line even when nobody can read its stderr.
    expect(await under(mode, [...g, 'state', 'no-such-container'])).toBe(1);
    const last = fs.readFileSync(log, 'utf8').trim().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toMatchObject({ level: 'error', msg: expect.stringMatching(/does not exist/) as unknown });
    if (runtime === 'kata') expect(leftovers(env)).toEqual([]);
  });
});

describe('closed fds 0-2 are never reused as stdio', () => {
  it.runIf(runtime === 'kata')('the monitor, QEMU and virtiofsd get /dev/null (or their own log) as fds 0-2', async () => {
    const id = 'hs-fds';
    const b = env.bundle(id, ['sleep', '600']);
    expect(await under('closed', ['create', '--bundle', b, id])).toBe(0);
    const dir = path.join(env.root, id);
    const rec = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as Record<string, number>;
    const fdsOf = (pid: number | undefined): string[] => [0, 1, 2].map((fd) => fs.readlinkSync(`/proc/${pid ?? 0}/fd/${fd}`));
    expect(fdsOf(rec['monitorPid'])).toEqual(['/dev/null', '/dev/null', '/dev/null']);
    expect(fdsOf(rec['qemuPid'])).toEqual(['/dev/null', path.join(dir, 'qemu.log'), path.join(dir, 'qemu.log')]);
    for (const f of fdsOf(rec['virtiofsdPid'])) expect(f === '/dev/null' || f.startsWith(`${dir}/`)).toBe(true);
    expect((await kr(env.root, ['delete', '--force', id])).code).toBe(0);
    expect(leftovers(env)).toEqual([]);
  });
});
