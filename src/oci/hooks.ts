import { spawn } from 'node:child_process';
import { KataError } from '../errors.js';
import type { Hook, Spec } from './spec.js';

/** The hooks that run on the host, in the order of the runtime-spec lifecycle. */
export const HOST_HOOKS = ['prestart', 'createRuntime', 'poststart', 'poststop'] as const;
export type HostHookKind = (typeof HOST_HOOKS)[number];

/** The state document a hook reads on its stdin (runtime-spec "state"). */
export interface HookState {
  ociVersion: string;
  id: string;
  status: string;
  pid: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export type HostHooks = Partial<Record<HostHookKind, Hook[]>>;

const MAX_HOOK_OUTPUT = 4096;

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
 * Runs one hook: `path` with `args` (args[0] is argv[0]) and exactly `env`, the state JSON on its
 * stdin, killed after `timeout` seconds. Resolves when it exits 0; otherwise rejects with a message
 * that names the hook and carries the end of its stderr.
 */
export function runHook(kind: HostHookKind, hook: Hook, state: HookState): Promise<void> {
  return new Promise((resolve, reject) => {
    const argv0 = hook.args?.[0] ?? hook.path;
    const child = spawn(hook.path, hook.args?.slice(1) ?? [], {
      argv0,
      env: Object.fromEntries((hook.env ?? []).map((kv) => {
        const eq = kv.indexOf('=');
        return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
      })),
      stdio: ['pipe', 'ignore', 'pipe'],
      cwd: state.bundle,
      detached: true, // its own process group: a timeout kills what it started too
    });
    let stderr = '';
    let timedOut = false;
    const timer = hook.timeout === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, hook.timeout * 1000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr = (stderr + d).slice(-MAX_HOOK_OUTPUT);
    });
    child.stdin.on('error', () => undefined); // a hook need not read its stdin
    child.stdin.end(JSON.stringify(state));
    const what = `${kind} hook ${hook.path}`;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new KataError('E_HOOK', `${what}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const tail = stderr.trim().split('\n').slice(-1)[0] ?? '';
      const how = timedOut ? `timed out after ${hook.timeout ?? 0} s` : signal !== null ? `killed by ${signal}` : `exited ${code}`;
      reject(new KataError('E_HOOK', `${what} ${how}${tail === '' ? '' : `: ${tail}`}`));
    });
  });
}

/** Runs the hooks of one kind in order; the first failure stops the rest and is thrown. */
export async function runHooks(kind: HostHookKind, hooks: HostHooks, state: HookState): Promise<void> {
  for (const h of hooks[kind] ?? []) await runHook(kind, h, state);
}
