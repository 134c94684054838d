/**
 * Soak (issue 10; docs/security.md "Soak"): N create/start/kill/delete cycles one after another,
 * then M at once, through the real CLI with real VMs. Measures the host side before and after —
 * the processes, open fds, mounts and memory that belong to kata-runtime, and the same figures
 * for the whole host for context — prints them, and exits 1 if anything of ours grew.
 *
 *   node dist/bench/soak.js [--cycles N] [--parallel M] [--cli PATH]     (defaults 200, 20)
 *
 * Hold the VM lock: `flock /tmp/kata-vm.lock npm run soak`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDemoBundle } from '../src/oci/demo.js';

interface Opts {
  cycles: number;
  parallel: number;
  cli: string;
}

function parseArgs(argv: string[]): Opts {
  const o: Opts = { cycles: 200, parallel: 20, cli: path.resolve(import.meta.dirname, '..', '..', 'bin', 'run.js') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if ((a === '--cycles' || a === '--parallel') && v !== undefined && /^\d+$/.test(v)) {
      o[a === '--cycles' ? 'cycles' : 'parallel'] = Number(v);
      i++;
    } else if (a === '--cli' && v !== undefined) {
      o.cli = path.resolve(v);
      i++;
    } else {
      throw new Error(`usage: soak [--cycles N] [--parallel M] [--cli PATH] (bad argument ${a ?? ''})`);
    }
  }
  return o;
}

interface Figures {
  /** Processes whose command line names the soak's directory (monitors, QEMU, virtiofsd). */
  ourProcesses: number;
  /** Their open fds. */
  ourFds: number;
  /** Mounts naming the soak's directory, in the host's mount namespace. */
  ourMounts: number;
  /** Entries left under --root, and sockets anywhere under the soak's directory. */
  stateDirs: number;
  sockets: number;
  /** Zombies anywhere (a child nobody reaped); context, like the host figures below. */
  zombies: number;
  /** Whole host: processes, allocated fds (file-nr), mounts. */
  hostProcesses: number;
  hostFds: number;
  hostMounts: number;
  /**
   * Host memory that a leaked VM or helper would hold: shared memory (a guest's RAM is a memfd,
   * so a VM that outlived its container shows here) and unreclaimable kernel slab.
   */
  shmemMiB: number;
  slabUnreclaimMiB: number;
  /** MemTotal - MemAvailable: context only, other work on the host moves it (page cache, builds). */
  hostUsedMiB: number;
}

function pids(): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
}

function read(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function countSockets(dir: string): number {
  let n = 0;
  const walk = (d: string): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isSocket()) n++;
      else if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return n;
}

function measure(dir: string, root: string): Figures {
  let ourProcesses = 0;
  let ourFds = 0;
  let zombies = 0;
  const all = pids();
  for (const pid of all) {
    if (pid === process.pid) continue;
    if (/\) Z /.test(read(`/proc/${pid}/stat`))) zombies++;
    if (!read(`/proc/${pid}/cmdline`).includes(dir)) continue;
    ourProcesses++;
    try {
      ourFds += fs.readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // gone
    }
  }
  const mounts = read('/proc/self/mountinfo').split('\n').filter((l) => l !== '');
  const mem = read('/proc/meminfo');
  const kib = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(mem)?.[1] ?? 0);
  return {
    ourProcesses,
    ourFds,
    ourMounts: mounts.filter((l) => l.includes(dir)).length,
    stateDirs: fs.existsSync(root) ? fs.readdirSync(root).length : 0,
    sockets: countSockets(dir),
    zombies,
    hostProcesses: all.length,
    hostFds: Number(read('/proc/sys/fs/file-nr').split(/\s+/)[0] ?? 0),
    hostMounts: mounts.length,
    shmemMiB: Math.round(kib('Shmem') / 1024),
    slabUnreclaimMiB: Math.round(kib('SUnreclaim') / 1024),
    hostUsedMiB: Math.round((kib('MemTotal') - kib('MemAvailable')) / 1024),
  };
}

function run(cli: string, root: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [cli, '--root', root, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    // create leaves the container (its monitor) holding our stderr pipe: wait for exit, not EOF
    c.on('exit', (code) => {
      setTimeout(() => {
        c.stderr.destroy();
        resolve({ code, stderr });
      }, 50);
    });
  });
}

async function must(cli: string, root: string, args: string[]): Promise<void> {
  const r = await run(cli, root, args);
  if (r.code !== 0) throw new Error(`kata-runtime ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
}

async function statusOf(cli: string, root: string, id: string): Promise<string> {
  const r = spawnSync(process.execPath, [cli, '--root', root, 'state', id], { encoding: 'utf8' });
  if (r.status !== 0) return `error: ${r.stderr.trim()}`;
  return String((JSON.parse(r.stdout) as Record<string, unknown>)['status']);
}

/** One container's life: create, start, kill -9, wait for stopped, delete. */
async function cycle(o: Opts, root: string, bundle: string, id: string): Promise<void> {
  await must(o.cli, root, ['create', '--bundle', bundle, id]);
  await must(o.cli, root, ['start', id]);
  await must(o.cli, root, ['kill', id, 'KILL']);
  const deadline = Date.now() + 120000;
  for (;;) {
    const s = await statusOf(o.cli, root, id);
    if (s === 'stopped') break;
    if (Date.now() > deadline) throw new Error(`${id} still ${s} 120 s after kill`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await must(o.cli, root, ['delete', id]);
}

function table(before: Figures, after: Figures): string {
  const rows = (Object.keys(before) as (keyof Figures)[]).map((k) => `| ${k} | ${before[k]} | ${after[k]} | ${after[k] - before[k]} |`);
  return ['| figure | before | after | change |', '|---|---:|---:|---:|', ...rows].join('\n');
}

/** What must not grow at all (ours), and what may drift a little because other work shares the host. */
function grown(before: Figures, after: Figures): string[] {
  const bad: string[] = [];
  for (const k of ['ourProcesses', 'ourFds', 'ourMounts', 'stateDirs', 'sockets'] as const) if (after[k] > before[k]) bad.push(`${k} ${before[k]} -> ${after[k]}`);
  // zombies and host mounts are the whole host's: printed, not judged (other work makes them)
  // Other work on the host moves these a little; a leak per cycle would show as much more than
  // the slack over the cycles (a leaked guest alone is ~100 MiB of shmem).
  if (after.hostFds > before.hostFds + 200) bad.push(`host fds ${before.hostFds} -> ${after.hostFds}`);
  if (after.shmemMiB > before.shmemMiB + 64) bad.push(`shmem ${before.shmemMiB} -> ${after.shmemMiB} MiB`);
  if (after.slabUnreclaimMiB > before.slabUnreclaimMiB + 64) bad.push(`unreclaimable slab ${before.slabUnreclaimMiB} -> ${after.slabUnreclaimMiB} MiB`);
  return bad;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-soak-'));
  const root = path.join(dir, 'root');
  const bundle = makeDemoBundle(path.join(dir, 'bundle'), ['sleep', '600']); // a new netns per container
  let failed = false;
  try {
    // One cycle first, so the page cache holds the guest image and node's modules before measuring.
    await cycle(o, root, bundle, 'warmup');
    const before = measure(dir, root);
    const t0 = Date.now();
    for (let i = 0; i < o.cycles; i++) await cycle(o, root, bundle, `seq-${i}`);
    const t1 = Date.now();
    await Promise.all(Array.from({ length: o.parallel }, (_, i) => cycle(o, root, bundle, `par-${i}`)));
    const t2 = Date.now();
    await new Promise((r) => setTimeout(r, 1000)); // SIGKILLed helpers finish exiting
    const after = measure(dir, root);
    console.log(`soak: ${o.cycles} sequential cycles in ${((t1 - t0) / 1000).toFixed(1)} s (${((t1 - t0) / Math.max(1, o.cycles) / 1000).toFixed(2)} s each), ${o.parallel} in parallel in ${((t2 - t1) / 1000).toFixed(1)} s`);
    console.log(table(before, after));
    const bad = grown(before, after);
    if (bad.length > 0) {
      console.log(`soak: FAILED, grew: ${bad.join('; ')}`);
      failed = true;
    } else {
      console.log('soak: nothing grew');
    }
  } finally {
    if (fs.existsSync(root)) for (const id of fs.readdirSync(root)) spawnSync(process.execPath, [o.cli, '--root', root, 'delete', '--force', id], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error(`soak: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
