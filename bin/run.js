#!/usr/bin/env node
// kata-runtime: runc's command line, every container in its own VM.
import { installStdio, writeOut } from '../dist/src/cli/stdio.js';
import { normalizeArgv } from '../dist/src/cli/argv.js';
import { fastState } from '../dist/src/cli/fast.js';

// First: whatever fds 1 and 2 are (a read-only /dev/null, a pipe whose reader is gone), writing
// to them behaves as in runc and never crashes us (src/cli/stdio.ts).
installStdio();
const argv = normalizeArgv(process.argv.slice(2));
// `state` skips oclif's start-up when it can (src/cli/fast.ts); anything else goes through oclif.
// runc prints state with fmt and ignores a write error: so do we.
if (!fastState(argv, (s) => writeOut(s, false))) await runOclif();

async function runOclif() {
  const { run } = await import('@oclif/core');
  try {
    // No oclif flush(): every write is synchronous (installStdio), there is nothing to wait for.
    await run(argv, import.meta.url);
  } catch (err) {
    // oclif's own failures (unknown verb, parse errors before a command's catch): one line, exit 1.
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${msg.split('\n')[0]}\n`);
    process.exitCode = typeof err?.oclif?.exit === 'number' && err.oclif.exit !== 0 ? 1 : process.exitCode ?? 1;
  }
}
