import fs from 'node:fs';
import path from 'node:path';
import type { RuntimeConfig } from './types.js';

/**
 * Every configuration value as data: its TOML section and key (Kata's names where Kata has the
 * setting), the environment variables that override it, how a value is checked and its built-in
 * default. resolve.ts applies the precedence; render.ts prints the table back.
 */

export const GUEST_DIR = '/usr/local/share/kata-runtime/guest';

export const SECTIONS = ['hypervisor.qemu', 'agent.kata', 'runtime'] as const;
export type Section = (typeof SECTIONS)[number];

/** A bad value. The message says what is wrong; the caller says where (file and key, or variable). */
export class ValueProblem extends Error {}

export interface EnvSource<T> {
  name: string;
  parse: (raw: string) => T;
}

export interface Field<T> {
  section: Section;
  key: string;
  /** A value from the file; throws ValueProblem. */
  fromToml: (v: unknown) => T;
  /** Environment variables overriding the file, strongest first; empty values count as unset. */
  env: readonly EnvSource<T>[];
  dflt: () => T;
  /** The value as the file spells it (kernel_params is one string there). */
  toToml?: (v: T) => unknown;
}

export type FieldTable = { readonly [K in keyof RuntimeConfig]: Field<RuntimeConfig[K]> };

/** A value as an error message quotes it. */
export function shown(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (typeof v === 'object' && v !== null) return 'a table';
  return JSON.stringify(v) ?? String(v);
}

function wrongType(what: string, v: unknown): ValueProblem {
  return new ValueProblem(`must be ${what} (got ${shown(v)})`);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw wrongType(what, v);
  return v;
}

function int(min: number, what: string): { fromToml: (v: unknown) => number; parse: (raw: string) => number } {
  const check = (n: number, raw: unknown): number => {
    if (!Number.isSafeInteger(n) || n < min) throw wrongType(what, raw);
    return n;
  };
  return {
    fromToml: (v) => check(typeof v === 'number' ? v : NaN, v),
    parse: (raw) => check(/^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN, raw),
  };
}

const positive = int(1, 'a positive integer');
const nonNegative = int(0, 'an integer >= 0');

function boolFromToml(v: unknown): boolean {
  if (typeof v !== 'boolean') throw wrongType('true or false', v);
  return v;
}

function boolFromEnv(raw: string): boolean {
  if (raw === '1' || raw === 'true') return true;
  if (raw === '0' || raw === 'false') return false;
  throw wrongType('1 or 0', raw);
}

function oneOf<T extends string>(values: readonly T[]): (v: unknown) => T {
  const what = values.map((s) => JSON.stringify(s)).join(' or ');
  return (v) => {
    const s = str(v, what);
    const hit = values.find((x) => x === s);
    if (hit === undefined) throw wrongType(what, v);
    return hit;
  };
}

/** A path in the file: absolute, and it must exist (a typo should not surface as a QEMU failure). */
function existingPath(v: unknown): string {
  const p = str(v, 'an absolute path');
  if (!path.isAbsolute(p)) throw wrongType('an absolute path', v);
  if (!fs.existsSync(p)) throw new ValueProblem(`${p} does not exist`);
  return p;
}

/** A path from the environment is taken as given: it is checked where it is used. */
const envPath = (raw: string): string => raw;

function params(raw: string): string[] {
  return raw.split(/\s+/).filter((s) => s !== '');
}

function regexList(v: unknown): string[] {
  if (!Array.isArray(v)) throw wrongType('an array of regular expressions', v);
  return v.map((item: unknown, i) => {
    if (typeof item !== 'string') throw new ValueProblem(`item ${i} must be a string (got ${shown(item)})`);
    try {
      new RegExp(item);
    } catch (e) {
      throw new ValueProblem(`item ${i} ${JSON.stringify(item)} is not a regular expression: ${e instanceof Error ? e.message : String(e)}`);
    }
    return item;
  });
}

function defaultVirtiofsd(): string {
  return fs.existsSync('/usr/libexec/virtiofsd') ? '/usr/libexec/virtiofsd' : '/usr/lib/qemu/virtiofsd';
}

const q = 'hypervisor.qemu' as const;

/** A file of the guest image: its own variable, else $KATA_GUEST_DIR/<name>, the file, GUEST_DIR/<name>. */
function guestFile(key: string, envName: string, name: string): Field<string> {
  return {
    section: q,
    key,
    fromToml: existingPath,
    env: [{ name: envName, parse: envPath }, { name: 'KATA_GUEST_DIR', parse: (d) => path.join(d, name) }],
    dflt: () => path.join(GUEST_DIR, name),
  };
}

export const FIELDS: FieldTable = {
  qemuPath: { section: q, key: 'path', fromToml: existingPath, env: [{ name: 'KATA_QEMU', parse: envPath }], dflt: () => '/usr/bin/qemu-system-x86_64' },
  kernel: guestFile('kernel', 'KATA_KERNEL', 'vmlinux'),
  initrd: guestFile('initrd', 'KATA_INITRD', 'initrd.img'),
  machine: { section: q, key: 'machine_type', fromToml: oneOf(['microvm', 'q35']), env: [{ name: 'KATA_MACHINE', parse: oneOf(['microvm', 'q35']) }], dflt: () => 'microvm' },
  accel: { section: q, key: 'accelerator', fromToml: oneOf(['auto', 'kvm', 'tcg']), env: [{ name: 'KATA_ACCEL', parse: oneOf(['auto', 'kvm', 'tcg']) }], dflt: () => 'auto' },
  kernelParams: {
    section: q,
    key: 'kernel_params',
    fromToml: (v) => params(str(v, 'a string of space-separated parameters')),
    env: [{ name: 'KATA_KERNEL_PARAMS', parse: params }],
    dflt: () => [],
    toToml: (v) => v.join(' '),
  },
  vcpus: { section: q, key: 'default_vcpus', fromToml: positive.fromToml, env: [{ name: 'KATA_VCPUS', parse: positive.parse }], dflt: () => 1 },
  maxVcpus: { section: q, key: 'default_maxvcpus', fromToml: nonNegative.fromToml, env: [], dflt: () => 0 },
  memoryMiB: { section: q, key: 'default_memory', fromToml: positive.fromToml, env: [{ name: 'KATA_MEMORY_MIB', parse: positive.parse }], dflt: () => 256 },
  memoryOverheadMiB: { section: q, key: 'memory_overhead', fromToml: nonNegative.fromToml, env: [], dflt: () => 128 },
  hostMemoryOverheadMiB: { section: q, key: 'host_memory_overhead', fromToml: nonNegative.fromToml, env: [], dflt: () => 384 },
  minMemoryMiB: { section: q, key: 'min_memory', fromToml: positive.fromToml, env: [], dflt: () => 128 },
  maxMemoryMiB: { section: q, key: 'default_maxmemory', fromToml: nonNegative.fromToml, env: [], dflt: () => 0 },
  sharedFs: { section: q, key: 'shared_fs', fromToml: oneOf(['virtio-fs']), env: [], dflt: () => 'virtio-fs' },
  virtiofsdPath: { section: q, key: 'virtio_fs_daemon', fromToml: existingPath, env: [{ name: 'KATA_VIRTIOFSD', parse: envPath }], dflt: defaultVirtiofsd },
  enableAnnotations: { section: q, key: 'enable_annotations', fromToml: regexList, env: [], dflt: () => [] },
  agentTimeoutSec: { section: 'agent.kata', key: 'dial_timeout', fromToml: positive.fromToml, env: [{ name: 'KATA_AGENT_TIMEOUT', parse: positive.parse }], dflt: () => 60 },
  agentDebug: { section: 'agent.kata', key: 'enable_debug', fromToml: boolFromToml, env: [{ name: 'KATA_AGENT_DEBUG', parse: boolFromEnv }], dflt: () => false },
  debug: { section: 'runtime', key: 'enable_debug', fromToml: boolFromToml, env: [], dflt: () => false },
  internetworkingModel: {
    section: 'runtime',
    key: 'internetworking_model',
    fromToml: oneOf(['tcfilter', 'macvtap', 'none']),
    env: [],
    dflt: () => 'tcfilter',
  },
  hostNetwork: { section: 'runtime', key: 'host_network', fromToml: oneOf(['refuse', 'isolated']), env: [], dflt: () => 'refuse' },
};

export const FIELD_NAMES = Object.keys(FIELDS) as (keyof RuntimeConfig)[];

/** The field a section's key sets, if any. */
export function fieldFor(section: Section, key: string): keyof RuntimeConfig | undefined {
  return FIELD_NAMES.find((f) => FIELDS[f].section === section && FIELDS[f].key === key);
}
