import { KataError } from '../errors.js';
import type { GuestInterface, GuestRoute } from '../net/plan.js';
import { isRecord } from '../util/json.js';

/** Control messages of docs/protocol.md, as a discriminated union, with a validating decoder. */

export interface StdioStreams {
  stdin: number | null;
  stdout: number | null;
  stderr: number | null;
}

export type AgentRequest =
  | { op: 'ping' }
  | { op: 'create'; containerId: string; spec: unknown; stdio: StdioStreams }
  | { op: 'start'; containerId: string }
  | { op: 'signal'; containerId: string; signal: number; all: boolean; execId?: string }
  | { op: 'exec'; containerId: string; execId: string; process: unknown; stdio: StdioStreams }
  | { op: 'resize'; containerId: string; execId?: string; rows: number; cols: number }
  | { op: 'ps'; containerId: string }
  | { op: 'update'; containerId: string; resources: unknown }
  | { op: 'stats'; containerId: string }
  | { op: 'list' }
  /** The VM's interfaces (found by MAC), addresses and routes: docs/networking.md. */
  | { op: 'network'; interfaces: GuestInterface[]; routes: GuestRoute[] }
  | { op: 'shutdown' };

export type GuestContainerStatus = 'created' | 'running' | 'stopped';

export interface ExitEvent {
  type: 'exit';
  containerId: string;
  /** Present for an exec'd process, absent for the container's init. */
  execId?: string;
  pid: number;
  code: number | null;
  signal: number | null;
}

export interface OomEvent {
  type: 'oom';
  containerId: string;
}

export type AgentEvent = ExitEvent | OomEvent;

/** One process of a container, as `ps` reports it (guest pids). */
export interface GuestProcess {
  pid: number;
  ppid: number;
  uid: number;
  cmd: string;
}

/** The cgroup v2 figures `stats` returns; null where the guest has no limit or no file. */
export interface GuestStats {
  cpuUsageUsec: number;
  cpuUserUsec: number;
  cpuSystemUsec: number;
  memoryCurrent: number;
  memoryMax: number | null;
  memorySwapCurrent: number | null;
  pidsCurrent: number;
  pidsMax: number | null;
  oomKills: number;
  memoryStat: Record<string, number>;
}

export interface WireError {
  code: string;
  message: string;
}

export type HostMessage = { kind: 'req'; id: number; req: AgentRequest };

export type GuestMessage =
  | { kind: 'res'; id: number; ok: Record<string, unknown> }
  | { kind: 'res'; id: number; err: WireError }
  | { kind: 'event'; event: AgentEvent };

export interface Hello {
  version: number;
  maxPayload: number;
  window: number;
}

const ID_RE = /^[A-Za-z0-9_.+-]{1,128}$/;
const MAX_MESSAGE_STRING = 4096;

function bad(msg: string): KataError {
  return new KataError('E_PROTOCOL', `agent protocol error: ${msg}`);
}

function u32(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(`${what} is not a u32`);
  return v;
}

function optInt(v: unknown, what: string, min: number, max: number): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`${what} out of range`);
  return v;
}

function str(v: unknown, what: string, max = MAX_MESSAGE_STRING): string {
  if (typeof v !== 'string') throw bad(`${what} is not a string`);
  return v.length > max ? `${v.slice(0, max)}…` : v;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A MSG/HELLO payload: UTF-8 (invalid sequences are refused, not replaced), then JSON. */
export function parseJson(payload: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(payload);
  } catch {
    throw bad('payload is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw bad('payload is not valid JSON');
  }
}

export function decodeHello(payload: Buffer): Hello {
  const v = parseJson(payload);
  if (!isRecord(v)) throw bad('HELLO is not an object');
  const version = u32(v['version'], 'HELLO version');
  const maxPayload = u32(v['maxPayload'], 'HELLO maxPayload');
  const window = u32(v['window'], 'HELLO window');
  if (window === 0) throw bad('HELLO window is 0');
  return { version, maxPayload, window };
}

/** Decodes a MSG payload from the guest. Everything is checked: the guest is not trusted. */
export function decodeGuestMessage(payload: Buffer): GuestMessage {
  const v = parseJson(payload);
  if (!isRecord(v)) throw bad('message is not an object');
  if (v['kind'] === 'res') {
    const id = u32(v['id'], 'response id');
    if (isRecord(v['ok'])) return { kind: 'res', id, ok: v['ok'] };
    const err = v['err'];
    if (isRecord(err)) return { kind: 'res', id, err: { code: str(err['code'], 'error code', 64), message: str(err['message'], 'error message') } };
    throw bad('response has neither ok nor err');
  }
  if (v['kind'] === 'event') {
    const ev = v['event'];
    if (!isRecord(ev)) throw bad('event is not an object');
    if (ev['type'] === 'exit') {
      const containerId = str(ev['containerId'], 'containerId', 128);
      if (!ID_RE.test(containerId)) throw bad('exit event with an invalid containerId');
      const code = optInt(ev['code'], 'exit code', 0, 255);
      const signal = optInt(ev['signal'], 'exit signal', 1, 64);
      if ((code === null) === (signal === null)) throw bad('exit event needs exactly one of code and signal');
      const event: ExitEvent = { type: 'exit', containerId, pid: u32(ev['pid'], 'pid'), code, signal };
      if (ev['execId'] !== undefined && ev['execId'] !== null) {
        const execId = str(ev['execId'], 'execId', 128);
        if (!ID_RE.test(execId)) throw bad('exit event with an invalid execId');
        event.execId = execId;
      }
      return { kind: 'event', event };
    }
    if (ev['type'] === 'oom') {
      const containerId = str(ev['containerId'], 'containerId', 128);
      if (!ID_RE.test(containerId)) throw bad('oom event with an invalid containerId');
      return { kind: 'event', event: { type: 'oom', containerId } };
    }
    throw bad(`unknown event type ${JSON.stringify(ev['type'])}`);
  }
  throw bad(`unknown message kind ${JSON.stringify(v['kind'])}`);
}

/** Decodes a host message (used by tests and by the fake agent in unit tests). */
export function decodeHostMessage(payload: Buffer): HostMessage {
  const v = parseJson(payload);
  if (!isRecord(v) || v['kind'] !== 'req' || !isRecord(v['req'])) throw bad('not a request');
  const req = v['req'];
  const op = req['op'];
  const id = u32(v['id'], 'request id');
  const cid = (): string => str(req['containerId'], 'containerId', 128);
  switch (op) {
    case 'ping':
    case 'list':
    case 'shutdown':
      return { kind: 'req', id, req: { op } };
    case 'start':
      return { kind: 'req', id, req: { op, containerId: cid() } };
    case 'signal':
      return { kind: 'req', id, req: { op, containerId: cid(), signal: u32(req['signal'], 'signal'), all: req['all'] === true } };
    case 'create': {
      const s = req['stdio'];
      if (!isRecord(s)) throw bad('create without stdio');
      const stream = (k: string): number | null => (s[k] === null ? null : u32(s[k], k));
      return {
        kind: 'req',
        id,
        req: { op, containerId: cid(), spec: req['spec'], stdio: { stdin: stream('stdin'), stdout: stream('stdout'), stderr: stream('stderr') } },
      };
    }
    default:
      throw bad(`unknown op ${JSON.stringify(op)}`);
  }
}

/** Reads an integer field of an `ok` result, checking it. */
export function resultInt(ok: Record<string, unknown>, key: string, min: number, max: number): number {
  const v = ok[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`result field ${key} missing or out of range`);
  return v;
}

const MAX_PROCESSES = 65536;
const U53 = Number.MAX_SAFE_INTEGER;

/** Decodes the result of `ps`: at most MAX_PROCESSES entries, every field checked. */
export function decodePsResult(ok: Record<string, unknown>): GuestProcess[] {
  const list = ok['processes'];
  if (!Array.isArray(list) || list.length > MAX_PROCESSES) throw bad('ps result has no valid processes list');
  return list.map((p: unknown) => {
    if (!isRecord(p)) throw bad('ps entry is not an object');
    return {
      pid: resultInt(p, 'pid', 1, 0x7fffffff),
      ppid: resultInt(p, 'ppid', 0, 0x7fffffff),
      uid: resultInt(p, 'uid', 0, 0xffffffff),
      cmd: str(p['cmd'], 'cmd'),
    };
  });
}

/** Decodes the result of `stats`: every counter a non-negative safe integer. */
export function decodeStatsResult(ok: Record<string, unknown>): GuestStats {
  const n = (k: string): number => resultInt(ok, k, 0, U53);
  const opt = (k: string): number | null => (ok[k] === null || ok[k] === undefined ? null : n(k));
  const raw = ok['memoryStat'];
  const memoryStat: Record<string, number> = {};
  if (isRecord(raw)) {
    for (const [k, v] of Object.entries(raw).slice(0, 256)) {
      if (/^[a-z0-9_]{1,64}$/.test(k) && typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U53) memoryStat[k] = v;
    }
  }
  return {
    cpuUsageUsec: n('cpuUsageUsec'),
    cpuUserUsec: n('cpuUserUsec'),
    cpuSystemUsec: n('cpuSystemUsec'),
    memoryCurrent: n('memoryCurrent'),
    memoryMax: opt('memoryMax'),
    memorySwapCurrent: opt('memorySwapCurrent'),
    pidsCurrent: n('pidsCurrent'),
    pidsMax: opt('pidsMax'),
    oomKills: n('oomKills'),
    memoryStat,
  };
}
