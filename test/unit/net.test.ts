import { describe, expect, it } from 'vitest';
import { buildPlan, netLinks, planInterfaces, planRoutes } from '../../src/net/plan.js';
import { tcConnectBatch } from '../../src/net/host.js';
import { sandboxFor } from '../../src/net/sandbox.js';
import { defaultSpec } from '../../src/oci/default-spec.js';
import type { Spec } from '../../src/oci/spec.js';

// `ip -json addr show` of a podman-like netns, trimmed (iproute2 6.1).
const ADDRS = [
  { ifindex: 1, ifname: 'lo', mtu: 65536, link_type: 'loopback', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }] },
  {
    ifindex: 2,
    link_index: 7,
    ifname: 'eth0',
    mtu: 1450,
    link_type: 'ether',
    address: '8A:6E:55:7C:79:8F',
    addr_info: [
      { family: 'inet', local: '10.88.0.5', prefixlen: 16, scope: 'global' },
      { family: 'inet6', local: 'fd00:88::5', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: 'fe80::886e:55ff:fe7c:798f', prefixlen: 64, scope: 'link' },
    ],
  },
  // only link-local: no NIC
  { ifindex: 3, ifname: 'eth1', mtu: 1500, link_type: 'ether', address: '32:be:51:46:08:01', addr_info: [{ family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }] },
  // our own tap from an earlier run: never mirrored
  { ifindex: 4, ifname: 'tap0_kata', mtu: 1500, link_type: 'ether', address: '32:be:51:46:08:02', addr_info: [{ family: 'inet', local: '10.1.1.1', prefixlen: 24, scope: 'global' }] },
  // a tunnel, not ethernet
  { ifindex: 5, ifname: 'wg0', mtu: 1420, link_type: 'none', addr_info: [{ family: 'inet', local: '10.2.2.2', prefixlen: 24, scope: 'global' }] },
];
const ROUTES4 = [
  { dst: 'default', gateway: '10.88.0.1', dev: 'eth0', flags: [] },
  { dst: '10.88.0.0/16', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '10.88.0.5', flags: [] },
  { dst: '10.50.0.0/16', gateway: '10.88.0.7', dev: 'eth0', prefsrc: '10.88.0.5', flags: [] },
  { dst: '10.60.0.9', dev: 'eth0', scope: 'link', flags: [] },
  { dst: '10.70.0.0/16', dev: 'wg0', flags: [] },
  { type: 'blackhole', dst: '10.80.0.0/16', flags: [] },
];
const ROUTES6 = [
  { dst: 'fd00:88::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [] },
  { dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [] },
  { dst: 'default', gateway: 'fd00:88::1', dev: 'eth0', metric: 1024, flags: [] },
];

describe('network plan', () => {
  it('mirrors ethernet interfaces with a non-link-local address, lower-casing MACs', () => {
    const interfaces = planInterfaces(ADDRS);
    expect(netLinks(interfaces)).toEqual([{ link: 'eth0', tap: 'tap0_kata', mac: '8a:6e:55:7c:79:8f', mtu: 1450 }]);
    expect(interfaces).toEqual([
      {
        name: 'eth0',
        mac: '8a:6e:55:7c:79:8f',
        mtu: 1450,
        addresses: [
          { family: 'inet', address: '10.88.0.5', prefixLen: 16 },
          { family: 'inet6', address: 'fd00:88::5', prefixLen: 64 },
        ],
      },
    ]);
  });

  it('keeps routes through mirrored interfaces, minus kernel, link-local and non-unicast ones, direct first', () => {
    const plan = buildPlan(ADDRS, ROUTES4, ROUTES6);
    expect(plan.routes).toEqual([
      { family: 'inet', dest: '10.60.0.9/32', device: 'eth0', scope: 'link' },
      { family: 'inet', dest: 'default', gateway: '10.88.0.1', device: 'eth0' },
      { family: 'inet', dest: '10.50.0.0/16', gateway: '10.88.0.7', device: 'eth0', source: '10.88.0.5' },
      { family: 'inet6', dest: 'default', gateway: 'fd00:88::1', device: 'eth0', metric: 1024 },
    ]);
  });

  it('gives a netns with only loopback an empty plan', () => {
    expect(buildPlan([ADDRS[0]], [], [])).toEqual({ links: [], interfaces: [], routes: [] });
  });

  it('refuses output it cannot read, and more NICs than a VM takes', () => {
    expect(() => planInterfaces({})).toThrow(/cannot read the network namespace/);
    expect(() => planRoutes('inet', [1], new Set())).toThrow(/a route is not an object/);
    const many = Array.from({ length: 9 }, (_, i) => ({ ifname: `e${i}`, mtu: 1500, link_type: 'ether', address: `02:00:00:00:00:0${i}`, addr_info: [{ family: 'inet', local: `10.0.${i}.2`, prefixlen: 24, scope: 'global' }] }));
    expect(() => planInterfaces(many)).toThrow(/9 interfaces with addresses; a VM takes at most 8/);
  });

  it('joins link and tap with mirred redirects both ways', () => {
    expect(tcConnectBatch({ link: 'eth0', tap: 'tap0_kata', mac: '02:00:00:00:00:01', mtu: 1500 }).split('\n')).toEqual([
      'qdisc add dev tap0_kata ingress',
      'filter add dev eth0 parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev tap0_kata',
      'filter add dev tap0_kata parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev eth0',
      '',
    ]);
  });
});

describe('network sandbox', () => {
  const spec = (edit: (s: Spec) => void): Spec => {
    const s = defaultSpec(['true']) as unknown as Spec;
    edit(s);
    return s;
  };
  const cfg = { hostNetwork: 'refuse' as const, internetworkingModel: 'tcfilter' as const };
  const withoutNet = (s: Spec): void => {
    if (s.linux?.namespaces) s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== 'network');
  };
  const withPath = (p: string) => (s: Spec): void => {
    const n = s.linux?.namespaces?.find((x) => x.type === 'network');
    if (n) n.path = p;
  };

  it('starts the monitor in a new netns for a network entry without a path', () => {
    const sb = sandboxFor(spec(() => undefined), cfg);
    expect(sb.wrapper.slice(1)).toEqual(['--net', '--']);
    expect(sb.network).toEqual({ mirror: true, netns: null, model: 'tcfilter' });
  });

  it('joins a netns path, after checking it is one', () => {
    const sb = sandboxFor(spec(withPath('/proc/self/ns/net')), cfg);
    expect(sb.wrapper.slice(1)).toEqual(['--net=/proc/self/ns/net', '--']);
    expect(sb.network).toEqual({ mirror: true, netns: '/proc/self/ns/net', model: 'tcfilter' });
    expect(() => sandboxFor(spec(withPath('/nonexistent/netns')), cfg)).toThrow('linux.namespaces: network namespace /nonexistent/netns: no such file or directory');
    expect(() => sandboxFor(spec(withPath('/etc/hostname')), cfg)).toThrow('linux.namespaces: /etc/hostname is not a network namespace');
  });

  it('refuses the host network unless configured to isolate; mirrors nothing with model none; passes the model on', () => {
    expect(() => sandboxFor(spec(withoutNet), cfg)).toThrow(/asks for the host's network, which a VM cannot share/);
    expect(sandboxFor(spec(withoutNet), { ...cfg, hostNetwork: 'isolated' })).toEqual({ wrapper: [], network: { mirror: false, netns: null, model: 'tcfilter' } });
    expect(sandboxFor(spec(() => undefined), { ...cfg, internetworkingModel: 'none' }).network.mirror).toBe(false);
    expect(sandboxFor(spec(() => undefined), { ...cfg, internetworkingModel: 'macvtap' }).network).toEqual({ mirror: true, netns: null, model: 'macvtap' });
  });
});
