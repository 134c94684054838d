import { spawnSync } from 'node:child_process';
import tty from 'node:tty';

/**
 * Puts the caller's terminal (fd 0) in raw mode, as runc does for `run -t` / `exec -t` without a
 * console socket, and returns the function that restores it. Uses stty(1) so that nothing in this
 * process switches fd 0 to non-blocking mode. Not a terminal: nothing to do.
 */
export function makeRaw(): () => void {
  if (!tty.isatty(0)) return () => undefined;
  const saved = spawnSync('stty', ['-g'], { stdio: ['inherit', 'pipe', 'ignore'], encoding: 'utf8' });
  if (saved.status !== 0) return () => undefined;
  spawnSync('stty', ['raw', '-echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
  const state = saved.stdout.trim();
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    spawnSync('stty', [state], { stdio: ['inherit', 'ignore', 'ignore'] });
  };
  process.once('exit', restore);
  return restore;
}
