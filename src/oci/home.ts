import fs from 'node:fs';
import path from 'node:path';

/**
 * runc's HOME rule, applied to a process before it goes to the guest: when its environment has no
 * HOME, or an empty one, HOME becomes the user's home directory from the container's /etc/passwd,
 * or `/` when the user has no entry there. crun would leave an empty HOME empty and an unknown
 * user's unset.
 */
export function withDefaultHome(env: readonly string[], uid: number, rootfs: string): string[] {
  const last = env.filter((e) => e.startsWith('HOME=')).pop();
  if (last !== undefined && last !== 'HOME=') return [...env];
  return [...env.filter((e) => !e.startsWith('HOME=')), `HOME=${passwdHome(uid, rootfs) ?? '/'}`];
}

/** The home directory of `uid` in the rootfs's /etc/passwd (read as the container would see it). */
function passwdHome(uid: number, rootfs: string): string | undefined {
  const file = resolveInRoot(rootfs, '/etc/passwd');
  let text: string;
  try {
    if (file === undefined || !fs.statSync(file).isFile()) return undefined;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && f[2] === String(uid) && f[5] !== '') return f[5];
  }
  return undefined;
}

/**
 * `p` resolved inside `root` as if root were `/`: symlinks (absolute ones too) never lead out of
 * it, as they would not in the container. undefined for a loop or a missing component.
 */
export function resolveInRoot(root: string, p: string): string | undefined {
  const todo = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  for (let links = 0; todo.length > 0; ) {
    const c = todo.shift() ?? '';
    if (c === '..') {
      done.pop();
      continue;
    }
    const here = path.join(root, ...done, c);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(here);
    } catch {
      // Missing from here on: nothing below can be a symlink.
      return path.join(here, ...todo.filter((x) => x !== '..'));
    }
    if (!st.isSymbolicLink()) {
      done.push(c);
      continue;
    }
    if (++links > 40) return undefined;
    const target = fs.readlinkSync(here);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return path.join(root, ...done);
}
