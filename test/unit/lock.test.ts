import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KataError } from '../../src/errors.js';
import { StateStore } from '../../src/runtime/store.js';

// The lock between real processes: the other party runs the built store (npm run build).
const STORE = path.resolve(import.meta.dirname, '..', '..', 'dist', 'src', 'runtime', 'store.js');

let root: string;
const children: ChildProcess[] = [];
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-lock-'));
  fs.mkdirSync(path.join(root, 'c1'), { mode: 0o700 });
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

/** Another process that takes c1's lock, prints "held" and keeps it until killed. */
async function holder(): Promise<ChildProcess> {
  const code = `const { StateStore } = await import(${JSON.stringify(STORE)});
    await new StateStore(${JSON.stringify(root)}).withLock('c1', async () => {
      process.stdout.write('held\\n');
      await new Promise(() => setInterval(() => undefined, 1000));
    });`;
  const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout?.once('data', () => resolve());
    c.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  return c;
}

describe('StateStore.withLock (flock)', () => {
  it('times out naming the holder, and is free as soon as the holder is SIGKILLed', async () => {
    const h = await holder();
    const store = new StateStore(root);
    const t = Date.now();
    const err = await store.withLock('c1', async () => 'got it', 400).catch((e: unknown) => e);
    expect(Date.now() - t).toBeGreaterThanOrEqual(400);
    expect(err).toBeInstanceOf(KataError);
    expect((err as KataError).code).toBe('E_TIMEOUT');
    expect((err as KataError).message).toBe(`container c1 is locked by process ${h.pid} (waited 0.4 s)`);
    // A waiter started before the kill gets the lock once the kernel drops the dead holder's.
    const waiting = store.withLock('c1', async () => 'got it', 10000);
    await new Promise((r) => setTimeout(r, 100));
    h.kill('SIGKILL');
    expect(await waiting).toBe('got it');
  });

  it('excludes: 6 processes x 25 read-modify-write increments lose none', async () => {
    const counter = path.join(root, 'counter');
    fs.writeFileSync(counter, '0');
    const code = `const fs = await import('node:fs');
      const { StateStore } = await import(${JSON.stringify(STORE)});
      const s = new StateStore(${JSON.stringify(root)});
      for (let i = 0; i < 25; i++) await s.withLock('c1', async () => {
        const n = Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8'));
        await new Promise((r) => setTimeout(r, 1));
        fs.writeFileSync(${JSON.stringify(counter)}, String(n + 1));
      });`;
    const runs = Array.from({ length: 6 }, () => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'inherit' });
      children.push(c);
      return new Promise<number | null>((resolve) => c.once('exit', resolve));
    });
    expect(await Promise.all(runs)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(fs.readFileSync(counter, 'utf8')).toBe('150');
  });

  it('fails E_NOT_FOUND for a container whose directory is removed while waiting', async () => {
    const h = await holder();
    const store = new StateStore(root);
    const waiting = store.withLock('c1', async () => 'ran', 10000).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    fs.rmSync(path.join(root, 'c1'), { recursive: true }); // what delete does under the lock
    h.kill('SIGKILL');
    const err = await waiting;
    expect(err).toBeInstanceOf(KataError);
    expect((err as KataError).code).toBe('E_NOT_FOUND');
  });

  it('locks a recreated container\'s new file, not the removed one', async () => {
    const h = await holder();
    const store = new StateStore(root);
    let ran = false;
    const waiting = store.withLock('c1', async () => {
      ran = true;
      // The file we hold is the one at the path now, with our pid in it.
      return fs.readFileSync(path.join(root, 'c1', 'lock'), 'utf8');
    }, 10000);
    await new Promise((r) => setTimeout(r, 100));
    fs.rmSync(path.join(root, 'c1'), { recursive: true });
    fs.mkdirSync(path.join(root, 'c1'), { mode: 0o700 }); // the id reused at once
    h.kill('SIGKILL');
    expect(await waiting).toBe(`${process.pid}\n`);
    expect(ran).toBe(true);
  });

  it('the lock fd is not inherited by children (close-on-exec)', async () => {
    const store = new StateStore(root);
    await store.withLock('c1', async () => {
      const lockPath = fs.realpathSync(path.join(root, 'c1', 'lock'));
      const fds = fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === lockPath;
        } catch {
          return false;
        }
      });
      expect(fds).toHaveLength(1);
      const flags = /flags:\s+([0-7]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fds[0] ?? ''}`, 'utf8'))?.[1] ?? '0';
      expect(Number.parseInt(flags, 8) & 0o2000000).toBe(0o2000000); // O_CLOEXEC
    });
  });
});
