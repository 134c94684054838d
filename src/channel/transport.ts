import { spawn } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { KataError } from '../errors.js';

/** A way to reach the agent: both give one byte stream; the framing above them is the same. */
export interface Transport {
  readonly name: 'serial' | 'vsock';
  connect(): Promise<Duplex>;
}

/** virtio-serial: QEMU listens on a unix socket for the `agent.0` port. */
export class SerialTransport implements Transport {
  readonly name = 'serial';
  constructor(private readonly socketPath: string) {}

  connect(): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(this.socketPath);
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => reject(new KataError('E_AGENT', `cannot connect to the agent port ${this.socketPath}: ${e.message}`)));
    });
  }
}

/** socat's address for a guest vsock port. */
export function vsockAddress(cid: number, port: number): string {
  if (!Number.isInteger(cid) || cid < 3 || cid > 0xfffffffe) throw new KataError('E_INVALID_ARGUMENT', `invalid vsock guest cid ${cid}`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) throw new KataError('E_INVALID_ARGUMENT', `invalid vsock port ${port}`);
  return `VSOCK-CONNECT:${cid}:${port}`;
}

/**
 * vsock (vhost-vsock-pci): Node has no AF_VSOCK, so socat carries the connection and its stdin /
 * stdout are the byte stream. `address` is socat's address (vsockAddress(); tests pass a unix one).
 */
export class VsockTransport implements Transport {
  readonly name = 'vsock';
  constructor(
    private readonly address: string,
    private readonly socat = 'socat',
  ) {}

  connect(): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.socat, ['-b65536', '-', this.address], { stdio: ['pipe', 'pipe', 'ignore'] });
      let settled = false;
      child.once('error', (e) => {
        if (!settled) reject(new KataError('E_AGENT', `cannot start socat for vsock: ${e.message}`));
        settled = true;
      });
      child.once('spawn', () => {
        settled = true;
        const { stdin, stdout } = child;
        if (stdin === null || stdout === null) {
          reject(new KataError('E_INTERNAL', 'socat has no pipes'));
          return;
        }
        const d = Duplex.from({ readable: stdout, writable: stdin });
        d.on('close', () => child.kill('SIGKILL'));
        child.once('exit', () => d.destroy());
        resolve(d);
      });
    });
  }
}
