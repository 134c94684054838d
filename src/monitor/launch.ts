import fs from 'node:fs';
import { KataError } from '../errors.js';
import type { RuntimeConfig } from '../config.js';
import type { ShareBind } from '../oci/translate.js';

/** What `create` hands the monitor (written to <state>/launch.json before the monitor starts). */
export interface Launch {
  id: string;
  bundle: string;
  rootfs: string;
  /** The spec as the guest will run it (toGuestSpec). */
  guestSpec: unknown;
  config: RuntimeConfig;
  /** Bind mounts' host sources, bound into the share next to the rootfs. */
  binds: ShareBind[];
  /**
   * For a container with a terminal: the caller's --console-socket (absolute), which gets the
   * master of a host pty; without one (foreground `run -t`) the monitor's own fds 0/1 are the
   * caller's terminal.
   */
  consoleSocket?: string;
}

/** The one line the monitor writes to its ready pipe (fd 3). */
export type ReadyReport = { ok: true; pid: number } | { ok: false; code: string; message: string };

/** The ready pipe a detached child (monitor, exec helper) reports on to the CLI that started it. */
export const READY_FD = 3;

/** Writes the one report line and closes the pipe; a CLI that went away is not an error. */
export function reportReady(r: ReadyReport): void {
  try {
    fs.writeSync(READY_FD, JSON.stringify(r) + '\n');
    fs.closeSync(READY_FD);
  } catch {
    // nobody is listening any more: nothing to tell
  }
}

export function decodeLaunch(text: string): Launch {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || !('id' in v) || !('config' in v)) throw new KataError('E_INTERNAL', 'bad launch file');
  // Written by our own CLI a moment ago in a 0700 directory.
  return v as Launch;
}
