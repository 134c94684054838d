import fs from 'node:fs';
import path from 'node:path';
import { KataError, errnoCode } from '../errors.js';
import type { Spec } from './spec.js';
import { schemaErrors } from './validate.js';

export interface Bundle {
  /** Absolute, resolved bundle directory. */
  dir: string;
  /** Absolute path of the root filesystem on the host. */
  rootfs: string;
  spec: Spec;
  /** The config.json text as read, passed on unchanged where the guest needs it. */
  raw: unknown;
}

const KNOWN_NAMESPACES = new Set(['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']);

function invalid(msg: string): KataError {
  return new KataError('E_INVALID_BUNDLE', msg);
}

/**
 * Loads and validates a bundle: the directory, config.json (JSON, then the runtime-spec schema,
 * then the semantic checks the schema cannot express). Throws E_INVALID_BUNDLE listing every
 * problem found, or E_UNSUPPORTED for a valid config this runtime cannot honour yet.
 */
export function loadBundle(bundleArg: string): Bundle {
  const dir = path.resolve(bundleArg);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw invalid(`bundle ${dir}: ${errnoCode(e) === 'ENOENT' ? 'no such directory' : String(e)}`);
  }
  if (!st.isDirectory()) throw invalid(`bundle ${dir}: not a directory`);
  const configPath = path.join(dir, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(configPath, 'utf8');
  } catch (e) {
    throw invalid(`${configPath}: ${errnoCode(e) === 'ENOENT' ? 'no such file or directory' : String(e)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalid(`${configPath}: invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const errors = schemaErrors(raw);
  if (errors.length > 0) throw invalid(`${configPath} does not match the OCI runtime-spec schema: ${errors.join('; ')}`);
  // The schema has checked the shape the Spec type describes.
  const spec = raw as Spec;
  const problems = semanticErrors(spec);
  if (problems.length > 0) throw invalid(`${configPath}: ${problems.join('; ')}`);
  const rootPath = spec.root?.path ?? '';
  const rootfs = path.resolve(dir, rootPath);
  let rst: fs.Stats | undefined;
  try {
    rst = fs.statSync(rootfs);
  } catch {
    rst = undefined;
  }
  if (!rst?.isDirectory()) throw invalid(`root.path ${rootfs}: no such directory`);
  unsupported(spec);
  return { dir, rootfs, spec, raw };
}

/** Checks the schema cannot express. Each entry names the JSON path it is about. */
export function semanticErrors(spec: Spec): string[] {
  const out: string[] = [];
  if (spec.process === undefined) out.push('process: is required to create a container');
  else {
    if (!spec.process.args || spec.process.args.length === 0) out.push('process.args: must name the program to run');
    if (!path.isAbsolute(spec.process.cwd)) out.push('process.cwd: must be an absolute path');
  }
  if (spec.root === undefined || spec.root.path === '') out.push('root.path: is required');
  (spec.mounts ?? []).forEach((m, i) => {
    if (!path.isAbsolute(m.destination)) out.push(`mounts.${i}.destination: must be an absolute path`);
  });
  const seen = new Set<string>();
  (spec.linux?.namespaces ?? []).forEach((ns, i) => {
    if (!KNOWN_NAMESPACES.has(ns.type)) out.push(`linux.namespaces.${i}.type: unknown namespace type ${JSON.stringify(ns.type)}`);
    if (seen.has(ns.type)) out.push(`linux.namespaces.${i}: duplicate namespace type ${ns.type}`);
    seen.add(ns.type);
    if (ns.path !== undefined && !path.isAbsolute(ns.path)) out.push(`linux.namespaces.${i}.path: must be an absolute path`);
  });
  return out;
}

/** Valid configs that this version cannot run faithfully: refused rather than half-honoured. */
function unsupported(spec: Spec): void {
  (spec.linux?.namespaces ?? []).forEach((ns, i) => {
    if (ns.path !== undefined && ns.type !== 'network') {
      throw new KataError('E_UNSUPPORTED', `linux.namespaces.${i}: joining the host's ${ns.type} namespace ${ns.path} is not possible from a VM`);
    }
  });
}
