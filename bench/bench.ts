/**
 * `npm run bench`: kata-runtime against runc, measured in the same run on the same bundle.
 * Prints medians (of --runs, default 5) and ratios. Not a test: nothing here asserts a time.
 *
 *   cold run    `run` of `true`: create + start + wait + delete, wall clock
 *   state       one `state` call on a running container
 *   memory      PSS of everything one idle container costs on the host (kata: monitor, QEMU,
 *               virtiofsd and their helpers; runc: the container's processes)
 *   stdout      MiB/s of 100 MiB of zeros (`head -c` of /dev/zero) piped to the caller
 *   net         on a test-made netns pair (bench/netpair.ts; the container's netns joined by
 *               path, a peer netns at the other end of a veth), busybox httpd in the container
 *               serving from a tmpfs and a small Node HTTP client in the peer: TCP throughput
 *               container -> peer as GETs of a 64 MiB file (median of --runs), and the latency of
 *               200 sequential GETs of a small page, each on a new connection (median and p90,
 *               after 5 to warm up). Every address is on the pair; nothing leaves the machine.
 *
 * `--only cold,state,memory,stdout,net` runs a subset.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDemoBundle } from '../src/oci/demo.js';
import { httpGetIn, inNetns, makeNetPair, removeNetPair, type NetPair } from './netpair.js';

const CLI = path.resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
const STDOUT_MIB = 100;
const NET_MIB = 64;
const HTTP_REQUESTS = 200;
const MEASURES = ['cold', 'state', 'memory', 'stdout', 'net'] as const;
type Measure = (typeof MEASURES)[number];

interface Runtime {
  name: string;
  argv(root: string, args: string[]): [string, string[]];
}

const kata: Runtime = { name: 'kata-runtime', argv: (root, args) => [process.execPath, [CLI, '--root', root, ...args]] };
const runc: Runtime = { name: 'runc', argv: (root, args) => ['runc', ['--root', root, ...args]] };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

function must(rt: Runtime, root: string, args: string[]): string {
  const [file, argv] = rt.argv(root, args);
  const r = spawnSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300000 });
  if (r.status !== 0) throw new Error(`${rt.name} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stdout;
}

function timed(rt: Runtime, root: string, args: string[]): number {
  const t = process.hrtime.bigint();
  must(rt, root, args);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Wall clock (ms) of `run` of `true`, the whole lifecycle including delete. */
function coldRun(rt: Runtime, root: string, bundle: string, i: number): number {
  const id = `bench-cold-${i}`;
  return timed(rt, root, ['run', '--bundle', bundle, id]);
}

/**
 * Starts the bundle's process detached as `id`. Its stderr is a file, not a pipe: the container
 * keeps the stdio it was given, so a pipe would never reach EOF and spawnSync would wait for its
 * timeout.
 */
function startIdle(rt: Runtime, root: string, bundle: string, id: string): void {
  const [file, argv] = rt.argv(root, ['run', '--detach', '--bundle', bundle, id]);
  const errFile = path.join(path.dirname(root), `${rt.name}-${id}.stderr`);
  const fd = fs.openSync(errFile, 'w');
  try {
    const r = spawnSync(file, argv, { stdio: ['ignore', 'ignore', fd], timeout: 300000 });
    if (r.status !== 0) throw new Error(`${rt.name} run -d failed (${r.status ?? r.signal}): ${fs.readFileSync(errFile, 'utf8').trim()}`);
  } finally {
    fs.closeSync(fd);
  }
}

function children(): Map<number, number[]> {
  const kids = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = kids.get(ppid) ?? [];
      list.push(Number(d));
      kids.set(ppid, list);
    } catch {
      // gone
    }
  }
  return kids;
}

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** PSS (MiB) of a process and all its descendants. */
function treePssMiB(pid: number): { mib: number; procs: number } {
  const kids = children();
  let kib = 0;
  let procs = 0;
  const todo = [pid];
  for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
    kib += pssKiB(p);
    procs++;
    todo.push(...(kids.get(p) ?? []));
  }
  return { mib: kib / 1024, procs };
}

function statePid(rt: Runtime, root: string, id: string): number {
  const s = JSON.parse(must(rt, root, ['state', id])) as { pid?: number; status?: string };
  if (s.status !== 'running' || typeof s.pid !== 'number') throw new Error(`${rt.name}: ${id} is not running`);
  return s.pid;
}

/** MiB/s of STDOUT_MIB of zeros through `run`, counted by the caller. */
function throughput(rt: Runtime, root: string, bundle: string, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const [file, argv] = rt.argv(root, ['run', '--bundle', bundle, id]);
    const t = process.hrtime.bigint();
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let n = 0;
    child.stdout.on('data', (d: Buffer) => (n += d.length));
    child.on('error', reject);
    child.on('close', (code) => {
      const s = Number(process.hrtime.bigint() - t) / 1e9;
      if (code !== 0 || n !== STDOUT_MIB * 1024 * 1024) reject(new Error(`${rt.name}: stdout run exited ${code} after ${n} bytes`));
      else resolve(STDOUT_MIB / s);
    });
  });
}

/**
 * An HTTP client run in the peer namespace: `warm` untimed GETs of `url`, then `n` timed ones, one
 * connection each (busybox httpd closes them); prints `[{"ms":T,"bytes":B},...]`: T from the
 * connect to the last byte, B the body's length. HTTP/1.0 on a raw socket reading into one reused
 * 4 MiB buffer (`onread`): Node's http module tops out near 200 MiB/s on these machines, a fifth
 * of what this does, and would measure itself instead of the network. Bounded: 60 s of silence
 * fails a request.
 */
const HTTP_CLIENT = `
const net = require('node:net');
const [host, port, file] = [process.argv[1], Number(process.argv[2]), process.argv[3]];
const n = Number(process.argv[4]); const warm = Number(process.argv[5]);
const buf = Buffer.alloc(4 << 20);
const get = () => new Promise((resolve, reject) => {
  const t = process.hrtime.bigint(); let total = 0; let head = -1; let status = '';
  const s = net.connect({ host, port, onread: { buffer: buf, callback: (k) => {
    if (head < 0) {
      status ||= buf.subarray(0, Math.min(k, 64)).toString('latin1').split('\\r\\n')[0];
      const i = buf.subarray(0, k).indexOf('\\r\\n\\r\\n');
      if (i >= 0) head = total + i + 4;
    }
    total += k;
  } } }, () => s.write('GET /' + file + ' HTTP/1.0\\r\\n\\r\\n'));
  s.setTimeout(60000, () => s.destroy(new Error('no data for 60 s')));
  s.on('error', reject);
  s.on('end', () => {
    if (!/^HTTP\\/1\\.[01] 200 /.test(status) || head < 0) return reject(new Error('bad answer: ' + status));
    resolve({ ms: Number(process.hrtime.bigint() - t) / 1e6, bytes: total - head });
  });
});
(async () => {
  for (let i = 0; i < warm; i++) await get();
  const out = [];
  for (let i = 0; i < n; i++) out.push(await get());
  process.stdout.write(JSON.stringify(out) + '\\n');
})().catch((e) => { process.stderr.write(e.message + '\\n'); process.exit(1); });
`;

/** Runs HTTP_CLIENT in the pair's peer namespace against port 80 of the container's address. */
function httpFromPeer(rt: Runtime, pair: NetPair, file: string, n: number, warm: number): { ms: number; bytes: number }[] {
  const argv = [process.execPath, '-e', HTTP_CLIENT, pair.v4.container, '80', file, String(n), String(warm)];
  const r = spawnSync(...inNetns(pair.peer, argv), { encoding: 'utf8', timeout: 600000 });
  if (r.status !== 0) throw new Error(`${rt.name}: HTTP client (GET /${file}) exited ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as { ms: number; bytes: number }[];
}

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs needs a positive integer');
  const onlyArg = process.argv.indexOf('--only');
  const only = onlyArg > 0 ? (process.argv[onlyArg + 1] ?? '').split(',') : [...MEASURES];
  const unknown = only.filter((m) => !(MEASURES as readonly string[]).includes(m));
  if (unknown.length > 0) throw new Error(`--only: unknown measure ${unknown.join(', ')} (known: ${MEASURES.join(', ')})`);
  const want = (m: Measure): boolean => only.includes(m);
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (runc and kata-runtime both do)');
  if (spawnSync('runc', ['--version']).status !== 0) throw new Error('runc is not installed (the setup command installs it)');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-bench-'));
  const roots = { kata: path.join(tmp, 'kata-root'), runc: path.join(tmp, 'runc-root') };
  const bundleTrue = makeDemoBundle(path.join(tmp, 'true'), ['true']);
  const bundleIdle = makeDemoBundle(path.join(tmp, 'idle'), ['sleep', '3600']);
  const bundleOut = makeDemoBundle(path.join(tmp, 'out'), ['head', '-c', String(STDOUT_MIB * 1024 * 1024), '/dev/zero']);
  const rows: [string, string, string, string][] = [];
  let pair: NetPair | undefined;
  const cleanup = (): void => {
    for (const [rt, root] of [[kata, roots.kata], [runc, roots.runc]] as const) {
      for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) {
        const [file, argv] = rt.argv(root, ['delete', '--force', id]);
        spawnSync(file, argv, { stdio: 'ignore', timeout: 60000 });
      }
    }
    if (pair !== undefined) removeNetPair(pair);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });

  try {
    console.log(`kata-runtime benchmark: ${runs} runs each, ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? ''}`);
    // One untimed run each warms the page cache (guest image, node modules, runc binary).
    coldRun(kata, roots.kata, bundleTrue, 0);
    coldRun(runc, roots.runc, bundleTrue, 0);

    if (want('cold')) {
      const cold = { kata: [] as number[], runc: [] as number[] };
      for (let i = 1; i <= runs; i++) {
        cold.kata.push(coldRun(kata, roots.kata, bundleTrue, i));
        cold.runc.push(coldRun(runc, roots.runc, bundleTrue, i));
      }
      const ck = median(cold.kata);
      const cr = median(cold.runc);
      rows.push(['cold run of `true`', fmtMs(ck), fmtMs(cr), `${(ck / cr).toFixed(1)}x  (goal: kata <= 1.5 s)`]);
    }

    if (want('state') || want('memory')) {
      startIdle(kata, roots.kata, bundleIdle, 'bench-idle');
      startIdle(runc, roots.runc, bundleIdle, 'bench-idle');
      if (want('state')) {
        const st = { kata: [] as number[], runc: [] as number[] };
        for (let i = 0; i < runs; i++) {
          st.kata.push(timed(kata, roots.kata, ['state', 'bench-idle']));
          st.runc.push(timed(runc, roots.runc, ['state', 'bench-idle']));
        }
        const sk = median(st.kata);
        const sr = median(st.runc);
        rows.push(['state', fmtMs(sk), fmtMs(sr), `${(sk / sr).toFixed(1)}x  (goal: kata <= 80 ms)`]);
      }

      if (want('memory')) {
        // Let the guest settle (boot-time page faults) before measuring what an idle container costs.
        await new Promise((r) => setTimeout(r, 3000));
        const km = treePssMiB(statePid(kata, roots.kata, 'bench-idle'));
        const rm = treePssMiB(statePid(runc, roots.runc, 'bench-idle'));
        rows.push([
          'memory of one idle container (PSS)',
          `${km.mib.toFixed(1)} MiB (${km.procs} procs)`,
          `${rm.mib.toFixed(1)} MiB (${rm.procs} procs)`,
          `${(km.mib / rm.mib).toFixed(0)}x  (goal: kata <= 100 MiB)`,
        ]);
      }
      must(kata, roots.kata, ['delete', '--force', 'bench-idle']);
      must(runc, roots.runc, ['delete', '--force', 'bench-idle']);
    }

    if (want('stdout')) {
      const tp = { kata: [] as number[], runc: [] as number[] };
      for (let i = 0; i < runs; i++) {
        tp.kata.push(await throughput(kata, roots.kata, bundleOut, `bench-out-${i}`));
        tp.runc.push(await throughput(runc, roots.runc, bundleOut, `bench-out-${i}`));
      }
      const tk = median(tp.kata);
      const tr = median(tp.runc);
      rows.push([`stdout throughput (${STDOUT_MIB} MiB)`, `${tk.toFixed(1)} MiB/s`, `${tr.toFixed(1)} MiB/s`, `${(tk / tr).toFixed(2)}x`]);
    }

    if (want('net')) {
      // One container per runtime, one after the other, in the same netns (joined by path). httpd
      // serves from a tmpfs: the transfer measures the network, not the root filesystem.
      const p = makeNetPair('bench', 50);
      pair = p;
      const bytes = NET_MIB * 1024 * 1024;
      const script = `echo kata-runtime bench > /www/index.html && head -c ${bytes} /dev/zero > /www/big && exec httpd -f -p 80 -h /www`;
      const bundleWeb = makeDemoBundle(path.join(tmp, 'web'), ['sh', '-c', script], (spec) => {
        const linux = spec['linux'] as { namespaces: { type: string; path?: string }[] };
        for (const n of linux.namespaces) if (n.type === 'network') n.path = `/run/netns/${p.container}`;
        (spec['mounts'] as unknown[]).push({ destination: '/www', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', `size=${NET_MIB + 16}m`] });
      });
      fs.mkdirSync(path.join(bundleWeb, 'rootfs', 'www'));
      const net = new Map<string, { tcp: number; http: { median: number; p90: number } }>();
      for (const [rt, root] of [[runc, roots.runc], [kata, roots.kata]] as const) {
        startIdle(rt, root, bundleWeb, 'bench-net');
        await httpGetIn(p.peer, `http://${p.v4.container}/index.html`); // httpd is up
        const big = httpFromPeer(rt, p, 'big', runs, 0);
        for (const b of big) if (b.bytes !== bytes) throw new Error(`${rt.name}: got ${b.bytes} of ${bytes} bytes`);
        const lat = httpFromPeer(rt, p, 'index.html', HTTP_REQUESTS, 5).map((x) => x.ms).sort((a, b) => a - b);
        must(rt, root, ['delete', '--force', 'bench-net']);
        net.set(rt.name, {
          tcp: median(big.map((b) => NET_MIB / (b.ms / 1000))),
          http: { median: median(lat), p90: lat[Math.ceil(lat.length * 0.9) - 1] ?? NaN },
        });
      }
      const nk = net.get(kata.name);
      const nr = net.get(runc.name);
      if (nk && nr) {
        rows.push([`TCP container -> peer (HTTP GET of ${NET_MIB} MiB)`, `${nk.tcp.toFixed(1)} MiB/s`, `${nr.tcp.toFixed(1)} MiB/s`, `${(nk.tcp / nr.tcp).toFixed(2)}x`]);
        rows.push([`HTTP GET peer -> container (${HTTP_REQUESTS} sequential)`, fmtMs(nk.http.median), fmtMs(nr.http.median), `${(nk.http.median / nr.http.median).toFixed(1)}x`]);
        rows.push(['  same, p90', fmtMs(nk.http.p90), fmtMs(nr.http.p90), `${(nk.http.p90 / nr.http.p90).toFixed(1)}x`]);
      }
    }
  } finally {
    // What was measured is printed even when a later measure failed.
    const head: [string, string, string, string] = ['measure (median)', 'kata-runtime', 'runc', 'kata / runc'];
    const all = [head, ...rows];
    const w = [0, 1, 2, 3].map((c) => Math.max(...all.map((r) => r[c]?.length ?? 0)));
    console.log('');
    for (const r of all) console.log(r.map((cell, c) => cell.padEnd(w[c] ?? 0)).join('  ').trimEnd());
    cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
