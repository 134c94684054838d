/**
 * `exec`: the process spec runc would build, and the CLI's end of the exec stream (used in the
 * foreground by `kata-runtime exec` itself, and by the detached exec helper).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tty from 'node:tty';
import type { Frame } from '../channel/frame.js';
import { KataError, errnoCode } from '../errors.js';
import type { OpenCall } from '../monitor/control.js';
import { decodeExit, EXEC_STDERR, EXEC_STDIN, EXEC_STDOUT, FramedSocket, type ExecExit } from '../monitor/exec-wire.js';
import { FdSink, pumpFd } from '../monitor/stdio.js';
import { FIELDS } from '../oci/fields.js';
import { isRecord } from '../util/json.js';

export interface ExecFlags {
  /** --process FILE (relative to the caller's cwd); when set, the other process flags are ignored, as in runc. */
  processFile?: string | undefined;
  args: string[];
  tty: boolean;
  env: string[];
  cwd?: string | undefined;
  user?: string | undefined;
  additionalGids: number[];
  noNewPrivs: boolean;
  caps: string[];
}


function bad(msg: string): KataError {
  return new KataError('E_INVALID_ARGUMENT', msg);
}

/** runc's validateProcessSpec, plus the shape checks the guest relies on. */
export function validateProcess(p: Record<string, unknown>): void {
  const cwd = p['cwd'];
  if (typeof cwd !== 'string' || cwd === '') throw bad('Cwd property must not be empty');
  if (!path.isAbsolute(cwd)) throw bad('Cwd must be an absolute path');
  const args = p['args'];
  if (!Array.isArray(args) || args.length === 0) throw bad('args must not be empty');
  if (!args.every((a) => typeof a === 'string')) throw bad('args must be strings');
  const env = p['env'];
  if (env !== undefined && (!Array.isArray(env) || !env.every((e) => typeof e === 'string'))) throw bad('env must be an array of strings');
  const user = p['user'];
  if (user !== undefined && !isRecord(user)) throw bad('user must be an object');
}

/**
 * Process fields of later runtime-spec releases that an exec'd process cannot have: the ones
 * src/oci/fields.ts refuses, and the ones the agent sets on a container's init only (crun exec
 * in the guest would ignore them).
 */
export function execProcessRefusals(p: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const rule of FIELDS) {
    const [top, field, ...rest] = rule.path.split('.');
    if (top !== 'process' || field === undefined || rest.length > 0 || p[field] === undefined) continue;
    if (rule.handling === 'refuse') out.push(`process.${field}: ${rule.note}`);
    if (rule.handling === 'agent') out.push(`process.${field}: is applied to a container's init only; an exec'd process cannot have it (crun exec in the guest would ignore it)`);
  }
  return out;
}

/** Reads --process FILE: a runtime-spec process object. */
export function readProcessFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw bad(`--process ${file}: ${errnoCode(e) === 'ENOENT' ? 'no such file or directory' : String(e)}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`--process ${file}: invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isRecord(v)) throw bad(`--process ${file}: not a JSON object`);
  return v;
}

/** The process to exec, built as runc builds it: the container's own process with the flags applied. */
export function buildExecProcess(flags: ExecFlags, base: Record<string, unknown>): Record<string, unknown> {
  if (flags.processFile !== undefined && flags.processFile !== '') {
    const p = readProcessFile(flags.processFile);
    validateProcess(p);
    const refused = execProcessRefusals(p);
    if (refused.length > 0) throw new KataError('E_UNSUPPORTED', `--process ${flags.processFile}: ${refused.join('; ')}`);
    return p;
  }
  if (flags.args.length === 0) throw bad('exec: either a command or --process must be given');
  const p: Record<string, unknown> = structuredClone(base);
  // The container's init had these applied by the agent; crun exec cannot apply them to an
  // exec'd process, which gets the guest's defaults (docs/cli-compat.md).
  for (const rule of FIELDS) if (rule.handling === 'agent' && rule.path.startsWith('process.')) delete p[rule.path.slice('process.'.length)];
  p['args'] = flags.args;
  if (flags.cwd !== undefined && flags.cwd !== '') p['cwd'] = flags.cwd;
  const caps = isRecord(p['capabilities']) ? p['capabilities'] : {};
  if (flags.caps.length > 0) {
    // runc adds them to the ambient set too (not to the inheritable one, so the kernel keeps an
    // ambient capability only when the container's process already had it inheritable).
    for (const set of ['bounding', 'effective', 'permitted', 'ambient']) {
      const cur = Array.isArray(caps[set]) ? (caps[set] as unknown[]) : [];
      caps[set] = [...cur, ...flags.caps];
    }
    p['capabilities'] = caps;
  }
  p['env'] = [...(Array.isArray(p['env']) ? (p['env'] as unknown[]) : []), ...flags.env];
  p['terminal'] = flags.tty;
  delete p['consoleSize'];
  if (flags.noNewPrivs) p['noNewPrivileges'] = true;
  const user: Record<string, unknown> = isRecord(p['user']) ? p['user'] : { uid: 0, gid: 0 };
  if (flags.user !== undefined && flags.user !== '') {
    const [u, g] = flags.user.split(':', 2);
    const num = (s: string | undefined, what: string): number => {
      if (s === undefined || !/^[0-9]+$/.test(s) || Number(s) > 0xffffffff) throw bad(`parsing ${what} ${JSON.stringify(s ?? '')}: invalid syntax`);
      return Number(s);
    };
    user['uid'] = num(u, 'uid');
    if (g !== undefined) user['gid'] = num(g, 'gid');
  }
  if (flags.additionalGids.length > 0) {
    user['additionalGids'] = [...(Array.isArray(user['additionalGids']) ? (user['additionalGids'] as unknown[]) : []), ...flags.additionalGids];
  }
  p['user'] = user;
  validateProcess(p);
  return p;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export interface RelayOptions {
  /** The connection carries the process's stdio (false when a console socket got the terminal). */
  stdio: boolean;
  /** The process has a terminal relayed over the connection: pass window-size changes on. */
  tty: boolean;
}

/**
 * The CLI's end of an exec: relays fds 0/1/2 ⇄ the connection, forwards signals and window sizes,
 * resolves with the process's exit status. Rejects if the monitor goes away first.
 */
export function relayExec(call: OpenCall, opts: RelayOptions): Promise<ExecExit> {
  return new Promise((resolve, reject) => {
    const out = new FdSink(1);
    const err = new FdSink(2);
    const abort = new AbortController();
    let exit: ExecExit | undefined;
    const onFrame = async (f: Frame): Promise<void> => {
      if (f.type === 'DATA' && f.stream === EXEC_STDOUT) await out.write(f.payload).catch(() => undefined);
      else if (f.type === 'DATA' && f.stream === EXEC_STDERR) await err.write(f.payload).catch(() => undefined);
      else if (f.type === 'MSG') exit = decodeExit(f.payload);
    };
    const framed = new FramedSocket(call.sock, call.rest, onFrame, (e) => reject(e));
    const forward = (s: NodeJS.Signals): void => void framed.sendMsg({ signal: os.constants.signals[s] });
    for (const s of FORWARDED) process.on(s, forward);
    let onResize: (() => void) | undefined;
    if (opts.stdio && opts.tty && tty.isatty(1)) {
      const stdout = process.stdout as tty.WriteStream;
      onResize = (): void => void framed.sendMsg({ resize: { rows: stdout.rows, cols: stdout.columns } });
      stdout.on('resize', onResize);
      onResize();
    }
    if (opts.stdio) {
      void pumpFd(0, (b) => framed.sendData(EXEC_STDIN, b), abort.signal).then(() =>
        framed.send({ type: 'CLOSE', stream: EXEC_STDIN, payload: Buffer.alloc(0) }),
      );
    }
    void framed.closed.then(() => {
      abort.abort();
      for (const s of FORWARDED) process.removeListener(s, forward);
      if (onResize !== undefined) process.stdout.removeListener('resize', onResize);
      if (exit !== undefined) resolve(exit);
      else reject(new KataError('E_MONITOR', "the container's monitor went away before the process ended"));
    });
  });
}

/** The exit code a shell reports for the status. */
export function exitCodeOf(e: ExecExit): number {
  return e.signal !== null ? 128 + e.signal : (e.code ?? 0);
}
