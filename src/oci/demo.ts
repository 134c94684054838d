import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { defaultSpec } from './default-spec.js';

let applets: string[] | undefined;

/** A busybox root filesystem: Debian's static busybox and a symlink per applet. */
export function makeBusyboxRootfs(dir: string, busybox = '/bin/busybox'): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'root', 'usr/bin', 'sbin']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.copyFileSync(busybox, path.join(dir, 'bin', 'busybox'));
  fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  applets ??= execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a !== '' && a !== 'busybox');
  for (const a of applets) {
    const link = path.join(dir, 'bin', a);
    if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
  }
  fs.writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  fs.writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\nnobody:x:65534:\n');
}

/** A complete bundle: busybox rootfs + the default config running `args`. */
export function makeDemoBundle(dir: string, args: string[], edit?: (spec: Record<string, unknown>) => void): string {
  makeBusyboxRootfs(path.join(dir, 'rootfs'));
  const spec = defaultSpec(args);
  edit?.(spec);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return dir;
}
