/**
 * What the VM's network looks like, derived from the container's network namespace on the host:
 * pure functions over `ip -json` output, so they are unit-tested with captured fixtures.
 *
 * Every interface of the netns that carries an address (lo and our own taps excepted) becomes a
 * virtio-net NIC with the same MAC; its addresses and the routes through it are replayed in the
 * guest by the agent (the `network` request of docs/protocol.md).
 */
import { KataError } from '../errors.js';
import { isRecord } from '../util/json.js';

export type Family = 'inet' | 'inet6';

export interface GuestAddress {
  family: Family;
  address: string;
  prefixLen: number;
}

/** One interface as the agent configures it (the wire format of the `network` request). */
export interface GuestInterface {
  name: string;
  mac: string;
  mtu: number;
  addresses: GuestAddress[];
}

export interface GuestRoute {
  family: Family;
  /** "default" or address/prefix. */
  dest: string;
  gateway?: string;
  /** The name of one of the interfaces. */
  device?: string;
  source?: string;
  scope?: 'universe' | 'link' | 'host';
  metric?: number;
}

/** A host interface and the tap that stands for it, joined by tc mirred filters. */
export interface NetLink {
  /** The interface in the container's netns (usually a veth), e.g. eth0. */
  link: string;
  /** Our tap next to it, e.g. tap0_kata; QEMU opens it. */
  tap: string;
  mac: string;
  mtu: number;
}

export interface NetPlan {
  links: NetLink[];
  interfaces: GuestInterface[];
  routes: GuestRoute[];
}

export const EMPTY_PLAN: NetPlan = { links: [], interfaces: [], routes: [] };

/** Our taps' names: never mirrored themselves (a second scan after a crash must not pick them up). */
export const TAP_PATTERN = /^tap\d+_kata$/;
export function tapName(i: number): string {
  return `tap${i}_kata`;
}

/** At most this many NICs: microvm has a fixed number of virtio-mmio transports. */
export const MAX_INTERFACES = 8;
const MAX_ROUTES = 256;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function bad(what: string): KataError {
  return new KataError('E_NETWORK', `cannot read the network namespace: ${what}`);
}

/** Interfaces worth a NIC: ethernet-like, with at least one address beyond link-local. */
export function planInterfaces(addrJson: unknown): GuestInterface[] {
  if (!Array.isArray(addrJson)) throw bad('`ip -json addr` did not print an array');
  const interfaces: GuestInterface[] = [];
  for (const l of addrJson) {
    if (!isRecord(l)) throw bad('an interface is not an object');
    const name = str(l['ifname']);
    const mac = str(l['address']);
    const mtu = l['mtu'];
    if (name === undefined || typeof mtu !== 'number') throw bad('an interface without a name or MTU');
    if (l['link_type'] !== 'ether' || TAP_PATTERN.test(name) || mac === undefined) continue;
    const infos = Array.isArray(l['addr_info']) ? l['addr_info'] : [];
    const addresses: GuestAddress[] = [];
    for (const a of infos) {
      if (!isRecord(a)) continue;
      const family = a['family'];
      const local = str(a['local']);
      const prefixLen = a['prefixlen'];
      if ((family !== 'inet' && family !== 'inet6') || local === undefined || typeof prefixLen !== 'number') continue;
      // The guest makes its own link-local address from the same MAC; host-scope ones stay here.
      if (a['scope'] === 'link' || a['scope'] === 'host') continue;
      addresses.push({ family, address: local, prefixLen });
    }
    if (addresses.length === 0) continue;
    interfaces.push({ name, mac: mac.toLowerCase(), mtu, addresses });
  }
  if (interfaces.length > MAX_INTERFACES) {
    throw new KataError('E_UNSUPPORTED', `the network namespace has ${interfaces.length} interfaces with addresses; a VM takes at most ${MAX_INTERFACES}`);
  }
  return interfaces;
}

/** Each mirrored interface's host side: the interface itself and the tap (tapN_kata) beside it. */
export function netLinks(interfaces: readonly GuestInterface[]): NetLink[] {
  return interfaces.map((i, k) => ({ link: i.name, tap: tapName(k), mac: i.mac, mtu: i.mtu }));
}

/**
 * The routes to replay: those of the main table through mirrored interfaces, minus what the guest
 * kernel makes by itself (prefix routes of its addresses, link-local and multicast).
 */
export function planRoutes(family: Family, routeJson: unknown, devices: ReadonlySet<string>): GuestRoute[] {
  if (!Array.isArray(routeJson)) throw bad('`ip -json route` did not print an array');
  const out: GuestRoute[] = [];
  for (const r of routeJson) {
    if (!isRecord(r)) throw bad('a route is not an object');
    const dst = str(r['dst']);
    if (dst === undefined || r['protocol'] === 'kernel') continue;
    const type = str(r['type']);
    if (type !== undefined && type !== 'unicast') continue;
    const dev = str(r['dev']);
    if (dev !== undefined && !devices.has(dev)) continue;
    const gateway = str(r['gateway']);
    if (dev === undefined && gateway === undefined) continue;
    if (family === 'inet6' && /^f[ef][0-9a-f]{2}:/i.test(dst)) continue;
    const dest = dst === 'default' || dst.includes('/') ? dst : `${dst}/${family === 'inet' ? 32 : 128}`;
    const route: GuestRoute = { family, dest };
    if (gateway !== undefined) route.gateway = gateway;
    if (dev !== undefined) route.device = dev;
    const src = str(r['prefsrc']);
    if (src !== undefined) route.source = src;
    const scope = r['scope'];
    if (scope === 'link' || scope === 'host') route.scope = scope;
    if (typeof r['metric'] === 'number') route.metric = r['metric'];
    out.push(route);
  }
  return out;
}

/** Routes without a gateway first: a gateway must be reachable when its route is added. */
export function orderRoutes(routes: GuestRoute[]): GuestRoute[] {
  const direct = routes.filter((r) => r.gateway === undefined);
  const via = routes.filter((r) => r.gateway !== undefined);
  const all = [...direct, ...via];
  if (all.length > MAX_ROUTES) throw new KataError('E_UNSUPPORTED', `the network namespace has ${all.length} routes; the guest takes at most ${MAX_ROUTES}`);
  return all;
}

export function buildPlan(addrJson: unknown, routes4: unknown, routes6: unknown): NetPlan {
  const interfaces = planInterfaces(addrJson);
  const devices = new Set(interfaces.map((i) => i.name));
  const routes = orderRoutes([...planRoutes('inet', routes4, devices), ...planRoutes('inet6', routes6, devices)]);
  return { links: netLinks(interfaces), interfaces, routes };
}
