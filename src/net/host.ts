/**
 * The host side of the "tcfilter" model, run by the monitor from inside the container's network
 * namespace (it was started there): read the interfaces and routes, and join each interface to its
 * tap with an ingress qdisc + mirred redirect on both. QEMU creates the taps (ifname=, no
 * persistence), so they vanish with it; only the qdisc on the engine's interface outlives a crash,
 * and `disconnect` (teardown, or `delete` through the recorded netns path) removes it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { KataError } from '../errors.js';
import { buildPlan, type NetLink, type NetPlan } from './plan.js';

const SEARCH = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** iproute2's and util-linux's tools by absolute path: engines call us with sparse PATHs. */
export function tool(name: 'ip' | 'tc' | 'nsenter' | 'unshare'): string {
  for (const d of SEARCH) {
    const p = `${d}/${name}`;
    if (fs.existsSync(p)) return p;
  }
  throw new KataError('E_NETWORK', `${name} not found in ${SEARCH.join(', ')} (install iproute2 and util-linux)`);
}

function run(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: 10000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else {
        const why = stderr.trim().split('\n').filter((l) => l !== '').slice(-2).join('; ') || err.message;
        reject(new KataError('E_NETWORK', `${file.split('/').pop() ?? file} ${args.join(' ')}: ${why}`));
      }
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text === '' ? '[]' : text);
  } catch {
    throw new KataError('E_NETWORK', `cannot parse the output of ${what}`);
  }
}

/** The plan for the netns this process is in. */
export async function scanNetns(): Promise<NetPlan> {
  const ip = tool('ip');
  const [addrs, r4, r6] = await Promise.all([
    run(ip, ['-json', 'addr', 'show']),
    run(ip, ['-json', '-4', 'route', 'show', 'table', 'main']),
    run(ip, ['-json', '-6', 'route', 'show', 'table', 'main']).catch(() => '[]'), // IPv6 may be disabled
  ]);
  return buildPlan(json(addrs, 'ip addr'), json(r4, 'ip route'), json(r6, 'ip -6 route'));
}

/** tc batch lines that join a link (whose ingress qdisc is already there) and its tap, both ways. */
export function tcConnectBatch(l: NetLink): string {
  const redirect = (from: string, to: string): string => `filter add dev ${from} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${to}`;
  return [`qdisc add dev ${l.tap} ingress`, redirect(l.link, l.tap), redirect(l.tap, l.link), ''].join('\n');
}

/**
 * After QEMU has created the taps: bring them up and join them to their links. `owned` gets each
 * link as soon as its ingress qdisc is ours, so a failure half-way still tears down what was made
 * (an ingress qdisc that was there before us is never touched: adding ours fails first).
 */
export async function connect(links: readonly NetLink[], owned: string[]): Promise<void> {
  if (links.length === 0) return;
  const ip = tool('ip');
  const tc = tool('tc');
  for (const l of links) {
    if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(l.link)) throw new KataError('E_NETWORK', `interface name ${JSON.stringify(l.link)} is not one tc can take`);
    await run(ip, ['link', 'set', 'dev', l.tap, 'mtu', String(l.mtu), 'up']);
    await run(tc, ['qdisc', 'add', 'dev', l.link, 'ingress']);
    owned.push(l.link);
    await run(tc, ['-batch', '-'], tcConnectBatch(l));
  }
}

/** Undoes `connect`; a link or tap that is already gone is not an error. Returns what failed. */
export async function disconnect(links: readonly string[]): Promise<string[]> {
  if (links.length === 0) return [];
  const tc = tool('tc');
  const failed: string[] = [];
  for (const link of links) {
    try {
      await run(tc, ['qdisc', 'del', 'dev', link, 'ingress']);
    } catch (e) {
      const m = e instanceof Error ? e.message : String(e);
      if (!/Cannot find device|Invalid handle|Cannot delete qdisc with handle of zero|No such file/.test(m)) failed.push(m);
    }
  }
  return failed;
}

/** `disconnect` run in a netns given by path (for `delete` after the monitor died). */
export async function disconnectIn(netnsPath: string, links: readonly string[]): Promise<string[]> {
  if (links.length === 0 || !fs.existsSync(netnsPath)) return [];
  const nsenter = tool('nsenter');
  const tc = tool('tc');
  const failed: string[] = [];
  for (const link of links) {
    try {
      await run(nsenter, [`--net=${netnsPath}`, '--', tc, 'qdisc', 'del', 'dev', link, 'ingress']);
    } catch (e) {
      const m = e instanceof Error ? e.message : String(e);
      if (!/Cannot find device|Invalid handle|Cannot delete qdisc with handle of zero|No such file|reassociate/.test(m)) failed.push(m);
    }
  }
  return failed;
}
