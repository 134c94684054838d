import fs from 'node:fs';
import path from 'node:path';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv-draft-04';

// ajv-draft-04 is CommonJS: under NodeNext its default import is the module object.
const Ajv = AjvModule.default;
import { KataError } from '../errors.js';
import { packageRoot } from '../util/paths.js';

/**
 * One thing wrong with a config: where, as a JSON path (`process.args`, `linux.namespaces.2.type`,
 * `linux.sysctl["net.ipv4.ip_forward"]`), and what.
 */
export interface Problem {
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.path}: ${p.message}`;
}

const IDENTIFIER = /^(?:[A-Za-z_$][A-Za-z0-9_$]*|[0-9]+)$/;

/** Path segments as one JSON path: `a.b.0`, with `["..."]` for keys that are not plain names. */
export function jsonPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    const key = String(s);
    if (IDENTIFIER.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out === '' ? '(root)' : out;
}

/** The segments of a JSON pointer (`/linux/sysctl/net~1ipv4`). */
function pointerSegments(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** A value as a message shows it: strings quoted (and cut short), containers by kind. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** What the runtime-spec schemas' patterns ask for, in words. */
const PATTERN_WORDS: Record<string, string> = {
  '^RLIMIT_[A-Z]+$': 'an RLIMIT_ name in capitals such as RLIMIT_NOFILE',
  '^[cbup]$': 'one of c, b, u, p',
  '^[1-9][0-9]*[KMG]B$': 'a page size such as 2MB or 1GB',
  '^MB:[^\\n]*$': 'a single line starting with "MB:"',
};

let validators: { config: ValidateFunction; state: ValidateFunction } | undefined;

/**
 * Enums the runtime-spec schema keeps narrower than runc 1.1, which the callers rely on: runc
 * accepts the recursive propagations as linux.rootfsPropagation, and containerd's CRI writes
 * `rslave` for a Kubernetes HostToContainer mount and `rshared` for a Bidirectional one, docker
 * `rslave`/`shared` for a bind with such a propagation. Widened to runc's set when the schemas load.
 */
const RUNC_ENUMS: Record<string, Record<string, string[]>> = {
  'defs-linux.json': { RootfsPropagation: ['private', 'shared', 'slave', 'unbindable', 'rprivate', 'rshared', 'rslave', 'runbindable'] },
};

/** `schema` (the file `file`) with RUNC_ENUMS's definitions widened. */
function widened(file: string, schema: object): object {
  const defs: unknown = (schema as { definitions?: unknown }).definitions;
  for (const [name, values] of Object.entries(RUNC_ENUMS[file] ?? {})) {
    const def: unknown = typeof defs === 'object' && defs !== null ? (defs as Record<string, unknown>)[name] : undefined;
    if (typeof def !== 'object' || def === null || !('enum' in def)) throw new KataError('E_CONFIG', `OCI schema ${file} has no enum ${name} to widen`);
    (def as { enum: unknown }).enum = values;
  }
  return schema;
}

/** Compiles the vendored runtime-spec schemas once (draft-04, cross-file $refs by file name). */
function compile(): { config: ValidateFunction; state: ValidateFunction } {
  if (validators) return validators;
  const dir = path.join(packageRoot(), 'schemas');
  // verbose: errors carry the offending value (shown in messages) and the failing schema.
  const ajv = new Ajv({ strict: false, allErrors: true, verbose: true });
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    files = [];
  }
  if (!files.includes('config-schema.json')) {
    throw new KataError('E_CONFIG', `OCI schemas missing in ${dir}: run schemas/sync.sh (setup does)`);
  }
  for (const f of files) {
    const schema: unknown = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    if (typeof schema !== 'object' || schema === null) continue;
    ajv.addSchema(widened(f, schema), f);
  }
  const get = (name: string): ValidateFunction => {
    const v = ajv.getSchema(name);
    if (v === undefined) throw new KataError('E_CONFIG', `OCI schema ${name} did not compile`);
    return v;
  };
  validators = { config: get('config-schema.json'), state: get('state-schema.json') };
  return validators;
}

interface Entry extends Problem {
  pointer: string;
}

/** The message for one ajv error that is not about alternatives; undefined: say nothing. */
function messageFor(e: ErrorObject): { segments: string[]; message: string } | undefined {
  const segments = pointerSegments(e.instancePath);
  const got = 'data' in e ? `, got ${showValue(e.data)}` : '';
  const p: Record<string, unknown> = e.params;
  switch (e.keyword) {
    case 'required':
      return { segments: [...segments, String(p['missingProperty'])], message: 'is required' };
    case 'additionalProperties':
      return { segments: [...segments, String(p['additionalProperty'])], message: 'is not allowed here' };
    case 'type': {
      const t = p['type'];
      const types = Array.isArray(t) ? t.map(String) : String(t).split(',');
      return { segments, message: `must be ${types.join(' or ')}${got}` };
    }
    case 'enum': {
      const allowed = Array.isArray(p['allowedValues']) ? p['allowedValues'].map((v) => (typeof v === 'string' ? v : JSON.stringify(v))) : [];
      return { segments, message: `must be one of ${allowed.join(', ')}${got}` };
    }
    case 'pattern': {
      const pattern = String(p['pattern']);
      return { segments, message: `must be ${PATTERN_WORDS[pattern] ?? `a string matching /${pattern}/`}${got}` };
    }
    case 'minItems':
    case 'maxItems': {
      const n = Number(p['limit']);
      return { segments, message: `must have ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${n} item${n === 1 ? '' : 's'}` };
    }
    case 'minLength':
      return { segments, message: Number(p['limit']) === 1 ? 'must not be empty' : `must be at least ${Number(p['limit'])} characters long` };
    case 'const':
      return { segments, message: `must be ${JSON.stringify(p['allowedValue'])}${got}` };
    case 'if':
    case '$ref':
      return undefined; // the errors of the schema it stands for say more
    default:
      return { segments, message: `${e.message ?? 'is invalid'}${got}` };
  }
}

function under(pointer: string, parent: string): boolean {
  return pointer === parent || pointer.startsWith(`${parent}/`);
}

/**
 * ajv's errors as problems, one per failing JSON path, deduplicated. anyOf/oneOf: a single
 * alternative (how the runtime-spec schemas wrap references) is reported through its own errors;
 * several alternatives become one problem that lists what each of them wanted.
 */
export function describeProblems(errors: readonly ErrorObject[] | null | undefined): Problem[] {
  const out: Entry[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') {
      const branches = Array.isArray(e.schema) ? e.schema.length : undefined;
      const where = jsonPath(pointerSegments(e.instancePath));
      if (e.keyword === 'oneOf' && Array.isArray(e.params['passingSchemas'])) {
        const passing: unknown[] = e.params['passingSchemas'];
        out.push({ pointer: e.instancePath, path: where, message: `matches ${passing.length} of the allowed forms (${passing.join(' and ')}), must match exactly one` });
        continue;
      }
      if (branches === 1) continue; // its errors are already listed
      // The alternatives' errors were reported just before this one, about this value or inside it.
      let first = out.length;
      while (first > 0 && under(out[first - 1]?.pointer ?? '', e.instancePath)) first--;
      const reasons = [...new Set(out.splice(first).map((b) => (b.path === where ? b.message : `${b.path.slice(where === '(root)' ? 0 : where.length + 1)}: ${b.message}`)))];
      const count = branches === undefined ? '' : ` ${branches}`;
      out.push({ pointer: e.instancePath, path: where, message: `matches none of the${count} allowed forms${reasons.length === 0 ? '' : ` (${reasons.join(' | ')})`}` });
      continue;
    }
    const m = messageFor(e);
    if (m === undefined) continue;
    out.push({ pointer: e.instancePath, path: jsonPath(m.segments), message: m.message });
  }
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const { path: p, message } of out) {
    const line = formatProblem({ path: p, message });
    if (seen.has(line)) continue;
    seen.add(line);
    problems.push({ path: p, message });
  }
  return problems;
}

/** `process.args: must be array, got "true"` style lines, one per failing JSON path. */
export function describeErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return describeProblems(errors).map(formatProblem);
}

/** Validates a parsed config.json against config-schema.json; returns the problems. */
export function schemaProblems(config: unknown): Problem[] {
  const v = compile().config;
  return v(config) ? [] : describeProblems(v.errors);
}

/** Validates a parsed config.json against config-schema.json; returns the error lines. */
export function schemaErrors(config: unknown): string[] {
  return schemaProblems(config).map(formatProblem);
}

export function stateSchemaErrors(state: unknown): string[] {
  const v = compile().state;
  return v(state) ? [] : describeErrors(v.errors);
}
