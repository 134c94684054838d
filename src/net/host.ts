/**
 * The host side of the VM's network, run by the monitor from inside the container's network
 * namespace (it was started there): read the interfaces and routes, then join each interface to
 * the VM.
 *
 * - tcfilter (default): QEMU creates a tap per interface (ifname=, not persistent, so it vanishes
 *   with QEMU); an ingress qdisc + mirred redirect on both joins tap and interface. Only the qdisc
 *   on the engine's interface outlives a crash.
 * - macvtap: a macvtap in passthru mode on each interface (it takes the interface's MAC and all
 *   its traffic); QEMU gets its character device as an fd. The macvtap outlives a crash.
 *
 * `Attached` lists what is ours to remove: teardown does it from inside the netns, `delete` after
 * a monitor crash through the recorded netns path.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { KataError } from '../errors.js';
import path from 'node:path';
import { buildPlan, type NetLink, type NetPlan } from './plan.js';

/** What we added to the container's netns: ingress qdiscs on `qdiscs`, whole `devices`. */
export interface Attached {
  qdiscs: string[];
  devices: string[];
}

const SEARCH = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** iproute2's and util-linux's tools by absolute path: engines call us with sparse PATHs. */
export function tool(name: 'ip' | 'tc' | 'nsenter' | 'unshare' | 'mknod' | 'sh'): string {
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
 * tcfilter, after QEMU has created the taps: bring them up and join them to their links. `owned`
 * gets each link as soon as its ingress qdisc is ours, so a failure half-way still tears down what
 * was made (an ingress qdisc that was there before us is never touched: adding ours fails first).
 */
export async function connectTaps(links: readonly NetLink[], owned: Attached, record: () => void = () => undefined): Promise<void> {
  const ip = tool('ip');
  const tc = tool('tc');
  for (const l of links) {
    checkName(l.link);
    await run(ip, ['link', 'set', 'dev', l.tap, 'mtu', String(l.mtu), 'up']);
    // Recorded before it is added: a monitor killed while tc runs must leave a record that
    // names it (found by the fault suite: kill -9 while creating left the qdisc behind).
    // Removing one that was never added is harmless (detach ignores "gone").
    owned.qdiscs.push(l.link);
    record();
    try {
      await run(tc, ['qdisc', 'add', 'dev', l.link, 'ingress']);
    } catch (e) {
      owned.qdiscs.pop(); // not ours: an ingress qdisc was already there
      record();
      throw e;
    }
    await run(tc, ['-batch', '-'], tcConnectBatch(l));
  }
}

function checkName(link: string): void {
  if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(link)) throw new KataError('E_NETWORK', `interface name ${JSON.stringify(link)} is not one ip/tc can take`);
}

/**
 * macvtap, before QEMU starts: a passthru macvtap on each link, and an open fd on its character
 * device for QEMU (`-netdev tap,fd=`). Without udev there is no /dev/tapN: the device number is
 * read from a sysfs mounted for this netns in a throw-away mount namespace, and the node is made
 * in the state directory, opened, and removed again.
 */
export async function createMacvtaps(links: readonly NetLink[], dir: string, owned: Attached): Promise<number[]> {
  const ip = tool('ip');
  const fds: number[] = [];
  try {
    for (const l of links) {
      checkName(l.link);
      await run(ip, ['link', 'add', 'link', l.link, 'name', l.tap, 'type', 'macvtap', 'mode', 'passthru']);
      owned.devices.push(l.tap);
      await run(ip, ['link', 'set', 'dev', l.tap, 'address', l.mac, 'mtu', String(l.mtu), 'up']);
      const out = await run(tool('unshare'), ['--mount', '--propagation', 'private', '--', tool('sh'), '-c', 'mount -t sysfs sysfs /sys && cat /sys/class/net/"$1"/macvtap/*/dev', 'sh', l.tap]);
      const m = /^(\d+):(\d+)\s*$/.exec(out);
      if (m === null) throw new KataError('E_NETWORK', `macvtap ${l.tap}: cannot find its character device (sysfs said ${JSON.stringify(out.trim())})`);
      const node = path.join(dir, `${l.tap}.dev`);
      fs.rmSync(node, { force: true });
      await run(tool('mknod'), ['-m', '0600', node, 'c', m[1] ?? '', m[2] ?? '']);
      try {
        fds.push(fs.openSync(node, 'r+'));
      } finally {
        fs.rmSync(node, { force: true });
      }
    }
  } catch (e) {
    for (const fd of fds) fs.closeSync(fd);
    throw e;
  }
  return fds;
}

const GONE = /Cannot find device|Invalid handle|Cannot delete qdisc with handle of zero|No such file|does not exist|reassociate/;

/** Removes what `Attached` lists, in the netns given by path or (null) this process's own. */
export async function detach(owned: Attached, netnsPath: string | null): Promise<string[]> {
  if (owned.qdiscs.length + owned.devices.length === 0) return [];
  if (netnsPath !== null && !fs.existsSync(netnsPath)) return [];
  const inNs = (argv: string[]): [string, string[]] => (netnsPath === null ? [argv[0] ?? '', argv.slice(1)] : [tool('nsenter'), [`--net=${netnsPath}`, '--', ...argv]]);
  const cmds: string[][] = [
    ...owned.qdiscs.map((l) => [tool('tc'), 'qdisc', 'del', 'dev', l, 'ingress']),
    ...owned.devices.map((d) => [tool('ip'), 'link', 'del', 'dev', d]),
  ];
  const failed: string[] = [];
  for (const c of cmds) {
    const [file, args] = inNs(c);
    try {
      await run(file, args);
    } catch (e) {
      const m = e instanceof Error ? e.message : String(e);
      if (!GONE.test(m)) failed.push(m);
    }
  }
  return failed;
}
