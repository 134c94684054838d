import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDemoBundle } from '../../src/oci/demo.js';
import { CLI } from '../e2e/helpers.js';

/**
 * The differential harness: one bundle, run to completion under Debian's runc and under
 * kata-runtime, one after the other, and what each produced. See docs/differential.md.
 */

export type Runtime = 'runc' | 'kata';
export const RUNTIMES: readonly Runtime[] = ['runc', 'kata'];

/** What one runtime produced for a case. `host` is the case's host-side observation, if any. */
export interface Outcome {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  host: string;
  /** How long the run took (not compared). */
  ms: number;
}

export type Field = 'code' | 'stdout' | 'stderr' | 'host';
export const ALL_FIELDS: readonly Field[] = ['code', 'stdout', 'stderr', 'host'];

/** Where a case lives on the host. The paths are the same for both runtimes (the case's dir is remade between them). */
export interface Ctx {
  /** The case's directory: bundle/ and host/ are in it. */
  dir: string;
  /** The bundle (dir/bundle). */
  bundle: string;
  /** Host-side files of the case (bind sources, hook output); emptied before each runtime. */
  host: string;
}

/** A loose view of config.json for edits. */
type Obj = Record<string, unknown>;

/**
 * The parts of runc's default config.json (src/oci/default-spec.ts) that cases edit, typed as the
 * default has them; anything else stays reachable as unknown.
 */
export interface Spec extends Obj {
  process: Obj & {
    env: string[];
    cwd: string;
    user: Obj & { uid: number; gid: number; additionalGids?: number[]; umask?: number };
    capabilities: Obj & Record<string, string[]>;
    rlimits?: { type: string; soft: number; hard: number }[];
    noNewPrivileges?: boolean;
    oomScoreAdj?: number;
  };
  root: Obj & { readonly?: boolean };
  mounts: Obj[];
  hostname?: string;
  hooks?: Record<string, Obj[]>;
  linux: Obj & {
    resources: Obj & { devices: Obj[] };
    namespaces: { type: string; path?: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
    sysctl?: Record<string, string>;
    seccomp?: Obj;
    devices?: Obj[];
  };
}

export interface Normalisation {
  /** What it changes and why: shown in docs/differential.md. */
  why: string;
  apply(o: Outcome, rt: Runtime): Outcome;
}

/** The runtime's own error line differs in wording: keep only whether it names `what`. */
export function errorMentions(...what: RegExp[]): Normalisation {
  return {
    why: `stderr is the runtime's own error line (runc: a logrus line from Go, kata-runtime: one plain line), reduced to whether it mentions ${what.map(String).join(' and ')}`,
    apply: (o: Outcome) => ({ ...o, stderr: what.map((w) => `${String(w)}: ${w.test(o.stderr)}`).join('\n') }),
  };
}

/**
 * One step of a lifecycle case; the container id is appended. `create` and `run` get the bundle,
 * /dev/null as stdin and files as stdout/stderr (the container keeps them); `wait` polls `state`
 * until the container is stopped or gone; `kill` sends SIGKILL; `delete-force` is `delete --force`.
 */
export type Step = 'create' | 'run' | 'start' | 'state' | 'wait' | 'kill' | 'delete' | 'delete-force';

/**
 * A case's hooks append one line each to this file, the first word naming the hook (see
 * `recorder` in cases.ts); a lifecycle transcript lists, after each step, the hooks that ran in it.
 */
export function hooksLog(ctx: Ctx): string {
  return path.join(ctx.host, 'hooks.log');
}

/** A divergence that needs a change in code this suite's owner may not edit (docs/differential.md). */
export interface Awaiting {
  /** The change that will make kata-runtime give runc's result. */
  fix: string;
  /** kata-runtime's transcript (stdout) today; the case fails as soon as it no longer matches. */
  now: RegExp;
}

export interface DiffCase {
  name: string;
  /** The container's command. */
  args: string[];
  edit?: (spec: Spec, ctx: Ctx) => void;
  /** Makes the case's host files (run before each runtime, in a fresh ctx.host). */
  setup?: (ctx: Ctx) => void;
  /** Fed to the runtime's stdin (closed right away otherwise). */
  input?: string;
  /** Host-side observation after the run (hook output, files written through a bind). */
  observe?: (ctx: Ctx) => string;
  /** Fields compared; all of them unless an inherent difference is documented in `exception`. */
  compare?: Field[];
  /** Why a field is left out or normalised; required when `compare` or `normalise` is given. */
  exception?: string;
  normalise?: Normalisation[];
  /**
   * What runc must produce, so that a case cannot pass because both runtimes failed the same
   * uninteresting way (a bundle both reject). Checked against runc's outcome only.
   */
  expect: { code: number; stdout?: RegExp; stderr?: RegExp; host?: RegExp };
  /**
   * A lifecycle instead of one `run`: these verbs in turn. stdout is then the transcript (each
   * step's exit code and whether it wrote to stderr, the hooks that ran in it, `state`'s status,
   * and at the end the container's own output), stderr every step's stderr, code the first step's
   * exit code and host the hooks' log (hooksLog).
   */
  steps?: Step[];
  /** With `steps`: each step's hooks and the hooks' log are sorted (which ran, not in what order). */
  hookSet?: boolean;
  /** Set while kata-runtime is known to differ for want of a change elsewhere. */
  awaiting?: Awaiting;
}

const RUNC = 'runc';

export function runcInstalled(): string | undefined {
  const r = spawnSync(RUNC, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return undefined;
  return r.stdout.split('\n')[0];
}

function command(rt: Runtime, root: string, args: string[]): [string, string[]] {
  return rt === 'runc' ? [RUNC, ['--root', root, ...args]] : [process.execPath, [CLI, '--root', root, ...args]];
}

/** Runs `<runtime> --root root args...` to completion; stdin gets `input` then EOF. */
export function runRuntime(rt: Runtime, root: string, args: string[], input: string | undefined, timeoutMs: number): Promise<Omit<Outcome, 'host' | 'ms'>> {
  const [cmd, argv] = command(rt, root, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${rt} ${args.join(' ')} timed out after ${timeoutMs} ms; stderr: ${Buffer.concat(err).toString()}`));
    }, timeoutMs);
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    };
    child.on('error', reject);
    child.on('close', finish);
    // A foreground run leaves nothing holding its stdio; still, never wait for an EOF forever.
    child.on('exit', (code, signal) => setTimeout(() => finish(code, signal), 2000));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** `<runtime> --root root args...` with stdin /dev/null and stdout/stderr appended to files; waits for its exit only. */
function runToFiles(rt: Runtime, root: string, args: string[], out: string, err: string, timeoutMs: number): Promise<number | null> {
  const [cmd, argv] = command(rt, root, args);
  const fds = [fs.openSync(out, 'a'), fs.openSync(err, 'a')];
  return new Promise<number | null>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', fds[0], fds[1]] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${rt} ${args.join(' ')} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(signal === null ? code : 128 + (os.constants.signals[signal] ?? 0));
    });
  }).finally(() => fds.forEach((fd) => fs.closeSync(fd)));
}

function readOr(file: string, dflt = ''): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return dflt;
  }
}

/** `state`'s status, or how it failed. */
async function status(rt: Runtime, root: string, id: string): Promise<string> {
  const r = await runRuntime(rt, root, ['state', id], undefined, 60000);
  if (r.code !== 0) return `exit ${r.code}`;
  return (JSON.parse(r.stdout) as { status: string }).status;
}

/** The hooks' log of a lifecycle case; sorted with `hookSet` (which hooks ran, not in what order). */
function hookLines(c: DiffCase, ctx: Ctx): string {
  const log = readOr(hooksLog(ctx));
  return c.hookSet === true ? log.split('\n').filter((l) => l !== '').sort().map((l) => `${l}\n`).join('') : log;
}

/** Runs a lifecycle case's steps under one runtime (see DiffCase.steps). */
async function runSteps(c: DiffCase, steps: Step[], ctx: Ctx, rt: Runtime, root: string, id: string, timeoutMs: number): Promise<Omit<Outcome, 'host' | 'ms'>> {
  const out = path.join(ctx.dir, 'container.out');
  const err = path.join(ctx.dir, 'container.err');
  const lines: string[] = [];
  const stderr: string[] = [];
  let code: number | null = null;
  let seen = 0;
  let errSeen = 0;
  for (const step of steps) {
    if (step === 'state') {
      lines.push(`state: ${await status(rt, root, id)}`);
      continue;
    }
    if (step === 'wait') {
      const deadline = Date.now() + 60000;
      let st = await status(rt, root, id);
      while (st !== 'stopped' && !st.startsWith('exit') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        st = await status(rt, root, id);
      }
      lines.push(`wait: ${st}`);
      continue;
    }
    let rc: number | null;
    let text: string;
    if (step === 'create' || step === 'run') {
      rc = await runToFiles(rt, root, [step, '--bundle', ctx.bundle, id], out, err, timeoutMs);
      const all = readOr(err);
      text = all.slice(errSeen);
      errSeen = all.length;
    } else {
      const args = { start: ['start', id], kill: ['kill', id, 'KILL'], delete: ['delete', id], 'delete-force': ['delete', '--force', id] }[step];
      const r = await runRuntime(rt, root, args, undefined, timeoutMs);
      rc = r.code;
      text = r.stderr;
    }
    code ??= rc;
    stderr.push(`${step}: ${text}`);
    lines.push(`${step}: exit ${rc}${text.trim() === '' ? '' : ', stderr'}`);
    const log = readOr(hooksLog(ctx)).split('\n').filter((l) => l !== '');
    const fresh = log.slice(seen).map((l) => l.split(' ')[0] ?? '');
    seen = log.length;
    if (fresh.length > 0) lines.push(`  hooks: ${(c.hookSet === true ? fresh.sort() : fresh).join(' ')}`);
  }
  // What the container itself wrote: stdout, and stderr after the runtime's own create output.
  const later = readOr(err).slice(errSeen);
  lines.push(`container stdout: ${JSON.stringify(readOr(out))}`, `container stderr: ${later.trim() === '' ? 'none' : 'some'}`);
  stderr.push(`container: ${later}`);
  return { code, signal: null, stdout: `${lines.join('\n')}\n`, stderr: stderr.join('\n') };
}

/** delete --force of `id` under each root that still has it (both keep `<root>/<id>`); never throws. */
export function forceDelete(roots: Record<Runtime, string>, id: string): void {
  for (const rt of RUNTIMES) {
    if (!fs.existsSync(path.join(roots[rt], id))) continue;
    const [cmd, argv] = command(rt, roots[rt], ['delete', '--force', id]);
    spawnSync(cmd, argv, { stdio: 'ignore', timeout: 60000 });
  }
}

function freshCtx(dir: string): Ctx {
  fs.rmSync(dir, { recursive: true, force: true });
  const ctx: Ctx = { dir, bundle: path.join(dir, 'bundle'), host: path.join(dir, 'host') };
  fs.mkdirSync(ctx.host, { recursive: true });
  return ctx;
}

/**
 * Runs `c` under runc, then under kata-runtime, each with a freshly made bundle and host dir at
 * the same paths. Cleans up (delete --force under both roots, the case's dir) whatever happens.
 */
export async function runCase(c: DiffCase, work: string, roots: Record<Runtime, string>, timeoutMs = 120000): Promise<Record<Runtime, Outcome>> {
  const id = `diff-${c.name}`;
  const dir = path.join(work, c.name);
  const res: Partial<Record<Runtime, Outcome>> = {};
  try {
    for (const rt of RUNTIMES) {
      const ctx = freshCtx(dir);
      c.setup?.(ctx);
      makeDemoBundle(ctx.bundle, c.args, c.edit === undefined ? undefined : (spec) => c.edit?.(spec as unknown as Spec, ctx));
      const t0 = Date.now();
      const r = c.steps === undefined
        ? await runRuntime(rt, roots[rt], ['run', '--bundle', ctx.bundle, id], c.input, timeoutMs)
        : await runSteps(c, c.steps, ctx, rt, roots[rt], id, timeoutMs);
      const ms = Date.now() - t0;
      res[rt] = { ...r, host: c.observe?.(ctx) ?? (c.steps === undefined ? '' : hookLines(c, ctx)), ms };
      forceDelete(roots, id);
    }
  } finally {
    forceDelete(roots, id);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return res as Record<Runtime, Outcome>;
}

/** The fields a case compares, after its normalisations. */
export function comparable(c: DiffCase, o: Outcome, rt: Runtime): Partial<Record<Field, unknown>> {
  let n = o;
  for (const step of c.normalise ?? []) n = step.apply(n, rt);
  const out: Partial<Record<Field, unknown>> = {};
  for (const f of c.compare ?? ALL_FIELDS) out[f] = f === 'code' && n.signal !== null ? `killed by ${n.signal}` : n[f];
  return out;
}
