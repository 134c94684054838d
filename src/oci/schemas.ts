/**
 * The runtime-spec schemas of every release, built in memory: Debian's files (runtime-spec
 * v1.0.2-118-g5cfc4c3, "1.0.2-dev", copied into schemas/ at build time) are the base, and each
 * later release's changes come from our own data files, schemas/additions/<release>.json, applied
 * cumulatively (schemas/README.md describes their format). Which set a config is checked with
 * follows its ociVersion (releaseFor). The property tree of the newest set is also what decides
 * whether a field is known at all (unknownFields).
 */
import fs from 'node:fs';
import path from 'node:path';
import { KataError } from '../errors.js';
import { packageRoot } from '../util/paths.js';
import { isRecord } from '../util/json.js';

export type Json = Record<string, unknown>;
/** A schema set: file name (as `$ref`s name it) → parsed schema. */
export type SchemaSet = ReadonlyMap<string, Json>;

/** The set Debian's files make, before any addition. */
export const BASE = 'base';
/** The oldest release the base stands for, and the newest our additions reach. */
export const OLDEST_RELEASE = '1.0.0';
export const NEWEST_RELEASE = '1.3.0';

/** One change of an addition file. */
interface Change {
  file: string;
  /** A JSON pointer into the file ("" = its root; a missing file is created by adding at "") . */
  at: string;
  /** Properties that must not exist yet. */
  add?: Json;
  /** Enum values (or other array items) that must not be there yet. */
  append?: unknown[];
  /** Keywords whose value changes (a restriction such as a new maximum). */
  set?: Json;
}

interface Addition {
  release: string;
  comment: string;
  changes: Change[];
}

function schemasDir(): string {
  return path.join(packageRoot(), 'schemas');
}

function fail(msg: string): never {
  throw new KataError('E_CONFIG', msg);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return fail(`OCI schema ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

// ---- versions ----------------------------------------------------------------------------------

// SemVer 2.0.0: MAJOR.MINOR.PATCH, optional -prerelease and +build.
const NUMERIC = '(0|[1-9][0-9]*)';
const PRERELEASE_ID = '(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)';
const SEMVER = new RegExp(`^${NUMERIC}\\.${NUMERIC}\\.${NUMERIC}(-${PRERELEASE_ID}(?:\\.${PRERELEASE_ID})*)?(?:\\+[0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*)?$`);

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** A pre-release (`1.0.2-dev`, `1.1.0-rc.1`) comes before its release. */
  prerelease: boolean;
}

export function parseVersion(v: string): Version | undefined {
  const m = SEMVER.exec(v);
  if (m === null) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), prerelease: m[4] !== undefined };
}

/** SemVer precedence, pre-releases of one version taken as equal to each other. */
export function compareVersions(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || Number(b.prerelease) - Number(a.prerelease);
}

function mustParse(v: string): Version {
  return parseVersion(v) ?? fail(`schemas/additions: ${JSON.stringify(v)} is not a release version`);
}

let additionsCache: Addition[] | undefined;

/** The addition files, oldest release first. */
export function additions(): readonly Addition[] {
  if (additionsCache) return additionsCache;
  const dir = path.join(schemasDir(), 'additions');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    names = [];
  }
  const list = names.map((name) => {
    const a = readJson(path.join(dir, name));
    if (!isRecord(a) || typeof a['release'] !== 'string' || typeof a['comment'] !== 'string' || !Array.isArray(a['changes']) || `${a['release']}.json` !== name) {
      return fail(`schemas/additions/${name}: needs release (= the file's name), comment and changes`);
    }
    mustParse(a['release']);
    return a as unknown as Addition;
  });
  additionsCache = list.sort((x, y) => compareVersions(mustParse(x.release), mustParse(y.release)));
  return additionsCache;
}

/** The release whose schema set checks a config of `version` (BASE for Debian's), or why there is none. */
export type Choice = { release: string; newer: boolean } | { problem: string };

/**
 * 1.0.x, and any pre-release before 1.1.0 (engines write `1.0.2-dev` with post-1.0.2 fields):
 * the base. Otherwise the newest addition whose release is not after the config's version. A
 * later 1.x than ours gets the newest set (`newer`). Another major, or no SemVer: no schema.
 */
export function releaseFor(version: string): Choice {
  const v = parseVersion(version);
  const range = `${OLDEST_RELEASE} to ${NEWEST_RELEASE}`;
  if (v === undefined) return { problem: `must be a SemVer version such as 1.0.2, got ${JSON.stringify(version.length > 60 ? `${version.slice(0, 57)}...` : version)}` };
  if (v.major !== 1) return { problem: `runtime-spec ${version} is not supported: this runtime implements ${range} (major version 1)` };
  let release = BASE;
  for (const a of additions()) if (compareVersions(mustParse(a.release), v) <= 0) release = a.release;
  return { release, newer: compareVersions(v, mustParse(NEWEST_RELEASE)) > 0 };
}

/** The release our newest schema set stands for (the last addition file). */
export function newestRelease(): string {
  return additions().at(-1)?.release ?? BASE;
}

// ---- building the sets ---------------------------------------------------------------------------

/**
 * Enums the runtime-spec schema keeps narrower than runc 1.1, which the callers rely on: runc
 * accepts the recursive propagations as linux.rootfsPropagation, and containerd's CRI writes
 * `rslave` for a Kubernetes HostToContainer mount and `rshared` for a Bidirectional one, docker
 * `rslave`/`shared` for a bind with such a propagation. Widened to runc's set when the base loads,
 * so every release's set has them.
 */
const RUNC_ENUMS: Record<string, Record<string, string[]>> = {
  'defs-linux.json': { RootfsPropagation: ['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable'] },
};

/** `schema` (the file `file`) with RUNC_ENUMS's definitions widened. */
function widened(file: string, schema: Json): Json {
  const defs = schema['definitions'];
  for (const [name, values] of Object.entries(RUNC_ENUMS[file] ?? {})) {
    const def = isRecord(defs) ? defs[name] : undefined;
    if (!isRecord(def) || !('enum' in def)) fail(`OCI schema ${file} has no enum ${name} to widen`);
    def['enum'] = values;
  }
  return schema;
}

let baseCache: Map<string, Json> | undefined;

function baseSet(): Map<string, Json> {
  if (baseCache) return baseCache;
  const dir = schemasDir();
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    files = [];
  }
  if (!files.includes('config-schema.json')) fail(`OCI schemas missing in ${dir}: run schemas/sync.sh (setup does)`);
  baseCache = new Map();
  for (const f of files) {
    const s = readJson(path.join(dir, f));
    if (isRecord(s)) baseCache.set(f, widened(f, s));
  }
  return baseCache;
}

function pointerSegments(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function apply(set: Map<string, Json>, release: string, c: Change): void {
  const where = `schemas/additions/${release}.json: ${c.file}#${c.at}`;
  let doc = set.get(c.file);
  if (doc === undefined) {
    if (c.at !== '' || c.add === undefined) fail(`${where}: no such schema file`);
    doc = {};
    set.set(c.file, doc);
  }
  let node: unknown = doc;
  for (const seg of pointerSegments(c.at)) node = isRecord(node) ? node[seg] : Array.isArray(node) ? node[Number(seg)] : undefined;
  if (c.append !== undefined) {
    if (!Array.isArray(node)) fail(`${where}: not an array`);
    for (const v of c.append) {
      if (node.includes(v)) fail(`${where}: ${JSON.stringify(v)} is already there`);
      node.push(v);
    }
    return;
  }
  if (!isRecord(node)) fail(`${where}: not an object`);
  for (const [k, v] of Object.entries(c.add ?? {})) {
    if (k in node) fail(`${where}: ${k} is already there`);
    node[k] = structuredClone(v);
  }
  for (const [k, v] of Object.entries(c.set ?? {})) node[k] = structuredClone(v);
}

const sets = new Map<string, SchemaSet>();

/** The schema set of `release` (BASE, or an addition's release): the base plus every addition up to it. */
export function schemaSet(release: string): SchemaSet {
  const cached = sets.get(release);
  if (cached) return cached;
  const set = new Map([...baseSet()].map(([f, s]) => [f, structuredClone(s)]));
  if (release !== BASE) {
    const upTo = additions().findIndex((a) => a.release === release);
    if (upTo < 0) fail(`no schema additions for runtime-spec ${release}`);
    for (const a of additions().slice(0, upTo + 1)) for (const c of a.changes) apply(set, a.release, c);
  }
  sets.set(release, set);
  return set;
}

// ---- the property tree -------------------------------------------------------------------------

/** A schema node and the file its relative `$ref`s resolve in. */
interface Node {
  schema: Json;
  file: string;
}

function resolve(set: SchemaSet, ref: string, file: string): Node | undefined {
  const hash = ref.indexOf('#');
  const target = hash < 0 ? ref : ref.slice(0, hash) === '' ? file : ref.slice(0, hash);
  let node: unknown = set.get(target);
  for (const seg of pointerSegments(hash < 0 ? '' : ref.slice(hash + 1))) node = isRecord(node) ? node[seg] : undefined;
  return isRecord(node) ? { schema: node, file: target } : undefined;
}

const COMBINATORS = ['allOf', 'anyOf', 'oneOf'];
const STRUCTURE = ['properties', 'patternProperties', 'additionalProperties', 'items'];

/** A node with its `$ref`s followed and its allOf/anyOf/oneOf branches flattened into a union. */
function expand(set: SchemaSet, n: Node, depth = 0): Node[] {
  if (depth > 32) return [n];
  const out: Node[] = [];
  const ref = n.schema['$ref'];
  if (typeof ref === 'string') {
    const r = resolve(set, ref, n.file);
    if (r) out.push(...expand(set, r, depth + 1));
  } else if (!COMBINATORS.some((kw) => kw in n.schema) || STRUCTURE.some((kw) => kw in n.schema)) {
    // A node that only combines others (`{"anyOf": [...]}`) says nothing of its own.
    out.push(n);
  }
  for (const kw of COMBINATORS) {
    const branches = n.schema[kw];
    if (Array.isArray(branches)) for (const b of branches) if (isRecord(b)) out.push(...expand(set, { schema: b, file: n.file }, depth + 1));
  }
  return out;
}

/** The schemas of an object's member `key`; undefined: no node defines it; null: a node allows anything. */
function memberSchemas(nodes: Node[], key: string): Node[] | null | undefined {
  const out: Node[] = [];
  let open = false;
  const objectLike = nodes.filter((n) => {
    const t = n.schema['type'];
    return t === undefined || t === 'object' || (Array.isArray(t) && t.includes('object'));
  });
  // Not an object by any node: the schema's type check reports it, nothing is unknown in it.
  if (objectLike.length === 0) return null;
  for (const n of objectLike) {
    const props = n.schema['properties'];
    const pattern = n.schema['patternProperties'];
    const extra = n.schema['additionalProperties'];
    if (!isRecord(props) && !isRecord(pattern) && extra === undefined) {
      open = true; // says nothing about its members
      continue;
    }
    if (isRecord(props) && isRecord(props[key])) out.push({ schema: props[key], file: n.file });
    if (isRecord(pattern)) for (const [re, s] of Object.entries(pattern)) if (isRecord(s) && new RegExp(re, 'u').test(key)) out.push({ schema: s, file: n.file });
    if (isRecord(extra)) out.push({ schema: extra, file: n.file });
    else if (extra === true) open = true;
  }
  if (out.length > 0) return out;
  return open ? null : undefined;
}

function itemSchemas(nodes: Node[], index: number): Node[] {
  const out: Node[] = [];
  for (const n of nodes) {
    const items = n.schema['items'];
    if (isRecord(items)) out.push({ schema: items, file: n.file });
    else if (Array.isArray(items) && isRecord(items[index])) out.push({ schema: items[index] as Json, file: n.file });
  }
  return out;
}

/**
 * The fields of `config` that no property of `set`'s config schema defines, as path segments:
 * objects are walked through `properties` (maps through additionalProperties or
 * patternProperties), arrays through `items`, `$ref`s followed and allOf/anyOf/oneOf taken as a
 * union. A field is reported at the outermost unknown level; nothing below it is looked at.
 */
export function unknownFields(config: unknown, set: SchemaSet): (string | number)[][] {
  const root = set.get('config-schema.json');
  if (root === undefined) return [];
  const out: (string | number)[][] = [];
  const walk = (value: unknown, nodes: Node[], at: (string | number)[]): void => {
    if (nodes.length === 0) return;
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, itemSchemas(nodes, i).flatMap((n) => expand(set, n)), [...at, i]));
      return;
    }
    if (!isRecord(value)) return;
    for (const [key, child] of Object.entries(value)) {
      const members = memberSchemas(nodes, key);
      if (members === undefined) out.push([...at, key]);
      else if (members !== null) walk(child, members.flatMap((n) => expand(set, n)), [...at, key]);
    }
  };
  walk(config, expand(set, { schema: root, file: 'config-schema.json' }), []);
  return out;
}

/**
 * Every property path of `set`'s config schema (`*` for an array item or a map value), each
 * with the enum values allowed there: what the table of fields (src/oci/fields.ts) is checked
 * against, release by release.
 */
export function schemaPaths(set: SchemaSet): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const root = set.get('config-schema.json');
  const visit = (nodes: Node[], at: string[]): void => {
    if (at.length > 16) return;
    if (at.length > 0) {
      const values = out.get(at.join('.')) ?? new Set<string>();
      for (const n of nodes) {
        const e = n.schema['enum'];
        if (Array.isArray(e)) for (const v of e) if (typeof v === 'string') values.add(v);
      }
      out.set(at.join('.'), values);
    }
    const children = new Map<string, Node[]>();
    const add = (key: string, schema: unknown, file: string): void => {
      if (isRecord(schema)) children.set(key, [...(children.get(key) ?? []), ...expand(set, { schema, file })]);
    };
    for (const n of nodes) {
      const props = n.schema['properties'];
      if (isRecord(props)) for (const [k, s] of Object.entries(props)) add(k, s, n.file);
      const pattern = n.schema['patternProperties'];
      if (isRecord(pattern)) for (const s of Object.values(pattern)) add('*', s, n.file);
      add('*', n.schema['additionalProperties'], n.file);
      const items = n.schema['items'];
      if (Array.isArray(items)) for (const s of items) add('*', s, n.file);
      else add('*', items, n.file);
    }
    for (const [k, ns] of children) visit(ns, [...at, k]);
  };
  if (root !== undefined) visit(expand(set, { schema: root, file: 'config-schema.json' }), []);
  return out;
}
