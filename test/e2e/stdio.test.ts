import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, kr, leftovers, requirePrerequisites, testEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('stdio');
});
afterAll(() => env.cleanup());

describe('stdio passes through the VM unchanged', () => {
  it('round-trips stdin, and the process sees its end', async () => {
    const b = env.bundle('cat', ['sh', '-c', 'cat; echo "<eof>"']);
    const input = 'line one\nline two\n\u00e9\u00e8 bytes \u0000 and more\n';
    const r = await kr(env.root, ['run', '-b', b, 'cat'], { input });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(`${input}<eof>\n`);
  });

  it('keeps stdout and stderr apart', async () => {
    const b = env.bundle('split', ['sh', '-c', 'echo to-out; echo to-err >&2; echo out2; echo err2 >&2']);
    const r = await kr(env.root, ['run', '-b', b, 'split']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('to-out\nout2\n');
    expect(r.stderr).toBe('to-err\nerr2\n');
  });

  it('delivers 100 MiB of stdout intact', async () => {
    // a deterministic stream the host can recompute: 100 MiB of /dev/zero piped through a counter
    const b = env.bundle('big', ['sh', '-c', 'head -c 104857600 /dev/zero | tr "\\000" "k"']);
    const r = await kr(env.root, ['run', '-b', b, 'big'], { timeoutMs: 280000 });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(104857600);
    const want = crypto.createHash('sha256').update(Buffer.alloc(104857600, 'k')).digest('hex');
    expect(crypto.createHash('sha256').update(r.stdout).digest('hex')).toBe(want);
  });

  it('ends when the process ends, even if the caller never closes stdin (as containerd does)', async () => {
    const b = env.bundle('openstdin', ['sh', '-c', 'echo bye; exit 42']);
    const child = spawn(process.execPath, [CLI, '--root', env.root, 'run', '-b', b, 'openstdin'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    child.stdin.destroy(); // only now: the write end stayed open the whole time
    expect(code).toBe(42);
    expect(out).toBe('bye\n');
  });

  it('feeds 8 MiB of stdin through and back', async () => {
    const data = crypto.randomBytes(8 * 1024 * 1024);
    const b = env.bundle('echo', ['sh', '-c', 'cat']);
    const r = await kr(env.root, ['run', '-b', b, 'echo'], { input: data });
    expect(r.code).toBe(0);
    expect(r.stdout.equals(data)).toBe(true);
    expect(leftovers(env)).toEqual([]);
  });
});
