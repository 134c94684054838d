/**
 * Two network namespaces joined by a veth pair, made and removed by the network tests and the
 * benchmark (issue 5). One side is the container's namespace (its `linux.namespaces` network
 * `path`), the other a peer that stands for "another host". Every address is on this pair:
 *
 *   container netns  eth0  10.213.N.2/24  fd00:213:N::2/64  default routes via the peer
 *   peer netns       eth0  10.213.N.1/24  fd00:213:N::1/64
 *
 * Both ends are created directly inside their namespaces, so nothing, not even for a moment, has
 * a name in the host's namespace; removing the namespaces removes the pair. Nothing here can reach
 * another machine: neither namespace has a route out of the pair.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export interface NetPair {
  /** Names under /run/netns. */
  readonly container: string;
  readonly peer: string;
  /** The veth's name on both sides. */
  readonly ifname: string;
  readonly mtu: number;
  readonly v4: { readonly container: string; readonly peer: string; readonly prefix: number };
  readonly v6: { readonly container: string; readonly peer: string; readonly prefix: number };
}

/** `ip ARGS`; throws with ip's stderr when it fails. */
export function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** `tc ARGS` inside network namespace `ns` (undefined: this process's); tc's stdout, or throws. */
function tc(ns: string | undefined, args: string[]): string {
  const argv = [...(ns === undefined ? [] : ['-n', ns]), ...args];
  const r = spawnSync('tc', argv, { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`tc ${argv.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The interface names in `ns` (undefined: this process's namespace). */
export function linkNames(ns?: string): string[] {
  const out = ip([...(ns === undefined ? [] : ['-n', ns]), '-o', 'link', 'show']);
  return [...out.matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1] ?? '');
}

/** Interfaces named like kata-runtime's taps (tap0_kata, tap1_kata, ...) in `ns`. */
export function kataTaps(ns?: string): string[] {
  return linkNames(ns).filter((n) => /^tap\d+_kata$/.test(n));
}

/**
 * The ingress qdiscs (ffff:) and the tc filters (either direction) on `dev`, or on every interface
 * of `ns` (undefined: this process's namespace), one line each, prefixed with the interface.
 */
export function tcIngressAndFilters(ns?: string, dev?: string): string[] {
  const out: string[] = [];
  for (const d of dev === undefined ? linkNames(ns) : [dev]) {
    out.push(...tc(ns, ['qdisc', 'show', 'dev', d]).split('\n').filter((l) => /ingress|ffff:/.test(l)).map((l) => `${d}: ${l}`));
    for (const dir of ['ingress', 'egress']) {
      out.push(...tc(ns, ['filter', 'show', 'dev', d, dir]).split('\n').filter((l) => l.trim() !== '').map((l) => `${d} ${dir} filter: ${l}`));
    }
  }
  return out;
}

/** argv that runs `argv` inside network namespace `ns` (only the network namespace changes). */
export function inNetns(ns: string, argv: string[]): [string, string[]] {
  return ['nsenter', [`--net=/run/netns/${ns}`, ...argv]];
}

/**
 * An HTTP GET of `url` from namespace `ns` with Node's client (the host's static busybox wget
 * crashes outside its own rootfs): the body of a 200 answer. Retried once a second for up to
 * `tries` attempts while the server comes up; then throws with the last error.
 */
export async function httpGetIn(ns: string, url: string, tries = 30): Promise<string> {
  const script = [
    "require('node:http').get(process.argv[1], { timeout: 5000 }, (r) => {",
    "  let b = ''; r.setEncoding('utf8'); r.on('data', (d) => (b += d));",
    "  r.on('end', () => { process.stdout.write(b); process.exit(r.statusCode === 200 ? 0 : 2); });",
    "}).on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => { console.error(e.message); process.exit(1); });",
  ].join('\n');
  let last = '';
  for (let i = 0; i < tries; i++) {
    const r = spawnSync(...inNetns(ns, [process.execPath, '-e', script, url]), { encoding: 'utf8', timeout: 20000 });
    if (r.status === 0) return r.stdout;
    last = `exit ${r.status ?? r.signal}: ${r.stderr.trim()}`;
    await new Promise((res) => setTimeout(res, 1000));
  }
  throw new Error(`GET ${url} from ${ns} failed ${tries} times; last: ${last}`);
}

/** The names `ip netns list` shows. */
export function netnsNames(): string[] {
  return ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

/**
 * Makes the pair for subnet number `n` (1-254), with namespaces named after `tag` and this
 * process's pid so that concurrent runs never share one. Half-made pairs are removed on failure.
 */
export function makeNetPair(tag: string, n: number, mtu = 1500): NetPair {
  if (!Number.isInteger(n) || n < 1 || n > 254) throw new Error(`subnet number ${n}: must be 1-254`);
  const hex = n.toString(16);
  const pair: NetPair = {
    container: `kt-${tag}-${process.pid}-c`,
    peer: `kt-${tag}-${process.pid}-p`,
    ifname: 'eth0',
    mtu,
    v4: { container: `10.213.${n}.2`, peer: `10.213.${n}.1`, prefix: 24 },
    v6: { container: `fd00:213:${hex}::2`, peer: `fd00:213:${hex}::1`, prefix: 64 },
  };
  try {
    for (const ns of [pair.container, pair.peer]) {
      ip(['netns', 'add', ns]);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const m = String(mtu);
    ip(['link', 'add', pair.ifname, 'netns', pair.container, 'mtu', m, 'type', 'veth', 'peer', 'name', pair.ifname, 'netns', pair.peer, 'mtu', m]);
    for (const [ns, side] of [[pair.container, 'container'], [pair.peer, 'peer']] as const) {
      ip(['-n', ns, 'addr', 'add', `${pair.v4[side]}/${pair.v4.prefix}`, 'dev', pair.ifname]);
      // nodad: the address is usable at once (no duplicate address detection on a private pair)
      ip(['-n', ns, 'addr', 'add', `${pair.v6[side]}/${pair.v6.prefix}`, 'dev', pair.ifname, 'nodad']);
      ip(['-n', ns, 'link', 'set', pair.ifname, 'up']);
    }
    ip(['-n', pair.container, 'route', 'add', 'default', 'via', pair.v4.peer]);
    ip(['-n', pair.container, '-6', 'route', 'add', 'default', 'via', pair.v6.peer]);
  } catch (e) {
    removeNetPair(pair);
    throw e;
  }
  return pair;
}

/** The MAC address of the container side's veth. */
export function containerMac(pair: NetPair): string {
  const m = /link\/ether ([0-9a-f:]{17})/.exec(ip(['-n', pair.container, 'link', 'show', pair.ifname]));
  if (!m?.[1]) throw new Error(`no MAC on ${pair.ifname} in ${pair.container}`);
  return m[1];
}

/**
 * Removes both namespaces (and so the veth pair). Processes still inside them were started by
 * the caller (peer servers, a container that failed half-way): they are SIGKILLed by pid first, or
 * the namespace would outlive its name. Missing namespaces are fine: removal is idempotent.
 */
export function removeNetPair(pair: NetPair): void {
  for (const ns of [pair.container, pair.peer]) {
    if (!fs.existsSync(`/run/netns/${ns}`)) continue;
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter((p) => /^[0-9]+$/.test(p));
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}
