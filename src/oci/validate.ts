import fs from 'node:fs';
import path from 'node:path';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv-draft-04';

// ajv-draft-04 is CommonJS: under NodeNext its default import is the module object.
const Ajv = AjvModule.default;
import { KataError } from '../errors.js';
import { packageRoot } from '../util/paths.js';

let validators: { config: ValidateFunction; state: ValidateFunction } | undefined;

/** Compiles the vendored runtime-spec schemas once (draft-04, cross-file $refs by file name). */
function compile(): { config: ValidateFunction; state: ValidateFunction } {
  if (validators) return validators;
  const dir = path.join(packageRoot(), 'schemas');
  const ajv = new Ajv({ strict: false, allErrors: true });
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
    ajv.addSchema(schema, f);
  }
  const get = (name: string): ValidateFunction => {
    const v = ajv.getSchema(name);
    if (v === undefined) throw new KataError('E_CONFIG', `OCI schema ${name} did not compile`);
    return v;
  };
  validators = { config: get('config-schema.json'), state: get('state-schema.json') };
  return validators;
}

/** `process.args: must be array` style lines, one per failing JSON path, deduplicated. */
export function describeErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  const out = new Set<string>();
  for (const e of errors ?? []) {
    const where = e.instancePath === '' ? '(root)' : e.instancePath.slice(1).replace(/\//g, '.');
    let msg = e.message ?? 'is invalid';
    if (e.keyword === 'required' && typeof e.params['missingProperty'] === 'string') {
      out.add(`${where === '(root)' ? '' : `${where}.`}${e.params['missingProperty']}: is required`);
      continue;
    }
    if (e.keyword === 'enum' && Array.isArray(e.params['allowedValues'])) msg = `must be one of ${e.params['allowedValues'].join(', ')}`;
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'if') continue; // the branch errors say more
    out.add(`${where}: ${msg}`);
  }
  return [...out];
}

/** Validates a parsed config.json against config-schema.json; returns the error lines. */
export function schemaErrors(config: unknown): string[] {
  const v = compile().config;
  return v(config) ? [] : describeErrors(v.errors);
}

export function stateSchemaErrors(state: unknown): string[] {
  const v = compile().state;
  return v(state) ? [] : describeErrors(v.errors);
}
