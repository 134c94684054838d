import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePsResult, decodeStatsResult } from '../../src/channel/messages.js';
import { formatPs } from '../../src/cli/render.js';
import { parseBytes, parseDuration, parseInteger } from '../../src/cli/units.js';
import { decodeControlRequest } from '../../src/monitor/control.js';
import net from 'node:net';
import { encodeFrame } from '../../src/channel/frame.js';
import { decodeClientMsg, decodeExit, FramedSocket } from '../../src/monitor/exec-wire.js';
import { semanticProblems } from '../../src/oci/bundle.js';
import { defaultSpec } from '../../src/oci/default-spec.js';
import { hostHooks, runHook } from '../../src/oci/hooks.js';
import type { Spec } from '../../src/oci/spec.js';
import { GUEST_NR_OPEN, parseProcLimits, toGuestPlan } from '../../src/oci/translate.js';
import { buildExecProcess, type ExecFlags } from '../../src/runtime/exec.js';
import { runcStats } from '../../src/runtime/runtime.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-unit-verbs-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const noFlags: ExecFlags = { args: [], tty: false, env: [], additionalGids: [], noNewPrivs: false, caps: [] };
const base = (defaultSpec(['sleep', '1'])['process'] ?? {}) as Record<string, unknown>;

describe('exec process, as runc builds it', () => {
  it('starts from the container\'s process and applies the flags', () => {
    const p = buildExecProcess({ ...noFlags, args: ['sh', '-c', 'x'], env: ['A=1'], cwd: '/tmp', user: '1000:1001', additionalGids: [5, 6], caps: ['CAP_SYS_ADMIN'], noNewPrivs: true, tty: true }, base);
    expect(p['args']).toEqual(['sh', '-c', 'x']);
    expect(p['env']).toEqual([...(base['env'] as string[]), 'A=1']);
    expect(p['cwd']).toBe('/tmp');
    expect(p['user']).toEqual({ uid: 1000, gid: 1001, additionalGids: [5, 6] });
    expect(p['terminal']).toBe(true);
    expect(p['noNewPrivileges']).toBe(true);
    const caps = p['capabilities'] as Record<string, string[]>;
    // runc 1.1.5 adds --cap to the ambient set too, never to the inheritable one.
    for (const set of ['bounding', 'effective', 'permitted', 'ambient']) expect(caps[set]).toContain('CAP_SYS_ADMIN');
    expect(caps['inheritable'] ?? []).not.toContain('CAP_SYS_ADMIN');
    expect(base['args']).toEqual(['sleep', '1']); // the base is not modified
  });

  it('a user without a group keeps the container\'s gid', () => {
    expect(buildExecProcess({ ...noFlags, args: ['id'], user: '7' }, { ...base, user: { uid: 0, gid: 3 } })['user']).toEqual({ uid: 7, gid: 3 });
  });

  it('rejects what runc rejects', () => {
    expect(() => buildExecProcess(noFlags, base)).toThrow(/either a command or --process/);
    expect(() => buildExecProcess({ ...noFlags, args: ['x'], cwd: 'relative' }, base)).toThrow(/Cwd must be an absolute path/);
    expect(() => buildExecProcess({ ...noFlags, args: ['x'], user: 'root' }, base)).toThrow(/parsing uid "root": invalid syntax/);
    expect(() => buildExecProcess({ ...noFlags, args: ['x'] }, { ...base, cwd: '' })).toThrow(/Cwd property must not be empty/);
  });

  it('reads --process files and ignores the other flags then', () => {
    const f = path.join(tmp, 'p.json');
    fs.writeFileSync(f, JSON.stringify({ args: ['true'], cwd: '/' }));
    expect(buildExecProcess({ ...noFlags, processFile: f, args: ['ignored'], env: ['B=2'] }, base)).toEqual({ args: ['true'], cwd: '/' });
    fs.writeFileSync(f, '{"args": []');
    expect(() => buildExecProcess({ ...noFlags, processFile: f }, base)).toThrow(/invalid JSON/);
    fs.writeFileSync(f, '{"args": [], "cwd": "/"}');
    expect(() => buildExecProcess({ ...noFlags, processFile: f }, base)).toThrow(/args must not be empty/);
    expect(() => buildExecProcess({ ...noFlags, processFile: path.join(tmp, 'missing.json') }, base)).toThrow(/no such file or directory/);
  });
});

describe('flag values', () => {
  it('parses Go durations', () => {
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('100ms')).toBe(100);
    expect(parseDuration('1m30s')).toBe(90000);
    expect(parseDuration('1.5h')).toBe(5400000);
    for (const bad of ['', '5', 's', '5x', '-1s', '0s', '1s junk']) expect(() => parseDuration(bad)).toThrow();
  });

  it('parses memory sizes as runc does (binary units)', () => {
    expect(parseBytes('1024')).toBe(1024);
    expect(parseBytes('64m')).toBe(64 * 1024 * 1024);
    expect(parseBytes('1G')).toBe(1024 ** 3);
    expect(parseBytes('2kb')).toBe(2048);
    expect(parseBytes('1.5k')).toBe(1536);
    expect(parseBytes('-1', true)).toBe(-1);
    for (const bad of ['-1', 'lots', '1x', '']) expect(() => parseBytes(bad)).toThrow(/invalid size/);
  });

  it('parses integers with ranges', () => {
    expect(parseInteger('-5', 'cpu-quota')).toBe(-5);
    expect(() => parseInteger('5.5', 'pids-limit')).toThrow(/--pids-limit/);
    expect(() => parseInteger('2000', 'blkio-weight', 0, 1000)).toThrow(/out of range/);
  });
});

describe('control and exec wire decoding (from another process: checked)', () => {
  it('accepts the known requests', () => {
    expect(decodeControlRequest('{"op":"pause"}')).toEqual({ op: 'pause' });
    expect(decodeControlRequest('{"op":"kill","signal":9,"all":true}')).toEqual({ op: 'kill', signal: 9, all: true });
    expect(decodeControlRequest('{"op":"update","resources":{"pids":{"limit":5}}}')).toEqual({ op: 'update', resources: { pids: { limit: 5 } } });
    expect(decodeControlRequest('{"op":"exec","execId":"ab12","process":{"args":["x"]},"consoleSocket":"/s"}')).toEqual({
      op: 'exec',
      execId: 'ab12',
      process: { args: ['x'] },
      consoleSocket: '/s',
    });
  });

  it('rejects malformed requests', () => {
    for (const bad of ['nope', '[]', '{"op":"frob"}', '{"op":"kill","signal":0}', '{"op":"exec","execId":"../x","process":{}}', '{"op":"exec","execId":"a","process":[]}', '{"op":"update","resources":3}']) {
      expect(() => decodeControlRequest(bad), bad).toThrow(/bad control request/);
    }
  });

  it('decodes exec messages and rejects bad ones', () => {
    expect(decodeClientMsg(Buffer.from('{"resize":{"rows":24,"cols":80}}'))).toEqual({ resize: { rows: 24, cols: 80 } });
    expect(decodeClientMsg(Buffer.from('{"signal":15}'))).toEqual({ signal: 15 });
    for (const bad of ['{"resize":{"rows":-1,"cols":2}}', '{"signal":99}', 'x', '{}']) expect(() => decodeClientMsg(Buffer.from(bad))).toThrow();
    expect(decodeExit(Buffer.from('{"exit":{"code":3,"signal":null}}'))).toEqual({ code: 3, signal: null });
    expect(decodeExit(Buffer.from('{"exit":{"code":null,"signal":9}}'))).toEqual({ code: null, signal: 9 });
    for (const bad of ['{"exit":{"code":3,"signal":9}}', '{"exit":{"code":256,"signal":null}}', '{"exit":{}}']) expect(() => decodeExit(Buffer.from(bad))).toThrow();
  });
});

describe('agent results are untrusted', () => {
  it('ps entries are checked', () => {
    expect(decodePsResult({ processes: [{ pid: 1, ppid: 0, uid: 0, cmd: 'sleep 600' }] })).toEqual([{ pid: 1, ppid: 0, uid: 0, cmd: 'sleep 600' }]);
    expect(() => decodePsResult({ processes: [{ pid: -1, ppid: 0, uid: 0, cmd: '' }] })).toThrow();
    expect(() => decodePsResult({ processes: 'x' })).toThrow();
    expect(() => decodePsResult({ processes: [{ pid: 1, ppid: 0, uid: 0 }] })).toThrow();
    const long = decodePsResult({ processes: [{ pid: 2, ppid: 1, uid: 0, cmd: 'y'.repeat(100000) }] });
    expect(long[0]?.cmd.length).toBeLessThan(5000);
  });

  it('stats counters are checked; unknown memory.stat keys are dropped', () => {
    const ok = { cpuUsageUsec: 5, cpuUserUsec: 3, cpuSystemUsec: 2, memoryCurrent: 100, memoryMax: null, memorySwapCurrent: 0, pidsCurrent: 1, pidsMax: 10, oomKills: 0, memoryStat: { anon: 4, 'bad key': 5, file: -1 } };
    const s = decodeStatsResult(ok);
    expect(s.memoryStat).toEqual({ anon: 4 });
    expect(runcStats(s)).toMatchObject({ cpu: { usage: { total: 5000, user: 3000, kernel: 2000 } }, memory: { usage: { usage: 100 } }, pids: { current: 1, limit: 10 } });
    expect(() => decodeStatsResult({ ...ok, memoryCurrent: -1 })).toThrow();
    expect(() => decodeStatsResult({ ...ok, cpuUsageUsec: 'x' })).toThrow();
  });

  it('ps renders like a table or runc\'s JSON list of pids', () => {
    const procs = [{ pid: 1, ppid: 0, uid: 0, cmd: 'sleep 600' }, { pid: 12, ppid: 1, uid: 65534, cmd: 'sh' }];
    expect(formatPs(procs, 'json')).toBe('[1,12]\n');
    expect(formatPs(procs, 'table').split('\n')[0]).toMatch(/^UID\s+PID\s+PPID\s+CMD$/);
  });
});

describe('host side of the spec', () => {
  it('bind mount sources go into the share; other mounts stay', () => {
    const dir = path.join(tmp, 'vol');
    fs.mkdirSync(dir);
    const file = path.join(tmp, 'hosts');
    fs.writeFileSync(file, '');
    const spec = defaultSpec(['true']) as unknown as Spec;
    spec.mounts = [...(spec.mounts ?? []), { destination: '/v', type: 'bind', source: dir, options: ['rbind', 'ro'] }, { destination: '/etc/hosts', source: 'hosts', options: ['bind'] }];
    const plan = toGuestPlan(spec, 'c1', tmp);
    expect(plan.binds).toEqual([
      { host: dir, name: 'mounts/7', kind: 'dir' },
      { host: file, name: 'mounts/8', kind: 'file' },
    ]);
    expect(plan.spec.mounts?.[7]).toEqual({ destination: '/v', type: 'bind', source: '/run/kata/shared/mounts/7', options: ['rbind', 'ro'] });
    expect(plan.spec.mounts?.[0]).toEqual(spec.mounts[0]);
    expect(plan.spec.linux?.cgroupsPath).toBe('/kata/c1');
  });

  it('the guest\'s rootfsPropagation is always `private`, and bind propagation options pass through', () => {
    // crun re-applies rootfsPropagation to the container's root after pivot_root (rprivate by
    // default), which would undo a bind's `shared`; see docs/architecture.md "Mount propagation".
    for (const rp of [undefined, 'private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable']) {
      const spec = defaultSpec(['true']) as unknown as Spec;
      if (rp !== undefined && spec.linux) spec.linux['rootfsPropagation'] = rp;
      spec.mounts = [{ destination: '/v', type: 'bind', source: tmp, options: ['rbind', 'rshared'] }];
      const plan = toGuestPlan(spec, 'c1', tmp);
      expect(plan.spec.linux?.['rootfsPropagation']).toBe('private');
      expect(plan.spec.mounts?.[0]?.options).toEqual(['rbind', 'rshared']);
      expect(spec.linux?.['rootfsPropagation']).toBe(rp);
    }
  });

  it('a relative mount destination is taken as relative to / (runtime-spec 1.2.0), for binds too', () => {
    const spec = defaultSpec(['true']) as unknown as Spec;
    spec.mounts = [{ destination: 'data', type: 'tmpfs', source: 'tmpfs' }, { destination: 'v/../w', type: 'bind', source: tmp, options: ['rbind'] }];
    const plan = toGuestPlan(spec, 'c1', tmp);
    expect(plan.spec.mounts?.map((m) => m.destination)).toEqual(['/data', '/w']);
    expect(spec.mounts.map((m) => m.destination)).toEqual(['data', 'v/../w']);
    expect(semanticProblems(spec)).toEqual([]);
  });

  it('the caller\'s rlimits fill the types the spec does not set (runc\'s container inherits them)', () => {
    const limits = [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max cpu time              unlimited            unlimited            seconds   ',
      'Max stack size            8388608              unlimited            bytes     ',
      'Max processes             95538                95538                processes ',
      'Max open files            20000                1073741816           files     ',
      'Max locked memory         8388608              8388608              bytes     ',
      'Max realtime priority     0                    0                    ',
      '',
    ].join('\n');
    const inherited = parseProcLimits(limits);
    expect(inherited).toEqual([
      { type: 'RLIMIT_NPROC', soft: 95538, hard: 95538 },
      { type: 'RLIMIT_NOFILE', soft: 20000, hard: GUEST_NR_OPEN },
      { type: 'RLIMIT_MEMLOCK', soft: 8388608, hard: 8388608 },
      { type: 'RLIMIT_RTPRIO', soft: 0, hard: 0 },
    ]);
    const spec = defaultSpec(['true']) as unknown as Spec;
    const plan = toGuestPlan(spec, 'c1', tmp, inherited);
    // The spec's own NOFILE wins; the others come from the caller.
    expect(plan.spec.process?.rlimits?.map((r) => `${r.type}=${r.soft}:${r.hard}`)).toEqual([
      'RLIMIT_NOFILE=1024:1024',
      'RLIMIT_NPROC=95538:95538',
      'RLIMIT_MEMLOCK=8388608:8388608',
      'RLIMIT_RTPRIO=0:0',
    ]);
    expect(spec.process?.rlimits).toHaveLength(1);
  });

  it('an AppArmor profile is dropped on the way to the guest (it has no AppArmor)', () => {
    const spec = defaultSpec(['true']) as unknown as Spec;
    (spec.process as unknown as Record<string, unknown>)['apparmorProfile'] = 'docker-default';
    expect(toGuestPlan(spec, 'c1', tmp).spec.process).not.toHaveProperty('apparmorProfile');
    expect(spec.process).toHaveProperty('apparmorProfile');
  });

  it('a missing bind source is a bundle error', () => {
    const spec = defaultSpec(['true']) as unknown as Spec;
    spec.mounts = [{ destination: '/v', type: 'bind', source: '/no/such/source' }];
    expect(() => toGuestPlan(spec, 'c1', tmp)).toThrow(/mounts\.0: bind source \/no\/such\/source: no such file or directory/);
  });

  it('hooks get argv, env, the state on stdin, and a deadline', async () => {
    const out = path.join(tmp, 'hook.out');
    const state = { ociVersion: '1.0.2', id: 'c', status: 'creating', pid: 42, bundle: tmp };
    await runHook('prestart', { path: '/bin/sh', args: ['myname', '-c', `echo "$0 $X $(cat)" > ${out}`], env: ['X=envvalue'] }, state);
    expect(fs.readFileSync(out, 'utf8')).toBe(`myname envvalue ${JSON.stringify(state)}\n`);
    await expect(runHook('poststart', { path: '/bin/sh', args: ['sh', '-c', 'echo bad >&2; exit 2'] }, state)).rejects.toThrow(/poststart hook \/bin\/sh exited 2: bad/);
    await expect(runHook('prestart', { path: '/bin/sh', args: ['sh', '-c', 'sleep 5'], timeout: 1 }, state)).rejects.toThrow(/timed out after 1 s/);
    await expect(runHook('prestart', { path: '/no/such/hook' }, state)).rejects.toThrow(/prestart hook \/no\/such\/hook: .*ENOENT/);
    expect(hostHooks({ hooks: { prestart: [{ path: '/x' }], createContainer: [{ path: '/y' }], poststop: [] } } as unknown as Spec)).toEqual({ prestart: [{ path: '/x' }] });
  });
});

describe('exec stream over a socket', () => {
  it('is closed only after every frame the peer sent was handled (exit behind slow output)', async () => {
    const sockPath = path.join(tmp, 'framed.sock');
    const server = net.createServer((peer) => {
      peer.write(encodeFrame({ type: 'DATA', stream: 2, payload: Buffer.from('slow output') }));
      peer.end(encodeFrame({ type: 'MSG', stream: 0, payload: Buffer.from('{"exit":{"code":7,"signal":null}}') }));
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
    const sock = net.createConnection(sockPath);
    const seen: string[] = [];
    const f = new FramedSocket(sock, Buffer.alloc(0), async (fr) => {
      if (fr.type === 'DATA') await new Promise((r) => setTimeout(r, 300)); // a slow stdout reader
      seen.push(fr.type);
    }, () => undefined);
    await f.closed;
    expect(seen).toEqual(['DATA', 'MSG']);
    server.close();
  });
});
