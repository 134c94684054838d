import { spawn } from 'node:child_process';
import { KataError } from '../errors.js';
import type { Hook, Spec } from './spec.js';

/**
 * The hooks that run on the host, in the order of the runtime-spec lifecycle: prestart (step 3)
 * before createRuntime (step 4), both in create; poststart in start; poststop in delete (and after
 * a failed create). createContainer and startContainer run in the guest, by crun.
 */
export const HOST_HOOKS = ['prestart', 'createRuntime', 'poststart', 'poststop'] as const;
export type HostHookKind = (typeof HOST_HOOKS)[number];

/** The hooks `create` runs on the host, in the order it must run them (runtime-spec, config.md). */
export const CREATE_HOOKS = ['prestart', 'createRuntime'] as const satisfies readonly HostHookKind[];

/** The state document a hook reads on its stdin (runtime-spec "state"). */
export interface HookState {
  ociVersion: string;
  id: string;
  status: string;
  /** The container's pid; 0 (once stopped) leaves `pid` out of the document, as runc does. */
  pid: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export type HostHooks = Partial<Record<HostHookKind, Hook[]>>;

const MAX_HOOK_OUTPUT = 4096;
/** How long stderr may stay open after the hook exited (a child it left behind may hold it). */
const STDERR_GRACE_MS = 1000;

/** The host-side hooks of a spec, kept in the state dir so that start/delete can run them later. */
export function hostHooks(spec: Spec): HostHooks {
  const h = spec.hooks ?? {};
  const out: HostHooks = {};
  for (const k of HOST_HOOKS) {
    const list = h[k];
    if (list !== undefined && list.length > 0) out[k] = list;
  }
  return out;
}

/**
 * The state as a hook reads it: `pid` only while there is a process (the runtime-spec requires it
 * for `created` and `running`; runc leaves a zero pid out).
 */
export function hookStateJson(state: HookState): string {
  const { ociVersion, id, status, pid, bundle, annotations } = state;
  return JSON.stringify({ ociVersion, id, status, ...(pid > 0 ? { pid } : {}), bundle, ...(annotations === undefined ? {} : { annotations }) });
}

/**
 * The environment kata-runtime was started with, before the CLI adds its own variables for the
 * monitor (KATA_LOG_FORMAT, KATA_LOG_FILE: src/cli/base.ts). Taken when this module loads, which is
 * before any verb runs.
 */
const CALLER_ENV: NodeJS.ProcessEnv = { ...process.env };

/**
 * A hook's environment: exactly its `env` when it has one (even an empty one); without `env` it
 * inherits the environment the runtime was started with, as with runc (Go's exec.Cmd, nil Env).
 */
export function hookEnv(hook: Hook, inherited: NodeJS.ProcessEnv = CALLER_ENV): NodeJS.ProcessEnv {
  if (hook.env === undefined) return { ...inherited };
  return Object.fromEntries(hook.env.map((kv) => {
    const eq = kv.indexOf('=');
    return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
  }));
}

/**
 * Runs one hook: `path` with `args` (args[0] is argv[0]) and the environment of hookEnv, the state
 * JSON on its stdin, the bundle as cwd, in its own process group. After `timeout` seconds the whole
 * group is SIGKILLed. Resolves when it exits 0; otherwise rejects with an E_HOOK error naming the
 * phase and the hook's path (and, with several hooks in the phase, its index) and carrying the last
 * line of its stderr. The hook's exit settles it: stderr left open by a child it started is given
 * STDERR_GRACE_MS, not waited for (runc would wait for it).
 */
export function runHook(kind: HostHookKind, hook: Hook, state: HookState, index?: { at: number; of: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const argv0 = hook.args?.[0] ?? hook.path;
    const what = `${kind} hook ${hook.path}${index !== undefined && index.of > 1 ? ` (#${index.at} of ${index.of})` : ''}`;
    let child;
    try {
      child = spawn(hook.path, hook.args?.slice(1) ?? [], {
        argv0,
        env: hookEnv(hook),
        stdio: ['pipe', 'ignore', 'pipe'],
        cwd: state.bundle,
        detached: true, // its own process group (and session): a timeout kills what it started too
      });
    } catch (e) {
      reject(new KataError('E_HOOK', `${what}: ${e instanceof Error ? e.message : String(e)}`));
      return;
    }
    const c = child;
    let stderr = '';
    let timedOut = false;
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      try {
        if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    };
    const timer = hook.timeout === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      killGroup();
    }, hook.timeout * 1000);
    const settle = (err: KataError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      c.stderr?.destroy();
      if (err === undefined) resolve();
      else reject(err);
    };
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (d: string) => {
      stderr = (stderr + d).slice(-MAX_HOOK_OUTPUT);
    });
    c.stdin?.on('error', () => undefined); // a hook need not read its stdin
    c.stdin?.end(hookStateJson(state));
    c.on('error', (e) => settle(new KataError('E_HOOK', `${what}: ${e.message}`)));
    c.on('exit', (code, signal) => {
      clearTimeout(timer);
      const finish = (): void => {
        if (code === 0) return settle(undefined);
        const tail = stderr.trim().split('\n').slice(-1)[0] ?? '';
        const how = timedOut ? `timed out after ${hook.timeout ?? 0} s` : signal !== null ? `killed by ${signal}` : `exited ${code}`;
        settle(new KataError('E_HOOK', `${what} ${how}${tail === '' ? '' : `: ${tail}`}`));
      };
      // Whatever is still buffered arrives before 'close'; a child holding stderr only delays us.
      if (c.stderr === null || c.stderr.closed) finish();
      else {
        c.stderr.once('close', finish);
        grace = setTimeout(finish, timedOut ? 0 : STDERR_GRACE_MS);
      }
    });
  });
}

/**
 * Runs the hooks of one kind in order; the first failure stops the rest and is thrown (runc does
 * the same for every kind, also poststart and poststop, where the runtime-spec would go on).
 */
export async function runHooks(kind: HostHookKind, hooks: HostHooks, state: HookState): Promise<void> {
  const list = hooks[kind] ?? [];
  for (const [i, h] of list.entries()) await runHook(kind, h, state, { at: i + 1, of: list.length });
}

/** create's host hooks: prestart, then createRuntime (runtime-spec steps 3 and 4, and runc). */
export async function runCreateHooks(hooks: HostHooks, state: HookState): Promise<void> {
  for (const kind of CREATE_HOOKS) await runHooks(kind, hooks, state);
}
