#!/usr/bin/env node
// Fails when the host sources have an import cycle: layers import downwards only
// (commands → runtime → monitor/vm/channel/oci → util), and a cycle is the first sign of a
// layer reaching back up. Reads src/ and bench/ directly; no build needed.
import fs from 'node:fs';
import path from 'node:path';

const top = path.resolve(import.meta.dirname, '..');
const files = [];
const walk = (d) => {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) files.push(p);
  }
};
for (const d of ['src', 'bench']) if (fs.existsSync(path.join(top, d))) walk(path.join(top, d));

const edges = new Map();
const importRe = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;
for (const f of files) {
  const text = fs.readFileSync(f, 'utf8');
  const deps = [];
  for (const m of text.matchAll(importRe)) {
    const target = path.resolve(path.dirname(f), m[1].replace(/\.js$/, '.ts'));
    if (fs.existsSync(target)) deps.push(target);
  }
  edges.set(f, deps);
}

// Depth-first search with colours; report each cycle once.
const colour = new Map();
const stack = [];
const cycles = [];
const visit = (f) => {
  colour.set(f, 'grey');
  stack.push(f);
  for (const d of edges.get(f) ?? []) {
    if (colour.get(d) === 'grey') cycles.push([...stack.slice(stack.indexOf(d)), d]);
    else if (!colour.has(d)) visit(d);
  }
  stack.pop();
  colour.set(f, 'black');
};
for (const f of files) if (!colour.has(f)) visit(f);

if (cycles.length > 0) {
  for (const c of cycles) console.error(`import cycle: ${c.map((f) => path.relative(top, f)).join(' -> ')}`);
  process.exit(1);
}
console.log(`no import cycles in ${files.length} files`);
