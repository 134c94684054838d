import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv-draft-04';

// ajv-draft-04 is CommonJS: under NodeNext its default import is the module object.
const Ajv = AjvModule.default;
import { KataError } from '../errors.js';
import { isRecord } from '../util/json.js';
import { BASE, NEWEST_RELEASE, OLDEST_RELEASE, newestRelease, releaseFor, schemaSet, unknownFields } from './schemas.js';

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
  '^[0-9, -]*$': 'a CPU list such as 0-3,7',
};

const compiled = new Map<string, ValidateFunction>();

/** The compiled schema `name` of `release`'s set (draft-04, cross-file $refs by file name), once per process. */
function validator(release: string, name = 'config-schema.json'): ValidateFunction {
  const key = `${release}:${name}`;
  const cached = compiled.get(key);
  if (cached) return cached;
  // verbose: errors carry the offending value (shown in messages) and the failing schema.
  const ajv = new Ajv({ strict: false, allErrors: true, verbose: true });
  for (const [file, schema] of schemaSet(release)) ajv.addSchema(schema, file);
  const v = ajv.getSchema(name);
  if (v === undefined) throw new KataError('E_CONFIG', `OCI schema ${name} (${release}) did not compile`);
  compiled.set(key, v);
  return v;
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

/** What the schemas say about a config: `invalid` breaks them; `unsupported`: fields we cannot know. */
export interface SchemaVerdict {
  invalid: Problem[];
  unsupported: Problem[];
  /** The schema set the config was checked with (BASE or a release), when its version had one. */
  release?: string;
}

function pointerOf(segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/**
 * Checks a parsed config.json against the schema set of its ociVersion (src/oci/schemas.ts,
 * releaseFor): a version with no schema (another major, not SemVer) is the only problem reported.
 * Fields and enum values that only a later release defines are accepted, as runc accepts them,
 * and checked by the newest schema set; a field no release defines is refused with its path.
 */
export function schemaVerdict(config: unknown): SchemaVerdict {
  const version = isRecord(config) ? config['ociVersion'] : undefined;
  const newest = newestRelease();
  let release = newest;
  let newer = false;
  if (typeof version === 'string') {
    const choice = releaseFor(version);
    if ('problem' in choice) return { invalid: [{ path: 'ociVersion', message: choice.problem }], unsupported: [] };
    ({ release, newer } = choice);
  }
  const own = validator(release);
  const errors: ErrorObject[] = own(config) ? [] : [...(own.errors ?? [])];
  const unknown = unknownFields(config, schemaSet(newest));
  if (release !== newest) {
    // Fields its release does not define but a later one does: checked by the newest set.
    const unknownNow = new Set(unknown.map((u) => jsonPath(u)));
    const later = unknownFields(config, schemaSet(release)).filter((u) => !unknownNow.has(jsonPath(u))).map(pointerOf);
    if (later.length > 0 || errors.some((e) => e.keyword === 'enum')) {
      const latest = validator(newest);
      const newestErrors = latest(config) ? [] : (latest.errors ?? []);
      const failsNow = new Set(newestErrors.map((e) => e.instancePath));
      // An enum value a later release allows is fine: the newest set's enum errors replace ours.
      const kept = errors.filter((e) => e.keyword !== 'enum' && !((e.keyword === 'anyOf' || e.keyword === 'oneOf') && !failsNow.has(e.instancePath)));
      const added = newestErrors.filter((e) => e.keyword === 'enum' || later.some((p) => under(e.instancePath, p)));
      errors.splice(0, errors.length, ...kept, ...added);
    }
  }
  const problems = describeProblems(errors);
  const range = `${OLDEST_RELEASE}–${NEWEST_RELEASE}`;
  const unknownProblems = unknown.map((u) => ({
    path: jsonPath(u),
    message: `unknown field: no runtime-spec release ${range} defines it${newer ? ` (the config is for ${String(version)}, newer than this runtime knows)` : ''}`,
  }));
  return {
    invalid: newer ? problems : [...problems, ...unknownProblems],
    unsupported: newer ? unknownProblems : [],
    release,
  };
}

/** The invalid problems of schemaVerdict. */
export function schemaProblems(config: unknown): Problem[] {
  return schemaVerdict(config).invalid;
}

/** The invalid problems of schemaVerdict, as lines. */
export function schemaErrors(config: unknown): string[] {
  return schemaProblems(config).map(formatProblem);
}

export function stateSchemaErrors(state: unknown): string[] {
  const v = validator(BASE, 'state-schema.json');
  return v(state) ? [] : describeErrors(v.errors);
}
