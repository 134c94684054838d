/**
 * The monitor's side of terminals and exec'd processes.
 *
 * TerminalRelay joins a guest pty (the agent relays it as a stdin stream and one output stream) to
 * a host terminal fd: either the slave of a host pty pair whose master went to the caller's
 * --console-socket, or the caller's own terminal (foreground `run -t`). Window-size changes on the
 * host fd are polled and passed to the guest.
 *
 * ExecSession runs one `exec` request: it asks the agent to start the process, relays its stdio
 * over the CLI's control connection (frames, src/monitor/exec-wire.ts) or its terminal, and reports
 * the exit status on that connection.
 */
import fs from 'node:fs';
import type net from 'node:net';
import type { AgentConnection, StreamSink } from '../channel/connection.js';
import type { Frame } from '../channel/frame.js';
import type { ExitEvent } from '../channel/messages.js';
import { resultInt } from '../channel/messages.js';
import { KataError } from '../errors.js';
import { getWinsize, openPty, sendFd, setRaw, setWinsize } from '../native/index.js';
import { sleep } from '../util/fsx.js';
import { decodeClientMsg, EXEC_STDERR, EXEC_STDIN, EXEC_STDOUT, FramedSocket } from './exec-wire.js';
import { FdSink, pumpFd } from './stdio.js';

const WINSIZE_POLL_MS = 200;

type Log = (level: string, msg: string) => void;

/** A host pty pair whose master was handed to a --console-socket; the slave stays here. */
export function ptyForConsoleSocket(consoleSocket: string, size: { height: number; width: number } | undefined): number {
  const pty = openPty();
  try {
    setRaw(pty.slave);
    if (size !== undefined) setWinsize(pty.slave, size.height, size.width);
    sendFd(consoleSocket, pty.master, pty.name);
  } catch (e) {
    fs.closeSync(pty.slave);
    throw new KataError('E_INVALID_ARGUMENT', `console socket ${consoleSocket}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    fs.closeSync(pty.master);
  }
  return pty.slave;
}

/** Relays a host terminal fd ⇄ a guest pty's streams and forwards its window size. */
export class TerminalRelay {
  readonly stdin: number;
  readonly stdout: number;
  private readonly abort = new AbortController();
  private last = '';

  constructor(
    private readonly conn: AgentConnection,
    private readonly inFd: number,
    outFd: number,
    private readonly resize: (rows: number, cols: number) => Promise<unknown>,
    private readonly ownsFd: boolean,
  ) {
    this.stdin = conn.openOutbound();
    this.stdout = conn.openInbound(new FdSink(outFd));
  }

  /** Starts pumping input and watching the size (after the guest process exists). */
  run(): void {
    void pumpFd(this.inFd, (b) => this.conn.write(this.stdin, b), this.abort.signal).then(() => this.conn.closeStream(this.stdin));
    void this.watchSize();
  }

  private async watchSize(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        const ws = getWinsize(this.inFd);
        const key = `${ws.rows}x${ws.cols}`;
        if (key !== this.last && ws.rows > 0 && ws.cols > 0) {
          this.last = key;
          await this.resize(ws.rows, ws.cols).catch(() => undefined);
        }
      } catch {
        return; // not a terminal (any more)
      }
      await sleep(WINSIZE_POLL_MS, this.abort.signal).catch(() => undefined);
    }
  }

  stop(): void {
    this.abort.abort();
    if (this.ownsFd) {
      try {
        fs.closeSync(this.inFd);
      } catch {
        // already closed
      }
    }
  }
}

/** Output of an exec'd process towards the CLI's connection; buffers nothing beyond one write. */
class ConnectionSink implements StreamSink {
  constructor(
    private readonly session: ExecSession,
    private readonly stream: number,
  ) {}

  async write(data: Buffer): Promise<void> {
    const f = await this.session.framed();
    if (f !== undefined) await f.sendData(this.stream, data);
  }

  end(): void {
    void this.session.framed().then((f) => f?.send({ type: 'CLOSE', stream: this.stream, payload: Buffer.alloc(0) }));
  }
}

export interface ExecRequest {
  execId: string;
  process: Record<string, unknown>;
  consoleSocket?: string;
}

export class ExecSession {
  private framedSock: FramedSocket | undefined;
  private attachedResolve!: (f: FramedSocket | undefined) => void;
  private readonly attached = new Promise<FramedSocket | undefined>((r) => (this.attachedResolve = r));
  private stdin = 0;
  private terminal: TerminalRelay | undefined;
  private exitedFlag = false;
  private doneResolve!: () => void;
  readonly done = new Promise<void>((r) => (this.doneResolve = r));

  constructor(
    private readonly conn: AgentConnection,
    private readonly containerId: string,
    private readonly req: ExecRequest,
    private readonly log: Log,
  ) {}

  /** Resolves with the connection once the CLI is attached (undefined if it never will be). */
  framed(): Promise<FramedSocket | undefined> {
    return this.attached;
  }

  /** Starts the process in the guest; resolves with its guest pid. */
  async begin(): Promise<number> {
    const proc = this.req.process;
    const tty = proc['terminal'] === true;
    const size = consoleSize(proc['consoleSize']);
    let stdio: { stdin: number | null; stdout: number | null; stderr: number | null };
    const resize = (rows: number, cols: number): Promise<unknown> =>
      this.conn.request({ op: 'resize', containerId: this.containerId, execId: this.req.execId, rows, cols });
    if (tty && this.req.consoleSocket !== undefined) {
      const slave = ptyForConsoleSocket(this.req.consoleSocket, size);
      this.terminal = new TerminalRelay(this.conn, slave, slave, resize, true);
      stdio = { stdin: this.terminal.stdin, stdout: this.terminal.stdout, stderr: null };
    } else {
      this.stdin = this.conn.openOutbound();
      stdio = {
        stdin: this.stdin,
        stdout: this.conn.openInbound(new ConnectionSink(this, EXEC_STDOUT)),
        stderr: tty ? null : this.conn.openInbound(new ConnectionSink(this, EXEC_STDERR)),
      };
    }
    try {
      const ok = await this.conn.request({ op: 'exec', containerId: this.containerId, execId: this.req.execId, process: proc, stdio }, 120000);
      const pid = resultInt(ok, 'pid', 1, 0x7fffffff);
      this.terminal?.run();
      this.log('info', `exec ${this.req.execId}: guest pid ${pid}`);
      return pid;
    } catch (e) {
      this.terminal?.stop();
      this.doneResolve();
      throw e;
    }
  }

  /** Takes over the CLI's connection after the response line. */
  attach(sock: net.Socket, rest: Buffer): void {
    const f = new FramedSocket(sock, rest, (fr) => this.onFrame(fr), (e) => this.log('warning', `exec ${this.req.execId}: ${e.message}`));
    this.framedSock = f;
    this.attachedResolve(f);
    void f.closed.then(() => {
      // The CLI (or the detached helper whose pid the caller holds) went away, e.g. killed with
      // SIGKILL, which it cannot forward: the process it stood for goes too.
      if (this.exitedFlag) return;
      if (this.stdin !== 0) this.conn.closeStream(this.stdin);
      void this.conn.request({ op: 'signal', containerId: this.containerId, execId: this.req.execId, signal: 9, all: false }).catch(() => undefined);
    });
  }

  private async onFrame(f: Frame): Promise<void> {
    if (f.type === 'DATA' && f.stream === EXEC_STDIN && this.stdin !== 0) {
      await this.conn.write(this.stdin, f.payload);
    } else if (f.type === 'CLOSE' && f.stream === EXEC_STDIN && this.stdin !== 0) {
      this.conn.closeStream(this.stdin);
    } else if (f.type === 'MSG') {
      const m = decodeClientMsg(f.payload);
      const base = { containerId: this.containerId, execId: this.req.execId };
      if ('resize' in m) await this.conn.request({ op: 'resize', ...base, rows: m.resize.rows, cols: m.resize.cols }).catch(() => undefined);
      else await this.conn.request({ op: 'signal', ...base, signal: m.signal, all: false }).catch(() => undefined);
    } else {
      throw new KataError('E_PROTOCOL', `unexpected ${f.type} frame on stream ${f.stream}`);
    }
  }

  /** The agent reported the process's end (its output streams are already closed). */
  async onExit(ev: ExitEvent): Promise<void> {
    if (this.exitedFlag) return; // a second report of the same exit (a broken guest) changes nothing
    this.exitedFlag = true;
    this.log('info', `exec ${this.req.execId} exited: ${ev.signal === null ? `code ${ev.code}` : `signal ${ev.signal}`}`);
    await this.conn.flushInbound();
    this.terminal?.stop();
    // A CLI that never attached (it died before reading the response) gets nothing.
    const f = await Promise.race([this.attached, sleep(10000).then(() => undefined)]);
    if (f !== undefined) {
      await f.sendMsg({ exit: { code: ev.code, signal: ev.signal } });
      f.end();
    }
    this.doneResolve();
  }

  /** The container is going away: the CLI learns that the process died with it. */
  abort(): void {
    this.terminal?.stop();
    const f = this.framedSock;
    if (f !== undefined && !this.exitedFlag) {
      void f.sendMsg({ exit: { code: null, signal: 9 } }).then(() => f.end());
    }
    this.attachedResolve(undefined);
    this.doneResolve();
  }
}

export function consoleSize(v: unknown): { height: number; width: number } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const h = r['height'];
  const w = r['width'];
  return typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? { height: h, width: w } : undefined;
}
