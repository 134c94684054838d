#!/usr/bin/env node
// kata-runtime: runc's command line, every container in its own VM.
import { run, flush } from '@oclif/core';
import { normalizeArgv } from '../dist/src/cli/argv.js';

const argv = normalizeArgv(process.argv.slice(2));
try {
  await run(argv, import.meta.url);
  await flush();
} catch (err) {
  // oclif's own failures (unknown verb, parse errors before a command's catch): one line, exit 1.
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${msg.split('\n')[0]}\n`);
  process.exitCode = typeof err?.oclif?.exit === 'number' && err.oclif.exit !== 0 ? 1 : process.exitCode ?? 1;
}
