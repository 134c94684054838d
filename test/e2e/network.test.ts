/**
 * Networking (issue 5) through the real CLI. The container's network namespace is one that the
 * test made (bench/netpair.ts): a veth pair joins it to a peer namespace that stands for another
 * host, with IPv4 and IPv6 addresses and default routes. Every address used is on that pair or on
 * loopback; nothing is sent anywhere else. Under kata-runtime the container runs in a VM whose
 * virtio-net device is connected to the veth by a tap and tc mirred filters; the workload must not
 * be able to tell.
 *
 * KATA_E2E_RUNTIME=runc runs the same file against Debian's runc, which proves the tests
 * themselves (they were written that way, before the runtime had networking). Where the two
 * differ on purpose it says so: the kernel seen inside (the guest's / the host's), the tap and
 * ingress qdisc that exist only under kata-runtime while a container runs, and a spec without a
 * network namespace, which kata-runtime refuses (exit 1) and runc runs in the host's namespace.
 *
 * After every test: nothing of the container is left (process, mount, state dir), no tap and no
 * tc filter or ingress qdisc in the test's namespaces, `ip netns list` as it was before the test
 * (the runtime names no namespace of its own) and the test's own namespaces removed, pass or fail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GUEST_DIR } from '../../src/config.js';
import { sleep } from '../../src/util/fsx.js';
import { containerMac, httpGetIn, inNetns, kataTaps, linkNames, makeNetPair, netnsNames, removeNetPair, tcIngressAndFilters, type NetPair } from '../../bench/netpair.js';
import { e2eRuntime, expectClean, kr, leftovers, requirePrerequisites, RUNC, runtimeArgv, testEnv, waitForStatus as waitForStatusIn, type Result, type TestEnv } from './helpers.js';

const RT = e2eRuntime();
const KATA = RT === 'kata';

let env: TestEnv;
let netnsBefore: string[] = [];
const pairs: NetPair[] = [];
const servers: ChildProcess[] = [];

beforeAll(() => {
  if (KATA) requirePrerequisites();
  const missing = ['/usr/sbin/ip', '/usr/sbin/tc', '/usr/bin/nsenter', '/bin/busybox', ...(KATA ? [] : [RUNC])].filter((p) => !fs.existsSync(p));
  if (process.getuid?.() !== 0) missing.push('root');
  if (missing.length > 0) throw new Error(`network e2e prerequisites missing: ${missing.join(', ')}`);
  env = testEnv('net', RT);
});
afterAll(() => env.cleanup());

beforeEach(() => {
  netnsBefore = netnsNames();
});

afterEach(() => {
  // Whatever a test left (it failed half-way) goes first: containers, then peer servers, then the
  // namespaces. Then what the runtime might have left on the host is checked.
  if (fs.existsSync(env.root)) {
    for (const id of fs.readdirSync(env.root)) spawnSync(...runtimeArgv(RT, env.root, ['delete', '--force', id]), { stdio: 'ignore', timeout: 60000 });
  }
  for (const s of servers.splice(0)) s.kill('SIGKILL');
  for (const p of pairs.splice(0)) removeNetPair(p);
  expect(netnsNames(), '`ip netns list` changed: a namespace the test did not make, or one it did not remove').toEqual(netnsBefore);
  expect(kataTaps(), 'a tap in the host namespace').toEqual([]);
});

const k = (args: string[], opts: { detached?: boolean } = {}): Promise<Result> => kr(env.root, args, { ...opts, runtime: RT });

function show(r: Result): string {
  return `exit ${r.code ?? r.signal}\nstdout: ${r.stdout.toString().slice(-3000)}\nstderr: ${r.stderr.slice(-3000)}`;
}

async function ok(args: string[]): Promise<string> {
  const r = await k(args);
  expect(r.code, `${args.join(' ')}\n${show(r)}`).toBe(0);
  return r.stdout.toString();
}


function pair(tag: string, n: number, mtu?: number): NetPair {
  const p = makeNetPair(tag, n, mtu);
  pairs.push(p);
  return p;
}

/** A bundle whose network namespace is `netns` (a /run/netns name), `null` (a new one) or absent. */
function bundle(name: string, args: string[], netns: string | null | 'absent', edit?: (rootfs: string) => void): string {
  const b = env.bundle(name, args, (spec) => {
    const linux = spec['linux'] as { namespaces: { type: string; path?: string }[] };
    if (netns === 'absent') linux.namespaces = linux.namespaces.filter((n) => n.type !== 'network');
    else if (netns !== null) {
      const entry = linux.namespaces.find((n) => n.type === 'network');
      if (entry) entry.path = `/run/netns/${netns}`;
    }
    // busybox ping opens a raw socket
    const caps = (spec['process'] as { capabilities: Record<string, string[]> }).capabilities;
    for (const set of Object.values(caps)) set.push('CAP_NET_RAW');
  });
  edit?.(path.join(b, 'rootfs'));
  return b;
}

const waitForStatus = (id: string, status: string, timeoutMs?: number): Promise<Record<string, unknown>> => waitForStatusIn(env.root, id, status, timeoutMs, RT);

/** The kernel printed inside proves where the container ran: the guest's, or the host's under runc. */
function expectKernel(printed: string): void {
  const want = KATA ? fs.readFileSync(path.join(GUEST_DIR, 'kernel-version'), 'utf8').trim() : os.release();
  expect(printed.trim()).toBe(want);
  if (KATA) expect(printed.trim()).not.toBe(os.release());
}

/** Runs `argv` in namespace `ns` to completion. */
function inNs(ns: string, argv: string[], timeoutMs = 30000): { code: number | null; out: string; err: string } {
  const r = spawnSync(...inNetns(ns, argv), { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Starts a server in namespace `ns` and waits until it listens on TCP `port`. */
async function serverIn(ns: string, port: number, argv: string[]): Promise<void> {
  const child = spawn(...inNetns(ns, argv), { stdio: 'ignore' });
  servers.push(child);
  for (let i = 0; i < 100; i++) {
    if (new RegExp(`:${port}\\s`).test(inNs(ns, ['/bin/busybox', 'netstat', '-ltn']).out)) return;
    await sleep(100);
  }
  throw new Error(`${argv.join(' ')} never listened on ${port} in ${ns}`);
}

/** Nothing of the runtime's plumbing is left in the pair's container namespace. */
function expectPlumbingGone(p: NetPair): void {
  expect(kataTaps(p.container), `taps left in ${p.container}`).toEqual([]);
  expect(tcIngressAndFilters(p.container), `tc state left in ${p.container}`).toEqual([]);
}

/** While a kata container runs, its veth is wired to a tap: the leftover checks are meaningful. */
function expectPlumbingThere(p: NetPair): void {
  if (!KATA) return;
  expect(kataTaps(p.container), `no tap in ${p.container} while the container runs`).toEqual(['tap0_kata']);
  expect(tcIngressAndFilters(p.container, p.ifname).filter((l) => /ffff:/.test(l)), `no ingress qdisc on ${p.ifname} while the container runs`).not.toEqual([]);
}

/** The inode of a process's network namespace (`net:[N]`). */
function netnsOf(pid: number): string {
  return fs.readlinkSync(`/proc/${pid}/ns/net`);
}

/** The processes in network namespace `ns` (`net:[N]`), as `pid starttime` (a pid alone may be reused). */
function processesIn(ns: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      if (fs.readlinkSync(`/proc/${pid}/ns/net`) !== ns) continue;
      const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      out.push(`${pid} ${fields[19] ?? ''}`);
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

/** Which of `procs` (from processesIn) still run (a zombie has let go of its namespaces). */
function stillAlive(procs: string[]): string[] {
  return procs.filter((p) => {
    const [pid = '', start = ''] = p.split(' ');
    try {
      const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      return fields[19] === start && fields[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

describe(`networking (${KATA ? 'kata-runtime' : 'runc'})`, () => {
  it('joins a namespace with a veth: the container and a peer reach each other over IPv4 and IPv6', async () => {
    const p = pair('peer', 1, 1400);
    const mac = containerMac(p);
    const b = bundle('peer', ['httpd', '-f', '-p', '80', '-h', '/www'], p.container, (rootfs) => {
      fs.mkdirSync(path.join(rootfs, 'www'));
      fs.writeFileSync(path.join(rootfs, 'www', 'index.html'), 'served-from-the-container\n');
    });
    const pidFile = path.join(env.tmp, 'peer.pid');
    await ok(['create', '--bundle', b, '--pid-file', pidFile, 'peer']);
    await ok(['start', 'peer']);
    await waitForStatus('peer', 'running', 5000);
    expectPlumbingThere(p);

    // One exec for what the guest shows (each CLI call costs a second or more on a loaded machine).
    const shown = (await ok(['exec', 'peer', 'sh', '-c', `uname -r; echo --; ip addr show ${p.ifname}; echo --; ip route; echo --; ip -6 route`])).split('--\n');
    const [kernel = '', addr = '', route4 = '', route6 = ''] = shown;
    expectKernel(kernel);
    // The guest's interface is the veth: its name, MAC, MTU, addresses and routes.
    expect(addr).toMatch(new RegExp(`^\\d+: ${p.ifname}[@:].*mtu ${p.mtu}\\b`, 'm'));
    expect(addr).toContain(`link/ether ${mac}`);
    expect(addr).toContain(`inet ${p.v4.container}/${p.v4.prefix}`);
    expect(addr).toContain(`inet6 ${p.v6.container}/${p.v6.prefix}`);
    expect(route4).toMatch(new RegExp(`^default via ${p.v4.peer.replace(/\./g, '\\.')} dev ${p.ifname}`, 'm'));
    expect(route6).toMatch(new RegExp(`^default via ${p.v6.peer} dev ${p.ifname}`, 'm'));

    // container → peer: ICMP both families, and a TCP round trip (the peer answers and closes).
    const ping = await k(['exec', 'peer', 'sh', '-c', `ping -c 2 -w 30 ${p.v4.peer} && ping -c 2 -w 30 ${p.v6.peer}`]);
    expect(ping.code, show(ping)).toBe(0);
    expect(ping.stdout.toString().match(/2 packets received/g), show(ping)).toHaveLength(2);
    await serverIn(p.peer, 9000, ['/bin/busybox', 'nc', '-l', '-p', '9000', '-e', '/bin/busybox', 'sh', '-c', 'read l; echo "pong $l"']);
    expect(await ok(['exec', 'peer', 'sh', '-c', `echo hello-peer | nc -w 10 ${p.v4.peer} 9000`])).toBe('pong hello-peer\n');

    // peer → container: the server listening inside the container answers on both families.
    expect(await httpGetIn(p.peer, `http://${p.v4.container}/`)).toBe('served-from-the-container\n');
    expect(await httpGetIn(p.peer, `http://[${p.v6.container}]/`)).toBe('served-from-the-container\n');

    await ok(['kill', 'peer', 'KILL']);
    await waitForStatus('peer', 'stopped', 30000);
    await ok(['delete', 'peer']);
    expectPlumbingGone(p);
    expect(leftovers(env)).toEqual([]);
  });

  it('a network namespace without a path: loopback only, and loopback works', async () => {
    const b = bundle('lo', ['sleep', '600'], null);
    expect((await k(['run', '-d', '--bundle', b, 'lo'], { detached: true })).code).toBe(0);
    const s = await waitForStatus('lo', 'running', 5000);
    const ns = netnsOf(Number(s['pid']));
    expect(ns, 'the container (monitor) must not be in the host\'s network namespace').not.toBe(netnsOf(process.pid));

    const [kernel = '', links = ''] = (await ok(['exec', 'lo', 'sh', '-c', 'uname -r; echo --; ip -o link'])).split('--\n');
    expectKernel(kernel);
    expect([...links.matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1]), links).toEqual(['lo']);
    expect(links).toMatch(/^1: lo:.*\bUP\b/m);
    const nc = await ok(['exec', 'lo', 'sh', '-c', 'nc -l -p 7000 -e echo over-loopback & sleep 1; nc -w 10 127.0.0.1 7000']);
    expect(nc).toBe('over-loopback\n');

    // Everything in the namespace the runtime made (kata-runtime: monitor, QEMU, virtiofsd) must
    // go with the container, or the namespace outlives it. (Its inode number alone says nothing
    // afterwards: the kernel reuses it for the next new namespace.)
    const inside = processesIn(ns);
    expect(inside.map((x) => x.split(' ')[0])).toContain(String(s['pid']));
    await ok(['kill', 'lo', 'KILL']);
    await waitForStatus('lo', 'stopped', 30000);
    await ok(['delete', 'lo']);
    expect(leftovers(env)).toEqual([]);
    expect(stillAlive(inside), `processes left in the container's network namespace`).toEqual([]);
  });

  it('a spec without a network namespace: refused (kata-runtime) / the host\'s network (runc)', async () => {
    const b = bundle('hostnet', ['ip', '-o', 'link'], 'absent');
    const r = await k(['run', '--bundle', b, 'hostnet']);
    if (KATA) {
      expectClean(env, r, /network/i);
      expect(fs.existsSync(path.join(env.root, 'hostnet'))).toBe(false);
      return;
    }
    expect(r.code, show(r)).toBe(0);
    expect([...r.stdout.toString().matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1])).toEqual(linkNames());
    expect(leftovers(env)).toEqual([]);
  });

  // internetworking_model = "macvtap" is kata-runtime's configuration: nothing to compare with runc.
  it.runIf(KATA)('macvtap model: the container reaches the peer; kill -9 then delete --force removes the macvtap', async () => {
    const p = pair('mvt', 3);
    const conf = path.join(env.tmp, 'macvtap.toml');
    fs.writeFileSync(conf, '[runtime]\ninternetworking_model = "macvtap"\n');
    const b = bundle('mvt', ['sleep', '600'], p.container);
    expect((await k(['--config', conf, 'run', '-d', '--bundle', b, 'mvt'], { detached: true })).code).toBe(0);
    const s = await waitForStatus('mvt', 'running', 5000);
    // a macvtap on the veth instead of a tap + tc filters
    expect(kataTaps(p.container)).toEqual(['tap0_kata']);
    expect(tcIngressAndFilters(p.container)).toEqual([]);
    const shown = await ok(['exec', 'mvt', 'sh', '-c', `ip addr show ${p.ifname}; ping -c 2 -w 30 ${p.v4.peer}`]);
    expect(shown).toContain(`link/ether ${containerMac(p)}`);
    expect(shown).toContain('2 packets received');
    process.kill(Number(s['pid']), 'SIGKILL');
    await waitForStatus('mvt', 'stopped', 30000);
    expect(kataTaps(p.container), 'a macvtap outlives its QEMU: delete must remove it').toEqual(['tap0_kata']);
    await ok(['delete', '--force', 'mvt']);
    expectPlumbingGone(p);
    expect(leftovers(env)).toEqual([]);
  });

  it('kill -9 of the monitor, then delete --force: nothing left in the namespace', async () => {
    const p = pair('crash', 2);
    const b = bundle('crash', ['sleep', '600'], p.container);
    expect((await k(['run', '-d', '--bundle', b, 'crash'], { detached: true })).code).toBe(0);
    const s = await waitForStatus('crash', 'running', 5000);
    expectPlumbingThere(p);
    const pid = Number(s['pid']);
    expect(netnsOf(pid), 'the state pid (kata-runtime: the monitor) lives in the container\'s namespace').toBe(`net:[${fs.statSync(`/run/netns/${p.container}`).ino}]`);
    process.kill(pid, 'SIGKILL');
    await waitForStatus('crash', 'stopped', 30000);
    await ok(['delete', '--force', 'crash']);
    expectPlumbingGone(p);
    expect(leftovers(env)).toEqual([]);
  });
});
