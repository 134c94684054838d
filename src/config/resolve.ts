import os from 'node:os';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { KataError } from '../errors.js';
import { readFileIfExists } from '../util/fsx.js';
import { FIELD_NAMES, FIELDS, fieldFor, SECTIONS, shown, ValueProblem, type Section } from './fields.js';
import { KATA_UNUSED_KEYS, KATA_UNUSED_SECTIONS } from './kata-keys.js';
import type { ConfigFileChoice, ConfigWarning, HostInfo, ResolvedConfig, RuntimeConfig, ValueSource } from './types.js';

/**
 * Builds the effective configuration. Per value, strongest first: its environment variable, the
 * configuration file, the built-in default. The file is --config FILE, else $KATA_CONF_FILE, else
 * DEFAULT_CONFIG_FILE if it exists (the first two must exist).
 */

export const DEFAULT_CONFIG_FILE = '/etc/kata-containers/configuration.toml';

const MiB = 1024 * 1024;

export function hostInfo(): HostInfo {
  return { cpus: os.availableParallelism(), memoryMiB: Math.floor(os.totalmem() / MiB) };
}

export function chooseConfigFile(flag: string | undefined, env: NodeJS.ProcessEnv, defaultFile = DEFAULT_CONFIG_FILE): ConfigFileChoice {
  if (flag !== undefined && flag !== '') return { path: path.resolve(flag), via: 'flag' };
  const fromEnv = env['KATA_CONF_FILE'];
  if (fromEnv !== undefined && fromEnv !== '') return { path: path.resolve(fromEnv), via: 'env' };
  return { path: defaultFile, via: 'default' };
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** The --config value ('' or undefined: $KATA_CONF_FILE, then the default location); null: read no file. */
  file?: string | null | undefined;
  host?: HostInfo;
  /** The optional standard location (tests point it elsewhere). */
  defaultFile?: string;
}

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function isSection(name: string): name is Section {
  return SECTIONS.some((s) => s === name);
}

function configError(file: string, key: string, problem: string): KataError {
  return new KataError('E_CONFIG', `${file}: ${key}: ${problem}`);
}

/** The parsed file, or undefined when the default location has no file. */
function readDocument(choice: ConfigFileChoice): Table | undefined {
  let text: string | undefined;
  try {
    text = readFileIfExists(choice.path);
  } catch (e) {
    throw new KataError('E_CONFIG', `${choice.path}: cannot read the configuration file: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (text === undefined) {
    if (choice.via === 'default') return undefined;
    throw new KataError('E_CONFIG', `${choice.path}: no such configuration file (named by ${choice.via === 'flag' ? '--config' : 'KATA_CONF_FILE'})`);
  }
  try {
    return parse(text, { unsafeKeyBehaviour: 'throw' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const what = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new KataError('E_CONFIG', `${choice.path}:${e.line}:${e.column}: invalid TOML: ${what}`, { cause: e });
  }
}

/** The file's values per field, checked; warnings for what this runtime does not read. */
function readFileValues(doc: Table, file: string, warnings: ConfigWarning[]): Partial<RuntimeConfig> {
  const tables = new Map<Section, Table>();
  const visit = (t: Table, prefix: string): void => {
    for (const [k, v] of Object.entries(t)) {
      const name = prefix === '' ? k : `${prefix}.${k}`;
      const container = SECTIONS.some((s) => s.startsWith(`${name}.`));
      if ((isSection(name) || container) && !isTable(v)) throw configError(file, name, `must be a table (got ${shown(v)})`);
      if (isSection(name) && isTable(v)) tables.set(name, v);
      else if (container && isTable(v)) visit(v, name);
      else if (KATA_UNUSED_SECTIONS.includes(name)) warnings.push({ kind: 'unused', key: name, message: `[${name}] is a Kata section kata-runtime does not use: ignored` });
      else warnings.push({ kind: 'unknown', key: name, message: `${name}: unknown key: ignored` });
    }
  };
  visit(doc, '');

  const values: Partial<RuntimeConfig> = {};
  const take = <K extends keyof RuntimeConfig>(k: K, raw: unknown, key: string): void => {
    try {
      values[k] = FIELDS[k].fromToml(raw);
    } catch (e) {
      if (e instanceof ValueProblem) throw configError(file, key, e.message);
      throw e;
    }
  };
  for (const [section, t] of tables) {
    for (const [k, v] of Object.entries(t)) {
      const key = `${section}.${k}`;
      const field = fieldFor(section, k);
      if (field !== undefined) take(field, v, key);
      else if (KATA_UNUSED_KEYS[section]?.includes(k) === true) warnings.push({ kind: 'unused', key, message: `${key} is a Kata key kata-runtime does not use: ignored` });
      else warnings.push({ kind: 'unknown', key, message: `${key}: unknown key: ignored` });
    }
  }
  return values;
}

/** The effective configuration with where each value came from. Throws E_CONFIG for a bad value. */
export function resolveConfig(opts: ResolveOptions = {}): ResolvedConfig {
  const env = opts.env ?? process.env;
  const host = opts.host ?? hostInfo();
  const choice = opts.file === null ? undefined : chooseConfigFile(opts.file, env, opts.defaultFile);
  const warnings: ConfigWarning[] = [];
  const doc = choice === undefined ? undefined : readDocument(choice);
  const file = doc === undefined ? undefined : choice?.path;
  const fromFile = doc === undefined || file === undefined ? {} : readFileValues(doc, file, warnings);

  const config: Partial<RuntimeConfig> = {};
  const sources: Partial<Record<keyof RuntimeConfig, ValueSource>> = {};
  const resolveOne = <K extends keyof RuntimeConfig>(k: K): void => {
    const f = FIELDS[k];
    for (const e of f.env) {
      const raw = env[e.name];
      if (raw === undefined || raw === '') continue;
      try {
        config[k] = e.parse(raw);
      } catch (err) {
        if (err instanceof ValueProblem) throw new KataError('E_CONFIG', `${e.name}: ${err.message}`);
        throw err;
      }
      sources[k] = { kind: 'env', name: e.name };
      return;
    }
    const v = fromFile[k];
    if (v !== undefined) {
      config[k] = v;
      sources[k] = { kind: 'file' };
      return;
    }
    config[k] = f.dflt();
    sources[k] = { kind: 'default' };
  };
  for (const k of FIELD_NAMES) resolveOne(k);
  // Every field has been set just above.
  const resolved: ResolvedConfig = { config: config as RuntimeConfig, file, choice, sources: sources as ResolvedConfig['sources'], warnings };
  applyBounds(resolved, host);
  return resolved;
}

export function describeSource(r: Pick<ResolvedConfig, 'file'>, s: ValueSource): string {
  if (s.kind === 'env') return s.name;
  if (s.kind === 'file') return r.file ?? 'the configuration file';
  return 'built-in default';
}

/** The limits between values: 0 maxima become the host's, and each minimum <= value <= maximum. */
function applyBounds(r: ResolvedConfig, host: HostInfo): void {
  const c = r.config;
  const label = (k: keyof RuntimeConfig): string => `${FIELDS[k].section}.${FIELDS[k].key} = ${String(c[k])} (${describeSource(r, r.sources[k])})`;
  const mustNotExceed = (low: keyof RuntimeConfig, high: keyof RuntimeConfig): void => {
    if (Number(c[low]) > Number(c[high])) throw new KataError('E_CONFIG', `${label(low)} is more than ${label(high)}`);
  };
  if (c.maxVcpus === 0) {
    c.maxVcpus = Math.max(host.cpus, c.vcpus);
    r.sources.maxVcpus = { ...r.sources.maxVcpus, note: `0: the host's CPU count (${host.cpus}), at least default_vcpus` };
  }
  if (c.maxMemoryMiB === 0) {
    c.maxMemoryMiB = host.memoryMiB;
    r.sources.maxMemoryMiB = { ...r.sources.maxMemoryMiB, note: "0: the host's memory" };
  }
  if (r.sources.minMemoryMiB.kind === 'default' && c.minMemoryMiB > c.memoryMiB) {
    c.minMemoryMiB = c.memoryMiB;
    r.sources.minMemoryMiB = { kind: 'default', note: 'lowered to default_memory' };
  }
  mustNotExceed('vcpus', 'maxVcpus');
  mustNotExceed('minMemoryMiB', 'memoryMiB');
  mustNotExceed('memoryMiB', 'maxMemoryMiB');
}
