/**
 * Networking through the engines (issue 5): the engine builds the network on its side (bridge,
 * veth, IPAM, port publishing with iptables) exactly as for runc, and kata-runtime must carry the
 * container's interface into the VM without the engine noticing.
 *
 *   podman (CNI backend: containernetworking-plugins bridge + portmap) with a bridge network the
 *   test creates (`podman network create --subnet`): a busybox httpd in the container, published
 *   with `-p 127.0.0.1:PORT:80`, answers a request to 127.0.0.1:PORT.
 *   docker with a user-defined bridge (`docker network create --subnet`), dockerd with iptables,
 *   ip-forward and ip-masq on: two containers on it ping each other by address.
 *
 * Each engine runs in a network namespace the suite made (podman under `nsenter --net`, dockerd
 * started by `scripts/engines.sh start DIR netns NAME`): what the engines do to "the host's"
 * network (bridges, iptables chains, ip_forward=1, route_localnet) happens there and goes with it.
 * The machine's own tables and sysctls are never touched (other people's work runs on it), and
 * nothing routed there can leave the machine. So "the host" below is that namespace: the request
 * to 127.0.0.1:PORT is made from it.
 *
 * KATA_ENGINE_RUNTIME=runc runs the same cases against runc (harness.ts). After each case: the
 * harness's no-leftovers check, and no tap (tapN_kata), no ingress qdisc or tc filter in the
 * engine's namespace, and `ip netns list` as before the case.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGetIn, inNetns, ip, kataTaps, netnsNames, tcIngressAndFilters } from '../../bench/netpair.js';
import {
  busyboxTarball,
  DOCKER_BIN,
  enginesSh,
  ENGINES_SH,
  expectKernelInside,
  expectNoLeftovers,
  kernelLine,
  mountsUnder,
  ok,
  podmanSetup,
  requireEngine,
  runtimeChoice,
  sh,
  show,
  suiteDir,
  waitFor,
  type Res,
} from './harness.js';

const RUNTIME = runtimeChoice();
const PORT = 18080;

let dir = '';
let tarball = '';

beforeAll(() => {
  requireEngine(['podman', 'conmon', 'dockerd', 'containerd', 'ctr', DOCKER_BIN, 'nsenter', 'ip', 'tc', '/usr/lib/cni/bridge', '/usr/lib/cni/portmap']);
  dir = suiteDir('net');
  tarball = busyboxTarball(dir);
});

afterAll(() => {
  if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
});

/** A network namespace standing for an engine's host: loopback up, nothing else. */
function engineNetns(name: string): string {
  const ns = `kt-${name}-${process.pid}`;
  ip(['netns', 'add', ns]);
  ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

function removeNetns(ns: string): void {
  if (fs.existsSync(`/run/netns/${ns}`)) ip(['netns', 'del', ns]);
}

/** What the runtime may leave in the engine's namespace or on the host: taps, tc state, netns. */
function expectNoNetworkLeftovers(ns: string, netnsBefore: string[]): void {
  expect(kataTaps(ns), `taps in ${ns}`).toEqual([]);
  expect(kataTaps(), 'taps in the host namespace').toEqual([]);
  expect(tcIngressAndFilters(ns), `ingress qdiscs or tc filters in ${ns}`).toEqual([]);
  expect(netnsNames(), '`ip netns list` changed').toEqual(netnsBefore);
}

/** Waits for `re` in what `logs()` returns; fails early when the container is gone. */
async function logsMatch(what: string, logs: () => Promise<Res>, re: RegExp): Promise<string> {
  let last = '';
  await waitFor(`${String(re)} in the logs of ${what}`, async () => {
    const r = await logs();
    last = r.stdout + r.stderr;
    return re.test(last) ? true : undefined;
  }, 180000).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\nlogs: ${last}`);
  });
  return last;
}

describe(`podman --runtime ${RUNTIME === 'kata' ? 'kata' : 'runc'}: a bridge network and a published port`, () => {
  let ns = '';
  let env: NodeJS.ProcessEnv = {};
  let base: string[] = [];
  const net = `kt-net-${process.pid}`;
  const podman = (args: string[], timeoutMs = 240000): Promise<Res> => sh([...base, ...args], { env, timeoutMs });

  beforeAll(async () => {
    ns = engineNetns('podman');
    const pdir = path.join(dir, 'podman');
    fs.mkdirSync(path.join(pdir, 'cni'), { recursive: true });
    // As podman.test.ts, plus the CNI backend (containernetworking-plugins; netavark is not
    // packaged here) with the network definitions kept in the suite's folder.
    const setup = podmanSetup(pdir, RUNTIME, ['[network]', 'network_backend = "cni"', `network_config_dir = "${path.join(pdir, 'cni')}"`]);
    env = setup.env;
    const [nsenter, nsArgs] = inNetns(ns, []);
    base = [nsenter, ...nsArgs, ...setup.base];
    await ok([...base, 'import', tarball, 'localhost/kbusybox:latest'], { env });
    await ok([...base, 'network', 'create', '--subnet', '10.213.101.0/24', net], { env });
  });

  afterAll(async () => {
    try {
      if (base.length > 0) {
        await podman(['rm', '-a', '-f', '--time', '0']);
        await podman(['network', 'rm', '-f', net]);
      }
    } finally {
      // host-local IPAM keeps its leases on the host, whatever the config dir
      fs.rmSync(`/var/lib/cni/networks/${net}`, { recursive: true, force: true });
      await enginesSh('stop', path.join(dir, 'podman'));
      if (ns !== '') removeNetns(ns);
    }
  });

  it('-p 127.0.0.1:PORT:80: busybox httpd in the container answers on the host\'s loopback', async () => {
    const netnsBefore = netnsNames();
    const baselineMounts = mountsUnder(dir);
    const c = `kpo-web-${process.pid}`;
    const script = 'uname -r; mkdir -p /www; echo served-through-portmap > /www/index.html; echo ready; exec httpd -f -p 80 -h /www';
    const r = await podman(['run', '-d', '--name', c, '--network', net, '-p', `127.0.0.1:${PORT}:80`, 'localhost/kbusybox:latest', 'sh', '-c', script]);
    expect(r.code, show(r)).toBe(0);
    const id = r.stdout.trim();
    const logs = await logsMatch(c, () => podman(['logs', c], 60000), /^ready$/m);
    expectKernelInside(kernelLine(logs), `(${c})`);
    const addr = await podman(['exec', c, 'ip', '-o', 'addr', 'show', 'eth0']);
    expect(addr.stdout, show(addr)).toMatch(/inet 10\.213\.101\.\d+\/24/);

    expect(await httpGetIn(ns, `http://127.0.0.1:${PORT}/`)).toBe('served-through-portmap\n');

    const f = await podman(['rm', '-f', '--time', '0', c]);
    expect(f.code, show(f)).toBe(0);
    const listed = async (): Promise<string[]> => (await podman(['ps', '-a', '-q'], 60000)).stdout.split('\n').filter((l) => l.trim() !== '');
    await expectNoLeftovers({ id, stateDir: path.join(RUNTIME === 'kata' ? '/run/kata' : '/run/runc', id), dir, baselineMounts, engineList: listed });
    expectNoNetworkLeftovers(ns, netnsBefore);
  });
});

describe(`docker --runtime ${RUNTIME}: a user-defined bridge`, () => {
  let ns = '';
  const ddir = (): string => path.join(dir, 'docker');
  const net = `kt-net-${process.pid}`;
  const docker = (args: string[], timeoutMs = 240000): Promise<Res> => sh([DOCKER_BIN, '-H', `unix://${path.join(ddir(), 'docker', 'docker.sock')}`, ...args], { timeoutMs });

  beforeAll(async () => {
    ns = engineNetns('docker');
    await ok(['bash', ENGINES_SH, 'start', ddir(), 'netns', ns], { timeoutMs: 240000 });
    const imp = await docker(['import', tarball, 'kbusybox:latest']);
    expect(imp.code, show(imp)).toBe(0);
    const n = await docker(['network', 'create', '--subnet', '10.213.201.0/24', net]);
    expect(n.code, show(n)).toBe(0);
  });

  afterAll(async () => {
    try {
      await docker(['network', 'rm', net]).catch(() => undefined);
    } finally {
      await enginesSh('stop', ddir());
      if (ns !== '') removeNetns(ns);
    }
  });

  it('two containers on the bridge ping each other', async () => {
    const netnsBefore = netnsNames();
    const baselineMounts = mountsUnder(dir);
    const names = ['a', 'b'].map((x) => `kdo-${x}-${process.pid}`);
    const ids: string[] = [];
    try {
      // both VMs boot at once
      const runs = await Promise.all(
        names.map((c) => docker(['run', '-d', '--name', c, '--runtime', RUNTIME, '--network', net, 'kbusybox:latest', 'sh', '-c', 'uname -r; echo ready; exec sleep 100000'])),
      );
      for (const r of runs) {
        expect(r.code, show(r)).toBe(0);
        ids.push(r.stdout.trim());
      }
      const addrs: string[] = [];
      for (const c of names) {
        const logs = await logsMatch(c, () => docker(['logs', c], 60000), /^ready$/m);
        expectKernelInside(kernelLine(logs), `(${c})`);
        const a = await docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, c]);
        expect(a.stdout.trim(), show(a)).toMatch(/^10\.213\.201\.\d+$/);
        addrs.push(a.stdout.trim());
      }
      for (const [from, to] of [[0, 1], [1, 0]] as const) {
        const p = await docker(['exec', names[from] ?? '', 'ping', '-c', '2', '-w', '30', addrs[to] ?? '']);
        expect(p.code, show(p)).toBe(0);
        expect(p.stdout, show(p)).toMatch(/2 packets received/);
      }
    } finally {
      for (const c of names) await docker(['rm', '-f', c]);
    }
    const listed = async (): Promise<string[]> => (await docker(['ps', '-a', '-q'], 60000)).stdout.split('\n').filter((l) => l.trim() !== '');
    for (const id of ids) {
      await expectNoLeftovers({ id, stateDir: path.join(ddir(), 'docker', 'exec', 'runtime-runc', 'moby', id), dir, baselineMounts, engineList: listed });
    }
    expectNoNetworkLeftovers(ns, netnsBefore);
  });
});
