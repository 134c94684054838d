import type { Writable } from 'node:stream';

/**
 * `events` subscribers of one container. The lines come from the guest (oom), which is untrusted:
 * a guest flooding events towards a subscriber that does not read must not grow the monitor's
 * memory, so a subscriber with more than MAX_BACKLOG bytes queued is dropped (its `events` call
 * ends, as if the container had stopped).
 */
export const MAX_BACKLOG = 1 << 20;

export class Subscribers {
  private readonly socks = new Set<Writable>();

  add(sock: Writable): void {
    this.socks.add(sock);
    sock.on('close', () => this.socks.delete(sock));
  }

  send(line: string): void {
    for (const s of this.socks) {
      if (s.writableLength > MAX_BACKLOG) {
        this.socks.delete(s);
        s.destroy();
      } else {
        s.write(line);
      }
    }
  }

  endAll(): void {
    for (const s of this.socks) s.end();
  }

  get size(): number {
    return this.socks.size;
  }
}

/** At most one call of `emit` per `intervalMs`; the calls skipped in between are counted. */
export class RateLimited {
  private last = -Infinity;
  private skipped = 0;
  constructor(
    private readonly intervalMs: number,
    private readonly emit: (skipped: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  hit(): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) {
      this.skipped++;
      return;
    }
    this.last = t;
    const n = this.skipped;
    this.skipped = 0;
    this.emit(n);
  }
}
