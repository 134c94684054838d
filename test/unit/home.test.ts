import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withDefaultHome } from '../../src/oci/home.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-home-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
fs.mkdirSync(path.join(root, 'etc', 'real'), { recursive: true });
fs.writeFileSync(path.join(root, 'etc', 'real', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nu:x:7:7::/home/u:/bin/sh\nnohome:x:8:8:::/bin/sh\n');
// An absolute link: it must resolve inside the rootfs, never to the host's /etc.
fs.symlinkSync('/etc/real/passwd', path.join(root, 'etc', 'passwd'));

describe('withDefaultHome (runc: HOME from passwd when missing or empty, else /)', () => {
  it.each([
    [['A=1'], 0, ['A=1', 'HOME=/root']],
    [['HOME='], 7, ['HOME=/home/u']],
    [['HOME=/x', 'A=1'], 7, ['HOME=/x', 'A=1']],
    [['HOME=/x', 'HOME='], 0, ['HOME=/root']],
    [[], 8, ['HOME=/']],
    [[], 1000, ['HOME=/']],
  ])('%j as uid %d → %j', (env, uid, want) => {
    expect(withDefaultHome(env, uid, root)).toEqual(want);
  });

  it('a passwd link that loops or leads nowhere means no entry', () => {
    const r2 = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-home-'));
    fs.mkdirSync(path.join(r2, 'etc'));
    fs.symlinkSync('passwd', path.join(r2, 'etc', 'passwd'));
    expect(withDefaultHome([], 0, r2)).toEqual(['HOME=/']);
    fs.rmSync(r2, { recursive: true });
  });
});
