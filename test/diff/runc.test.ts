import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsMentioning, processesMentioning, requirePrerequisites } from '../e2e/helpers.js';
import { CASES } from './cases.js';
import { ALL_FIELDS, comparable, runCase, runcInstalled, type Outcome, type Runtime } from './harness.js';

/**
 * "Proven against runc" (issue 4): every bundle of the table in cases.ts runs under runc and under
 * kata-runtime, one VM at a time, and must give the same results. docs/differential.md.
 */

let work = '';
let roots: Record<Runtime, string>;
const timings: string[] = [];

beforeAll(() => {
  requirePrerequisites();
  if (runcInstalled() === undefined) {
    throw new Error('runc is not installed or does not run: the differential suite compares against it (scripts/setup.sh installs Debian\'s runc)');
  }
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-diff-'));
  roots = { runc: path.join(work, 'runc-root'), kata: path.join(work, 'kata-root') };
});

afterAll(() => {
  if (work !== '') fs.rmSync(work, { recursive: true, force: true });
  if (timings.length > 0) process.stdout.write(`differential timings (runc / kata-runtime):\n${timings.join('\n')}\n`);
});

const DOC = path.resolve(import.meta.dirname, '..', '..', 'docs', 'differential.md');

describe('the differential table', () => {
  it('has at least 40 uniquely named cases, each with a row in docs/differential.md', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    const names = CASES.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    const doc = fs.readFileSync(DOC, 'utf8');
    const rows = new Set([...doc.matchAll(/^\| `([a-z0-9.-]+)` \|/gm)].map((m) => m[1]));
    expect(names.filter((n) => !rows.has(n))).toEqual([]);
    expect([...rows].filter((n) => n !== undefined && !names.includes(n))).toEqual([]);
  });

  it('lists every case awaiting a fix elsewhere under its own heading in docs/differential.md', () => {
    const doc = fs.readFileSync(DOC, 'utf8');
    const section = doc.slice(doc.indexOf('## Awaiting a fix'));
    expect(CASES.filter((c) => c.awaiting !== undefined && !section.includes(`\`${c.name}\``)).map((c) => c.name)).toEqual([]);
  });

  it('documents why whenever a case compares less than everything or normalises', () => {
    for (const c of CASES) {
      const partial = c.compare !== undefined && ALL_FIELDS.some((f) => !c.compare?.includes(f));
      if (partial || (c.normalise ?? []).length > 0) expect(c.exception ?? '', c.name).not.toBe('');
    }
  });
});

function show(o: Outcome): string {
  const cut = (s: string): string => (s.length > 2000 ? `${s.slice(0, 2000)}... (${s.length} chars)` : s);
  return JSON.stringify({ code: o.code, signal: o.signal, stdout: cut(o.stdout), stderr: cut(o.stderr), host: cut(o.host) }, null, 2);
}

describe('kata-runtime gives the results runc gives', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const r = await runCase(c, work, roots);
      timings.push(`  ${c.name}: ${r.runc.ms} ms / ${r.kata.ms} ms`);
      const both = `runc: ${show(r.runc)}\nkata-runtime: ${show(r.kata)}`;
      // runc's own result is what the case is about (not a bundle both reject for another reason).
      expect(r.runc.code, `runc's exit code\n${both}`).toBe(c.expect.code);
      for (const f of ['stdout', 'stderr', 'host'] as const) {
        const want = c.expect[f];
        if (want !== undefined) expect(r.runc[f], `runc's ${f}\n${both}`).toMatch(want);
      }
      if (c.awaiting === undefined) {
        expect(comparable(c, r.kata, 'kata'), `kata-runtime differs from runc\n${both}`).toEqual(comparable(c, r.runc, 'runc'));
      } else {
        // A known divergence awaiting a change elsewhere (docs/differential.md): kata-runtime must
        // still do exactly what is recorded; once it gives runc's result, `awaiting` goes.
        expect(comparable(c, r.kata, 'kata'), `kata-runtime now gives runc's result: remove the case's \`awaiting\`\n${both}`).not.toEqual(comparable(c, r.runc, 'runc'));
        expect(r.kata.stdout, `kata-runtime no longer does what \`awaiting\` records (fix: ${c.awaiting.fix})\n${both}`).toMatch(c.awaiting.now);
      }
    });
  }

  it('leaves no container, process or mount of the suite behind', () => {
    const left = [...processesMentioning(work), ...mountsMentioning(work)];
    for (const root of Object.values(roots)) if (fs.existsSync(root)) left.push(...fs.readdirSync(root).map((d) => `${root}/${d}`));
    expect(left).toEqual([]);
  });
});
