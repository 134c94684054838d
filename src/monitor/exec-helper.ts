/**
 * The detached exec helper: `exec --detach --pid-file` leaves this process behind. Its pid is the
 * one in --pid-file, it holds the caller's fds 0-2 and relays them to the exec'd process over the
 * monitor's control socket, and it exits with that process's status (or dies by its signal), as
 * runc's exec'd process would. Started by src/runtime/runtime.ts with a ready pipe on fd 3.
 */
import fs from 'node:fs';
import path from 'node:path';
import { toKataError } from '../errors.js';
import { relayExec } from '../runtime/exec.js';
import { exitLike } from '../util/exit.js';
import { openMonitor, type ControlRequest } from './control.js';
import { reportReady } from './launch.js';
import { joinCgroup } from '../cgroups/host.js';
import type { CgroupDir } from '../cgroups/paths.js';

export interface ExecHelperRequest {
  req: Extract<ControlRequest, { op: 'exec' }>;
  stdio: boolean;
  tty: boolean;
  /** The container's host cgroup: the helper stands for a process of the container and joins it. */
  cgroup?: CgroupDir[];
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  const file = process.argv[3];
  if (dir === undefined || file === undefined || !path.isAbsolute(dir)) {
    process.stderr.write('usage: exec-helper <container dir> <request file>\n');
    process.exit(2);
  }
  // Written by our CLI a moment ago in the container's 0700 directory.
  const r = JSON.parse(fs.readFileSync(file, 'utf8')) as ExecHelperRequest;
  fs.rmSync(file, { force: true });
  process.chdir(dir);
  let call;
  try {
    if (r.cgroup !== undefined) {
      joinCgroup(r.cgroup, process.pid);
      // In the cgroup's memory the VM is the big process: should the limit ever be reached, the
      // OOM killer must take a helper (its process dies, as an exec'd process would) rather than
      // QEMU (the whole container). Raising one's own score needs no privilege.
      fs.writeFileSync('/proc/self/oom_score_adj', '1000');
    }
    call = await openMonitor('monitor.sock', r.req, 130000);
  } catch (e) {
    const k = toKataError(e, 'E_MONITOR');
    reportReady({ ok: false, code: k.code, message: k.oneLine() });
    process.exit(255);
  }
  reportReady({ ok: true, pid: process.pid });
  try {
    const status = await relayExec(call, { stdio: r.stdio, tty: r.tty });
    exitLike({ code: status.code, signal: status.signal }, ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2']);
  } catch {
    // The monitor went away: the process died with its container.
    exitLike({ code: null, signal: 9 });
  }
}

void main();
