import net from 'node:net';
import { KataError } from '../errors.js';
import { isRecord } from '../util/json.js';

/** The QMP commands the runtime uses, with their argument and return types. */
export interface QmpCommands {
  qmp_capabilities: { args: Record<string, never>; ret: Record<string, never> };
  stop: { args: Record<string, never>; ret: Record<string, never> };
  cont: { args: Record<string, never>; ret: Record<string, never> };
  quit: { args: Record<string, never>; ret: Record<string, never> };
  'query-status': { args: Record<string, never>; ret: { running: boolean; status: string } };
}

export interface QmpEvent {
  event: string;
  data: unknown;
}

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: KataError) => void;
  timer: NodeJS.Timeout;
}


/**
 * QMP client: reads the greeting, negotiates capabilities, matches replies by id, reports events.
 * Knows nothing about containers.
 */
export class QmpClient {
  private buf = '';
  private nextId = 1;
  private readonly waiters = new Map<string, Waiter>();
  private greeting: { resolve: () => void; reject: (e: KataError) => void } | undefined;
  private closedError: KataError | undefined;
  onEvent: ((e: QmpEvent) => void) | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', (e) => this.close(new KataError('E_VM', `QMP: ${e.message}`)));
    sock.on('close', () => this.close(new KataError('E_VM', 'QMP connection closed')));
  }

  /** Connects over a stream (a unix socket path, or an already connected socket in tests). */
  static async connect(target: string | net.Socket, timeoutMs = 10000): Promise<QmpClient> {
    const sock = typeof target === 'string' ? net.createConnection(target) : target;
    const c = new QmpClient(sock);
    await c.withDeadline(
      new Promise<void>((resolve, reject) => {
        c.greeting = { resolve, reject };
      }),
      timeoutMs,
      'QMP greeting',
    );
    await c.execute('qmp_capabilities', {}, timeoutMs);
    return c;
  }

  execute<K extends keyof QmpCommands>(cmd: K, args: QmpCommands[K]['args'], timeoutMs = 10000): Promise<QmpCommands[K]['ret']> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `k${this.nextId++}`;
    const msg = Object.keys(args).length === 0 ? { execute: cmd, id } : { execute: cmd, arguments: args, id };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new KataError('E_TIMEOUT', `QMP ${cmd}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      // The reply's shape per command is QEMU's documented schema; checked fields are read where used.
      this.waiters.set(id, { resolve: (v) => resolve(v as QmpCommands[K]['ret']), reject, timer });
      this.sock.write(JSON.stringify(msg) + '\n');
    });
  }

  close(err = new KataError('E_VM', 'QMP connection closed')): void {
    if (this.closedError) return;
    this.closedError = err;
    this.greeting?.reject(err);
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiters.clear();
    this.sock.destroy();
  }

  private async withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new KataError('E_TIMEOUT', `${what}: no answer within ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private onData(d: string): void {
    this.buf += d;
    if (this.buf.length > 1 << 20) {
      this.close(new KataError('E_VM', 'QMP: oversized message'));
      return;
    }
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line !== '') this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let m: unknown;
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    if (!isRecord(m)) return;
    if ('QMP' in m) {
      this.greeting?.resolve();
      this.greeting = undefined;
      return;
    }
    if (typeof m['event'] === 'string') {
      this.onEvent?.({ event: m['event'], data: m['data'] });
      return;
    }
    const id = typeof m['id'] === 'string' ? m['id'] : undefined;
    if (id === undefined) return;
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    clearTimeout(w.timer);
    if ('return' in m) w.resolve(m['return']);
    else {
      const err = isRecord(m['error']) ? m['error'] : {};
      const desc = typeof err['desc'] === 'string' ? err['desc'] : 'unknown error';
      w.reject(new KataError('E_VM', `QMP: ${desc}`));
    }
  }
}
