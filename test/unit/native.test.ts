// The native addon (native/kata_native.c via src/native): ptys, termios, window sizes and runc's
// --console-socket fd passing, including socket paths longer than sun_path's 108 bytes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tty from 'node:tty';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  getWinsize,
  listenUnix,
  nativeAddonPath,
  openPty,
  recvFd,
  recvFdFromListener,
  sendFd,
  setRaw,
  setWinsize,
  type Pty,
} from '../../src/native/index.js';

const O_CLOEXEC = 0o2000000;

let dir = '';
let opened: number[] = [];

/** Remembers fds to close after the test; closing a pty's ends also unblocks stray reads. */
function track<T extends number>(fd: T): T {
  opened.push(fd);
  return fd;
}

function newPty(): Pty {
  const p = openPty();
  track(p.master);
  track(p.slave);
  return p;
}

function closeOnExec(fd: number): boolean {
  const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const m = /^flags:\s*([0-7]+)$/m.exec(info);
  if (m?.[1] === undefined) throw new Error(`no flags in fdinfo of ${fd}`);
  return (Number.parseInt(m[1], 8) & O_CLOEXEC) !== 0;
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Reads exactly n bytes from fd (thread-pool reads, so a missing byte fails the test, not hangs it). */
async function readExactly(fd: number, n: number, timeoutMs = 3000): Promise<Buffer> {
  const buf = Buffer.alloc(n);
  let off = 0;
  const deadline = Date.now() + timeoutMs;
  while (off < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`read ${off} of ${n} bytes from fd ${fd} before the timeout`);
    let timer: NodeJS.Timeout | undefined;
    const got = await Promise.race([
      new Promise<number>((resolve, reject) => {
        fs.read(fd, buf, off, n - off, null, (err, bytes) => (err ? reject(err) : resolve(bytes)));
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`read ${off} of ${n} bytes from fd ${fd} before the timeout`)), left);
      }),
    ]).finally(() => clearTimeout(timer));
    if (got === 0) throw new Error(`EOF on fd ${fd} after ${off} of ${n} bytes`);
    off += got;
  }
  return buf;
}

function errorOf(fn: () => unknown): Error & { code?: unknown } {
  try {
    fn();
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`threw a non-Error: ${String(err)}`);
  }
  throw new Error('did not throw');
}

/** A socket path in a nested directory, longer than sun_path (108 bytes). */
function longSocketPath(name = 'console.sock'): string {
  const deep = path.join(dir, 'a'.repeat(60), 'b'.repeat(60));
  fs.mkdirSync(deep, { recursive: true });
  const p = path.join(deep, name);
  expect(Buffer.byteLength(p)).toBeGreaterThan(108);
  return p;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-native-'));
  opened = [];
});

afterEach(() => {
  for (const fd of opened) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed by the test
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('native addon', () => {
  it('is built where the wrapper looks for it', () => {
    expect(nativeAddonPath()).toMatch(/native\/build\/Release\/kata_native\.node$/);
    expect(fs.existsSync(nativeAddonPath())).toBe(true);
  });
});

describe('openPty and setRaw', () => {
  it('opens a close-on-exec pty pair named /dev/pts/N', () => {
    const p = newPty();
    expect(p.name).toMatch(/^\/dev\/pts\/\d+$/);
    expect(tty.isatty(p.master)).toBe(true);
    expect(tty.isatty(p.slave)).toBe(true);
    expect(fs.readlinkSync(`/proc/self/fd/${p.slave}`)).toBe(p.name);
    expect(closeOnExec(p.master)).toBe(true);
    expect(closeOnExec(p.slave)).toBe(true);
  });

  it('passes every byte value unchanged both ways once the slave is raw', async () => {
    const p = newPty();
    setRaw(p.slave);
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    fs.writeSync(p.master, all);
    expect(await readExactly(p.slave, all.length)).toEqual(all);
    const back = Buffer.from(all).reverse();
    fs.writeSync(p.slave, back);
    expect(await readExactly(p.master, back.length)).toEqual(back);
  });

  it('without setRaw the line discipline rewrites bytes (the control case)', async () => {
    const p = newPty();
    fs.writeSync(p.master, 'a\r');
    // ICRNL turns the CR into a newline on input; echo and ONLCR show up on the master side.
    expect((await readExactly(p.slave, 2)).toString()).toBe('a\n');
  });

  it('setRaw fails with ENOTTY on a non-terminal', () => {
    const fd = track(fs.openSync('/dev/null', 'r'));
    const err = errorOf(() => setRaw(fd));
    expect(err.code).toBe('ENOTTY');
    expect(err.message).toBe(`setRaw: tcgetattr fd ${fd}: Inappropriate ioctl for device`);
  });
});

describe('getWinsize and setWinsize', () => {
  it('round-trips a size set on either end', () => {
    const p = newPty();
    setWinsize(p.master, 40, 132);
    expect(getWinsize(p.slave)).toEqual({ rows: 40, cols: 132 });
    setWinsize(p.slave, 65535, 1);
    expect(getWinsize(p.master)).toEqual({ rows: 65535, cols: 1 });
    setWinsize(p.master, 0, 0);
    expect(getWinsize(p.master)).toEqual({ rows: 0, cols: 0 });
  });

  it('refuses sizes outside 0..65535 and non-terminals', () => {
    const p = newPty();
    expect(() => setWinsize(p.master, 65536, 80)).toThrow(TypeError);
    expect(() => setWinsize(p.master, 24, -1)).toThrow(TypeError);
    expect(() => setWinsize(p.master, 24.5, 80)).toThrow(TypeError);
    const fd = track(fs.openSync('/dev/null', 'r'));
    const err = errorOf(() => getWinsize(fd));
    expect(err.code).toBe('ENOTTY');
    expect(err.message).toBe(`getWinsize: fd ${fd}: Inappropriate ioctl for device`);
    expect(errorOf(() => setWinsize(fd, 1, 1)).code).toBe('ENOTTY');
  });
});

describe('sendFd and recvFd (runc --console-socket)', () => {
  it('passes the pty slave with its name as the data, and the fd works', async () => {
    const p = newPty();
    setRaw(p.slave);
    const sock = path.join(dir, 'console.sock');
    const received = recvFdFromListener(sock, 5000);
    expect(fs.statSync(sock).isSocket()).toBe(true);
    sendFd(sock, p.slave, p.name);
    const got = await received;
    track(got.fd);
    expect(got.data).toBe(p.name);
    expect(got.fd).not.toBe(p.slave);
    expect(closeOnExec(got.fd)).toBe(true);
    expect(fs.readlinkSync(`/proc/self/fd/${got.fd}`)).toBe(p.name);
    expect(fs.existsSync(sock)).toBe(false); // the listener cleaned up after itself

    fs.closeSync(p.slave); // only the received copy is left
    fs.writeSync(got.fd, 'through the passed fd');
    expect((await readExactly(p.master, 21)).toString()).toBe('through the passed fd');
    fs.writeSync(p.master, 'and back');
    expect((await readExactly(got.fd, 8)).toString()).toBe('and back');
  });

  it('listenUnix + recvFd serve several senders on one listener; data may be any UTF-8', async () => {
    const sock = path.join(dir, 'l.sock');
    const lfd = track(listenUnix(sock));
    expect(closeOnExec(lfd)).toBe(true);
    const datas = ['/dev/pts/7', 'é ✓ 𝄞', 'x'.repeat(5000)];
    for (const [i, data] of datas.entries()) {
      const file = path.join(dir, `out-${i}`);
      const w = fs.openSync(file, 'w');
      sendFd(sock, w, data);
      fs.closeSync(w);
      const got = await recvFd(lfd, 5000);
      expect(got.data).toBe(data);
      fs.writeSync(got.fd, `written through copy ${i}`);
      fs.closeSync(got.fd);
      expect(fs.readFileSync(file, 'utf8')).toBe(`written through copy ${i}`);
    }
  });

  it('works with a socket path longer than 108 bytes', async () => {
    const p = newPty();
    const sock = longSocketPath();
    const received = recvFdFromListener(sock, 5000);
    expect(fs.statSync(sock).isSocket()).toBe(true);
    sendFd(sock, p.slave, p.name);
    const got = await received;
    track(got.fd);
    expect(got.data).toBe(p.name);
    setRaw(got.fd);
    fs.writeSync(p.master, 'long path');
    expect((await readExactly(p.slave, 9)).toString()).toBe('long path');
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('fails with ENOENT, naming the call and the path, for a missing socket', () => {
    const p = newPty();
    const before = openFds();
    const missing = path.join(dir, 'nope.sock');
    const err = errorOf(() => sendFd(missing, p.slave, p.name));
    expect(err.code).toBe('ENOENT');
    expect(err.message).toBe(`sendFd: connect ${missing}: No such file or directory`);
    const longMissing = longSocketPath('nope.sock');
    const err2 = errorOf(() => sendFd(longMissing, p.slave, p.name));
    expect(err2.code).toBe('ENOENT');
    expect(err2.message).toBe(`sendFd: connect ${longMissing}: No such file or directory`);
    const noDir = path.join(dir, 'c'.repeat(100), 'console.sock');
    expect(errorOf(() => sendFd(noDir, p.slave, p.name)).code).toBe('ENOENT');
    expect(openFds()).toBe(before); // no socket or directory fd leaked
  });

  it('fails with ECONNREFUSED when nobody listens any more', () => {
    const p = newPty();
    const sock = path.join(dir, 'dead.sock');
    fs.closeSync(listenUnix(sock)); // the socket file stays behind
    const err = errorOf(() => sendFd(sock, p.slave, p.name));
    expect(err.code).toBe('ECONNREFUSED');
    expect(err.message).toBe(`sendFd: connect ${sock}: Connection refused`);
  });

  it('refuses bad arguments', () => {
    const p = newPty();
    const sock = path.join(dir, 's.sock');
    track(listenUnix(sock));
    expect(() => sendFd(sock, -1, 'x')).toThrow(TypeError);
    expect(() => sendFd(sock, 1.5, 'x')).toThrow(TypeError);
    expect(() => sendFd(`${sock}\0x`, p.slave, 'x')).toThrow(TypeError);
    expect(errorOf(() => sendFd(sock, p.slave, '')).code).toBe('EINVAL');
    const notOpen = 2_000_000_000;
    const err = errorOf(() => sendFd(sock, notOpen, 'x'));
    expect(err.code).toBe('EBADF');
    expect(err.message).toBe(`sendFd: fd ${notOpen}: Bad file descriptor`);
  });

  it('a listener that gets no sender times out with ETIMEDOUT and removes its socket', async () => {
    const sock = path.join(dir, 'idle.sock');
    const received = recvFdFromListener(sock, 50);
    await expect(received).rejects.toMatchObject({
      code: 'ETIMEDOUT',
      message: `recvFdFromListener: accept ${sock}: Connection timed out`,
    });
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('recvFdFromListener throws at once when the path is taken', () => {
    const sock = path.join(dir, 'taken.sock');
    fs.writeFileSync(sock, '');
    const err = errorOf(() => void recvFdFromListener(sock, 1000));
    expect(err.code).toBe('EADDRINUSE');
    expect(err.message).toBe(`recvFdFromListener: bind ${sock}: Address already in use`);
  });
});
