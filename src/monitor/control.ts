import net from 'node:net';
import { ERROR_CODES, KataError, type ErrorCode } from '../errors.js';

/** Requests the CLI sends to a container's monitor over <state>/monitor.sock (one per connection). */
export type ControlRequest =
  | { op: 'start' }
  | { op: 'kill'; signal: number; all: boolean }
  | { op: 'destroy' };

export type ControlResponse = { ok: true } | { ok: false; code: ErrorCode; message: string };

const MAX_LINE = 1 << 16;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function decodeControlRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new KataError('E_INVALID_ARGUMENT', 'bad control request');
  }
  if (!isRecord(v)) throw new KataError('E_INVALID_ARGUMENT', 'bad control request');
  switch (v['op']) {
    case 'start':
    case 'destroy':
      return { op: v['op'] };
    case 'kill': {
      const s = v['signal'];
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 64) throw new KataError('E_INVALID_ARGUMENT', 'bad signal');
      return { op: 'kill', signal: s, all: v['all'] === true };
    }
    default:
      throw new KataError('E_INVALID_ARGUMENT', 'unknown control op');
  }
}

function decodeResponse(line: string): ControlResponse {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new KataError('E_MONITOR', 'bad answer from the monitor');
  }
  if (isRecord(v) && v['ok'] === true) return { ok: true };
  if (isRecord(v) && v['ok'] === false && typeof v['message'] === 'string') {
    const code = (ERROR_CODES as readonly unknown[]).includes(v['code']) ? (v['code'] as ErrorCode) : 'E_MONITOR';
    return { ok: false, code, message: v['message'] };
  }
  throw new KataError('E_MONITOR', 'bad answer from the monitor');
}

function readLine(sock: net.Socket, onLine: (line: string) => void, onFail: (e: Error) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    const nl = buf.indexOf('\n');
    if (nl >= 0) {
      sock.removeAllListeners('data');
      onLine(buf.slice(0, nl));
    } else if (buf.length > MAX_LINE) {
      sock.destroy();
      onFail(new KataError('E_MONITOR', 'oversized control message'));
    }
  });
}

/** The monitor's side: each connection carries one request line and gets one response line. */
export function serveControl(socketPath: string, handle: (req: ControlRequest) => Promise<void>): Promise<net.Server> {
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    readLine(
      sock,
      (line) => {
        let p: Promise<void>;
        try {
          p = handle(decodeControlRequest(line));
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(
          () => sock.end(JSON.stringify({ ok: true }) + '\n'),
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

/** The CLI's side. `socketPath` is relative to the process's cwd (see runtime/runtime.ts). */
export function callMonitor(socketPath: string, req: ControlRequest, timeoutMs = 60000): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new KataError('E_TIMEOUT', `the container's monitor did not answer ${req.op} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (e?: Error): void => {
      clearTimeout(timer);
      if (e) reject(e);
      else resolve();
    };
    sock.on('error', (e) => done(new KataError('E_MONITOR', `cannot reach the container's monitor: ${e.message}`)));
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('end', () => done(new KataError('E_MONITOR', 'the container\'s monitor closed the connection without answering')));
    readLine(
      sock,
      (line) => {
        sock.destroy();
        let r: ControlResponse;
        try {
          r = decodeResponse(line);
        } catch (e) {
          done(e instanceof Error ? e : new Error(String(e)));
          return;
        }
        done(r.ok ? undefined : new KataError(r.code, r.message));
      },
      done,
    );
  });
}
