import net from 'node:net';
import { ERROR_CODES, KataError, type ErrorCode } from '../errors.js';
import { isRecord } from '../util/json.js';
import { peerCred } from '../native/index.js';

/**
 * Requests the CLI sends to a container's monitor over <state>/monitor.sock. Each connection
 * carries one request line and gets one response line. `exec` and `events` then keep the
 * connection: exec switches to frames (src/monitor/exec-wire.ts), events to one JSON line per event.
 */
export type ControlRequest =
  | { op: 'start' }
  | { op: 'kill'; signal: number; all: boolean }
  | { op: 'destroy' }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'ps' }
  | { op: 'stats' }
  | { op: 'update'; resources: Record<string, unknown> }
  | { op: 'exec'; execId: string; process: Record<string, unknown>; consoleSocket?: string }
  | { op: 'events' };

export type ControlResponse = { ok: true; result: Record<string, unknown> } | { ok: false; code: ErrorCode; message: string };

/** What a handler returns: a result, and for streaming ops what to do with the connection next. */
export interface ControlReply {
  result?: Record<string, unknown>;
  /** Takes over the connection after the response line; `rest` holds bytes already read past it. */
  attach?: (sock: net.Socket, rest: Buffer) => void;
}

const MAX_LINE = 1 << 20;
const ID_RE = /^[A-Za-z0-9_.+-]{1,128}$/;


function badRequest(what: string): KataError {
  return new KataError('E_INVALID_ARGUMENT', `bad control request: ${what}`);
}

export function decodeControlRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw badRequest('not JSON');
  }
  if (!isRecord(v)) throw badRequest('not an object');
  switch (v['op']) {
    case 'start':
    case 'destroy':
    case 'pause':
    case 'resume':
    case 'ps':
    case 'stats':
    case 'events':
      return { op: v['op'] };
    case 'kill': {
      const s = v['signal'];
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 64) throw badRequest('bad signal');
      return { op: 'kill', signal: s, all: v['all'] === true };
    }
    case 'update': {
      const r = v['resources'];
      if (!isRecord(r)) throw badRequest('resources is not an object');
      return { op: 'update', resources: r };
    }
    case 'exec': {
      const execId = v['execId'];
      const proc = v['process'];
      const cs = v['consoleSocket'];
      if (typeof execId !== 'string' || !ID_RE.test(execId)) throw badRequest('bad exec id');
      if (!isRecord(proc)) throw badRequest('process is not an object');
      if (cs !== undefined && typeof cs !== 'string') throw badRequest('bad console socket');
      return { op: 'exec', execId, process: proc, ...(cs === undefined ? {} : { consoleSocket: cs }) };
    }
    default:
      throw badRequest('unknown op');
  }
}

function decodeResponse(line: string): ControlResponse {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new KataError('E_MONITOR', 'bad answer from the monitor');
  }
  if (isRecord(v) && v['ok'] === true) return { ok: true, result: isRecord(v['result']) ? v['result'] : {} };
  if (isRecord(v) && v['ok'] === false && typeof v['message'] === 'string') {
    const code = (ERROR_CODES as readonly unknown[]).includes(v['code']) ? (v['code'] as ErrorCode) : 'E_MONITOR';
    return { ok: false, code, message: v['message'] };
  }
  throw new KataError('E_MONITOR', 'bad answer from the monitor');
}

/**
 * Reads one newline-terminated line, then pauses the socket and hands over the line and any bytes
 * that came after it (the socket is left paused, with no data listener, for the next reader).
 */
function readLine(sock: net.Socket, onLine: (line: string, rest: Buffer) => void, onFail: (e: Error) => void): void {
  let buf = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    buf = Buffer.concat([buf, d]);
    const nl = buf.indexOf(0x0a);
    if (nl >= 0) {
      sock.pause();
      sock.removeListener('data', onData);
      onLine(buf.subarray(0, nl).toString('utf8'), buf.subarray(nl + 1));
    } else if (buf.length > MAX_LINE) {
      sock.removeListener('data', onData);
      sock.destroy();
      onFail(new KataError('E_MONITOR', 'oversized control message'));
    }
  };
  sock.on('data', onData);
}

/**
 * Who may talk to the monitor: SO_PEERCRED of the connection, checked against `allowUids`
 * (root and the uid that created the container). The socket is 0600 in a 0700 directory, so
 * this is the second line, for a peer that got hold of the path some other way (a descriptor
 * passed in, a bind mount, a privileged helper running as another uid). Returns why a peer is
 * refused, or undefined. Fails closed: a socket whose fd or credentials cannot be read is refused.
 */
export function refusePeer(sock: net.Socket, allowUids: readonly number[]): string | undefined {
  // net.Socket does not expose its fd; libuv's handle has it (Linux, unix sockets).
  const handle = (sock as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return 'cannot read the peer of the connection';
  let cred;
  try {
    cred = peerCred(fd);
  } catch (e) {
    return `cannot read the peer's credentials: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (!allowUids.includes(cred.uid)) return `refused a connection from pid ${cred.pid} uid ${cred.uid} (allowed: uid ${allowUids.join(', ')})`;
  return undefined;
}

export interface ServeOptions {
  /** uids admitted by SO_PEERCRED; everyone else is disconnected before a byte is read. */
  allowUids: readonly number[];
  onRefused?: (why: string) => void;
}

/** The monitor's side. */
export function serveControl(socketPath: string, handle: (req: ControlRequest) => Promise<ControlReply>, opts: ServeOptions): Promise<net.Server> {
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    const refused = refusePeer(sock, opts.allowUids);
    if (refused !== undefined) {
      opts.onRefused?.(refused);
      sock.destroy();
      return;
    }
    readLine(
      sock,
      (line, rest) => {
        let p: Promise<ControlReply>;
        try {
          p = handle(decodeControlRequest(line));
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(
          (reply) => {
            const text = JSON.stringify({ ok: true, ...(reply.result === undefined ? {} : { result: reply.result }) }) + '\n';
            if (reply.attach === undefined) {
              sock.end(text);
              return;
            }
            sock.write(text);
            reply.attach(sock, rest);
          },
          (e: unknown) => {
            const k = e instanceof KataError ? e : new KataError('E_INTERNAL', String(e));
            sock.end(JSON.stringify({ ok: false, code: k.code, message: k.oneLine() }) + '\n');
          },
        );
      },
      () => undefined,
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}

export interface OpenCall {
  result: Record<string, unknown>;
  /** The connection, paused, for the streaming part of `exec` / `events`. */
  sock: net.Socket;
  rest: Buffer;
}

/**
 * The CLI's side of a streaming call: sends the request, waits for the response line and returns
 * the connection. `socketPath` is relative to the process's cwd (see runtime/runtime.ts).
 */
export function openMonitor(socketPath: string, req: ControlRequest, timeoutMs = 60000): Promise<OpenCall> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let settled = false;
    const timer = setTimeout(() => {
      sock.destroy();
      done(new KataError('E_TIMEOUT', `the container's monitor did not answer ${req.op} within ${timeoutMs} ms`));
    }, timeoutMs);
    function done(e: Error | undefined, ok?: OpenCall): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeListener('error', onError);
      sock.removeListener('end', onEnd);
      if (e !== undefined) {
        sock.destroy();
        reject(e);
      } else if (ok !== undefined) {
        sock.on('error', () => undefined); // the streaming reader sees the close
        resolve(ok);
      }
    }
    const onError = (e: Error): void => done(new KataError('E_MONITOR', `cannot reach the container's monitor: ${e.message}`));
    const onEnd = (): void => done(new KataError('E_MONITOR', "the container's monitor closed the connection without answering"));
    sock.on('error', onError);
    sock.on('end', onEnd);
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    readLine(
      sock,
      (line, rest) => {
        let r: ControlResponse;
        try {
          r = decodeResponse(line);
        } catch (e) {
          done(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        if (!r.ok) done(new KataError(r.code, r.message));
        else done(undefined, { result: r.result, sock, rest });
      },
      (e) => done(e),
    );
  });
}

/** The CLI's side of a plain call: one request, one result. */
export async function callMonitor(socketPath: string, req: ControlRequest, timeoutMs = 60000): Promise<Record<string, unknown>> {
  const { result, sock } = await openMonitor(socketPath, req, timeoutMs);
  sock.destroy();
  return result;
}
