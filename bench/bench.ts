/**
 * `npm run bench`: kata-runtime against runc, measured in the same run on the same bundle.
 * Prints medians (of --runs, default 5) and ratios. Not a test: nothing here asserts a time.
 *
 *   cold run    `run` of `true`: create + start + wait + delete, wall clock
 *   state       one `state` call on a running container
 *   memory      PSS of everything one idle container costs on the host (kata: monitor, QEMU,
 *               virtiofsd and their helpers; runc: the container's processes)
 *   stdout      MiB/s of 100 MiB of zeros (`head -c` of /dev/zero) piped to the caller
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDemoBundle } from '../src/oci/demo.js';

const CLI = path.resolve(import.meta.dirname, '..', '..', 'bin', 'run.js');
const STDOUT_MIB = 100;

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

/** Starts `sleep 3600` detached and returns its id. */
function startIdle(rt: Runtime, root: string, bundle: string, id: string): void {
  const [file, argv] = rt.argv(root, ['run', '--detach', '--bundle', bundle, id]);
  const r = spawnSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: 300000 });
  if (r.status !== 0) throw new Error(`${rt.name} run -d failed: ${r.stderr.trim()}`);
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

function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs needs a positive integer');
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (runc and kata-runtime both do)');
  if (spawnSync('runc', ['--version']).status !== 0) throw new Error('runc is not installed (the setup command installs it)');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-bench-'));
  const roots = { kata: path.join(tmp, 'kata-root'), runc: path.join(tmp, 'runc-root') };
  const bundleTrue = makeDemoBundle(path.join(tmp, 'true'), ['true']);
  const bundleIdle = makeDemoBundle(path.join(tmp, 'idle'), ['sleep', '3600']);
  const bundleOut = makeDemoBundle(path.join(tmp, 'out'), ['head', '-c', String(STDOUT_MIB * 1024 * 1024), '/dev/zero']);
  const rows: [string, string, string, string][] = [];
  const cleanup = (): void => {
    for (const [rt, root] of [[kata, roots.kata], [runc, roots.runc]] as const) {
      for (const id of fs.existsSync(root) ? fs.readdirSync(root) : []) {
        const [file, argv] = rt.argv(root, ['delete', '--force', id]);
        spawnSync(file, argv, { stdio: 'ignore', timeout: 60000 });
      }
    }
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

    const cold = { kata: [] as number[], runc: [] as number[] };
    for (let i = 1; i <= runs; i++) {
      cold.kata.push(coldRun(kata, roots.kata, bundleTrue, i));
      cold.runc.push(coldRun(runc, roots.runc, bundleTrue, i));
    }
    const ck = median(cold.kata);
    const cr = median(cold.runc);
    rows.push(['cold run of `true`', fmtMs(ck), fmtMs(cr), `${(ck / cr).toFixed(1)}x  (goal: kata <= 1.5 s)`]);

    startIdle(kata, roots.kata, bundleIdle, 'bench-idle');
    startIdle(runc, roots.runc, bundleIdle, 'bench-idle');
    const st = { kata: [] as number[], runc: [] as number[] };
    for (let i = 0; i < runs; i++) {
      st.kata.push(timed(kata, roots.kata, ['state', 'bench-idle']));
      st.runc.push(timed(runc, roots.runc, ['state', 'bench-idle']));
    }
    const sk = median(st.kata);
    const sr = median(st.runc);
    rows.push(['state', fmtMs(sk), fmtMs(sr), `${(sk / sr).toFixed(1)}x  (goal: kata <= 80 ms)`]);

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
    must(kata, roots.kata, ['delete', '--force', 'bench-idle']);
    must(runc, roots.runc, ['delete', '--force', 'bench-idle']);

    const tp = { kata: [] as number[], runc: [] as number[] };
    for (let i = 0; i < runs; i++) {
      tp.kata.push(await throughput(kata, roots.kata, bundleOut, `bench-out-${i}`));
      tp.runc.push(await throughput(runc, roots.runc, bundleOut, `bench-out-${i}`));
    }
    const tk = median(tp.kata);
    const tr = median(tp.runc);
    rows.push([`stdout throughput (${STDOUT_MIB} MiB)`, `${tk.toFixed(1)} MiB/s`, `${tr.toFixed(1)} MiB/s`, `${(tk / tr).toFixed(2)}x`]);

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
