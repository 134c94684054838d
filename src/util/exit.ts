import { exitNow } from '../native/index.js';
import type { ExitStatus } from '../runtime/store.js';

/**
 * Ends this process the way the container's process ended: with its exit code, or killed by the
 * same signal, so that a caller's waitpid() sees what it would have seen under runc. The given
 * signals' handlers are removed first so the signal is not caught. Exits with _exit (see
 * exitNow): a thread-pool read of the caller's stdin may be blocked for ever.
 */
export function exitLike(status: ExitStatus, handled: readonly NodeJS.Signals[] = []): never {
  if (status.signal !== null) {
    const sig = status.signal;
    for (const s of handled) process.removeAllListeners(s);
    try {
      process.kill(process.pid, sig);
    } catch {
      // fall through to the exit code
    }
    // Signals the process cannot die from (ignored by default) end as 128+N, as a shell reports it.
    const t = Date.now();
    while (Date.now() - t < 200) {
      // give the kernel a moment to deliver it
    }
    exitNow(128 + sig);
  }
  exitNow(status.code ?? 0);
}
