import fs from 'node:fs';
import { KataError, errnoCode } from '../errors.js';
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
  /** The VM's network: docs/networking.md. The monitor was started in the container's netns. */
  network: LaunchNetwork;
}

export interface LaunchNetwork {
  /** Mirror the netns's interfaces into the VM (after the prestart hooks); false: loopback only. */
  mirror: boolean;
  /** The netns's path when the spec named one (for `delete` after a crash); null for a new one. */
  netns: string | null;
  /** `internetworking_model`: how each interface reaches the VM (src/net/host.ts). */
  model: 'tcfilter' | 'macvtap';
}

/**
 * A line the monitor writes to its ready pipe (fd 3). `stage: 'sandbox'` comes first: the monitor
 * is up in the container's network namespace and waits for `go` (the CLI runs the createRuntime
 * and prestart hooks in between); the last line has no stage: the container is created, or not.
 */
export type ReadyReport = { ok: true; pid: number; stage?: 'sandbox' } | { ok: false; code: string; message: string };

/** The ready pipe a detached child (monitor, exec helper) reports on to the CLI that started it. */
export const READY_FD = 3;

/** Writes the one report line and closes the pipe; a CLI that went away is not an error. */
export function reportReady(r: ReadyReport): void {
  try {
    reportStage(r);
    fs.closeSync(READY_FD);
  } catch {
    // nobody is listening any more: nothing to tell
  }
}

/** Writes a report line and keeps the pipe open (the sandbox stage). */
export function reportStage(r: ReadyReport): void {
  fs.writeSync(READY_FD, JSON.stringify(r) + '\n');
}

/**
 * Blocks until the CLI writes `go` on the ready pipe; false when it closes the pipe instead (its
 * hooks failed, or it died). Blocking is fine: the monitor has nothing else to do before then.
 */
export function awaitGo(): boolean {
  const buf = Buffer.alloc(64);
  let text = '';
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(READY_FD, buf, 0, buf.length, null);
    } catch (e) {
      if (errnoCode(e) === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 10);
        continue;
      }
      return false;
    }
    if (n === 0) return false;
    text += buf.toString('utf8', 0, n);
    if (text.includes('\n')) return text === 'go\n';
  }
}

export function decodeLaunch(text: string): Launch {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null || !('id' in v) || !('config' in v)) throw new KataError('E_INTERNAL', 'bad launch file');
  // Written by our own CLI a moment ago in a 0700 directory.
  return v as Launch;
}
