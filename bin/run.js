#!/usr/bin/env node
// kata-runtime: runc's command line, every container in its own VM.
import { normalizeArgv } from '../dist/src/cli/argv.js';
import { fastState } from '../dist/src/cli/fast.js';

const argv = normalizeArgv(process.argv.slice(2));
// `state` skips oclif's start-up when it can (src/cli/fast.ts); anything else goes through oclif.
if (!fastState(argv, (s) => process.stdout.write(s))) await runOclif();

async function runOclif() {
  const { run, flush } = await import('@oclif/core');
  try {
    await run(argv, import.meta.url);
    await flush();
  } catch (err) {
    // oclif's own failures (unknown verb, parse errors before a command's catch): one line, exit 1.
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${msg.split('\n')[0]}\n`);
    process.exitCode = typeof err?.oclif?.exit === 'number' && err.oclif.exit !== 0 ? 1 : process.exitCode ?? 1;
  }
}
