import fs from 'node:fs';
import path from 'node:path';
import { KataError, errnoCode } from '../errors.js';
import type { Spec } from './spec.js';
import { isBindMount } from './translate.js';
import { isInside } from '../util/paths.js';
import { refusals } from './fields.js';
import { TIMENS_ANNOTATION } from './translate.js';
import { formatProblem, jsonPath, schemaVerdict, showValue, type Problem } from './validate.js';

export interface Bundle {
  /** Absolute, resolved bundle directory. */
  dir: string;
  /** Absolute path of the root filesystem on the host. */
  rootfs: string;
  spec: Spec;
  /** The config.json text as read, passed on unchanged where the guest needs it. */
  raw: unknown;
}

/** What is wrong with a config: `invalid` breaks the runtime-spec; `unsupported` is valid but cannot be honoured in a VM. */
export interface ConfigProblems {
  invalid: Problem[];
  unsupported: Problem[];
}

function invalid(msg: string): KataError {
  return new KataError('E_INVALID_BUNDLE', msg);
}

/**
 * Loads and validates a bundle: the directory, config.json (JSON, then the runtime-spec schema and
 * the semantic checks the schema cannot express, then the root filesystem and bind mount sources
 * on the host). Every problem found is named in one error: E_INVALID_BUNDLE when any of them makes
 * the config invalid, E_UNSUPPORTED when it is valid but this runtime cannot honour it in a VM.
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
  const found = configProblems(raw);
  const rootfs = path.resolve(dir, str(obj(obj(raw)?.['root'])?.['path']) ?? '');
  found.invalid.push(...hostProblems(raw, dir, rootfs));
  const all = [...found.invalid, ...found.unsupported].map(formatProblem).join('; ');
  if (found.invalid.length > 0) throw invalid(`${configPath}: ${all}`);
  if (found.unsupported.length > 0) throw new KataError('E_UNSUPPORTED', `${configPath}: ${all}`);
  // The schema has checked the shape the Spec type describes.
  return { dir, rootfs, spec: raw as Spec, raw };
}

/**
 * Every problem of a parsed config.json that can be found without looking at the host: the
 * runtime-spec schema, then the semantic checks. A semantic problem at or inside a path the schema
 * already rejected is left out (it would say the same thing twice).
 */
export function configProblems(config: unknown): ConfigProblems {
  const verdict = schemaVerdict(config);
  const schema = [...verdict.invalid, ...verdict.unsupported];
  const covered = (p: Problem): boolean => schema.some((s) => p.path === s.path || p.path.startsWith(`${s.path}.`) || p.path.startsWith(`${s.path}[`));
  // A version with no schema: nothing else can be judged.
  if (verdict.release === undefined) return { invalid: verdict.invalid, unsupported: [] };
  const c = check(config);
  return { invalid: [...verdict.invalid, ...c.invalid.filter((p) => !covered(p))], unsupported: [...verdict.unsupported, ...c.unsupported.filter((p) => !covered(p))] };
}

/** The config's invalid problems that the schema cannot express (a pure function of the config). */
export function semanticProblems(config: unknown): Problem[] {
  return check(config).invalid;
}

/** Valid settings that a container in a VM cannot have: refused rather than half-honoured. */
export function unsupportedProblems(config: unknown): Problem[] {
  return check(config).unsupported;
}

/**
 * The root filesystem and bind mount sources must exist on the host. A source inside the rootfs is
 * resolved in the guest, in mount order (an earlier mount may create it), as runc resolves it.
 */
function hostProblems(config: unknown, dir: string, rootfs: string): Problem[] {
  const out: Problem[] = [];
  const rootPath = str(obj(obj(config)?.['root'])?.['path']) ?? '';
  if (rootPath !== '' && !isDir(rootfs)) out.push({ path: 'root.path', message: `${rootfs}: no such directory` });
  arr(obj(config)?.['mounts']).forEach((m, i) => {
    const mount = obj(m);
    const source = str(mount?.['source']);
    if (mount === undefined || source === undefined || !bindMount(mount)) return;
    const host = path.resolve(dir, source);
    if (isInside(host, rootfs)) return;
    try {
      fs.statSync(host);
    } catch (e) {
      out.push({ path: jsonPath(['mounts', i, 'source']), message: `${host}: ${errnoCode(e) === 'ENOENT' ? 'no such file or directory' : String(e)}` });
    }
  });
  return out;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

// ---- reading an unchecked document --------------------------------------------------------------
// The checks run on configs that may have failed the schema: every read tolerates a wrong type (the
// schema has reported it) by seeing nothing there.

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function bindMount(mount: Obj): boolean {
  return isBindMount({ type: str(mount['type']) ?? '', options: arr(mount['options']).filter((o): o is string => typeof o === 'string') });
}

// ---- what the kernel and the runtime-spec know ---------------------------------------------------

const NAMESPACES = new Set(['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']);

export { CAPABILITIES } from './caps.js';

/** setrlimit(2) resources. */
export const RLIMITS: readonly string[] = [
  'RLIMIT_AS', 'RLIMIT_CORE', 'RLIMIT_CPU', 'RLIMIT_DATA', 'RLIMIT_FSIZE', 'RLIMIT_LOCKS', 'RLIMIT_MEMLOCK', 'RLIMIT_MSGQUEUE',
  'RLIMIT_NICE', 'RLIMIT_NOFILE', 'RLIMIT_NPROC', 'RLIMIT_RSS', 'RLIMIT_RTPRIO', 'RLIMIT_RTTIME', 'RLIMIT_SIGPENDING', 'RLIMIT_STACK',
];
const RLIMIT_SET = new Set(RLIMITS);

const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];

const SECCOMP_ACTIONS = new Set([
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
]);
/** Actions that return a value to the caller: the only ones an errno return makes sense with. */
const SECCOMP_ERRNO_ACTIONS = new Set(['SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE']);

/** Sysctls that the IPC namespace isolates (besides fs.mqueue.*). */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

const CPU_LIST = /^[0-9]+(?:-[0-9]+)?(?:,[0-9]+(?:-[0-9]+)?)*$/;

// ---- the checks ------------------------------------------------------------------------------

type Segments = (string | number)[];

class Checker {
  readonly invalid: Problem[] = [];
  readonly unsupported: Problem[] = [];

  bad(at: Segments, message: string): void {
    this.invalid.push({ path: jsonPath(at), message });
  }

  refuse(at: Segments, message: string): void {
    this.unsupported.push({ path: jsonPath(at), message });
  }

  absolute(at: Segments, v: unknown): void {
    const s = str(v);
    if (s !== undefined && !s.startsWith('/')) this.bad(at, `must be an absolute path, got ${showValue(s)}`);
  }

  /** KEY=VALUE entries (process.env, hook env). */
  env(at: Segments, list: unknown): void {
    arr(list).forEach((kv, i) => {
      if (typeof kv !== 'string') return;
      const eq = kv.indexOf('=');
      if (eq < 0) this.bad([...at, i], `must be KEY=VALUE, got ${showValue(kv)}`);
      else if (eq === 0) this.bad([...at, i], `has an empty name: ${showValue(kv)}`);
      else if (kv.includes('\0')) this.bad([...at, i], 'must not contain a NUL byte');
    });
  }

  /** A number that, where given, must be within [lo, hi] or one of `special`. */
  range(at: Segments, v: unknown, lo: number, hi: number, words: string, special: readonly number[] = []): void {
    const n = num(v);
    if (n === undefined || special.includes(n) || (n >= lo && n <= hi)) return;
    this.bad(at, `must be ${words}, got ${n}`);
  }
}

/** Runs every semantic check on a parsed config.json (whatever its shape). */
function check(config: unknown): Checker {
  const c = new Checker();
  const spec = obj(config);
  if (spec === undefined) return c; // the schema says so
  const linux = obj(spec['linux']);
  const namespaces = new Set(arr(linux?.['namespaces']).map((n) => str(obj(n)?.['type'])));
  checkProcess(c, spec['process']);
  const root = obj(spec['root']);
  if (spec['root'] === undefined) c.bad(['root'], 'is required');
  else if (str(root?.['path']) === '') c.bad(['root', 'path'], 'must not be empty');
  for (const field of ['hostname', 'domainname']) {
    const v = str(spec[field]);
    if (v !== undefined && v !== '' && !namespaces.has('uts')) c.bad([field], 'setting it needs a uts namespace in linux.namespaces');
  }
  checkMounts(c, spec['mounts']);
  checkHooks(c, obj(spec['hooks']));
  if (linux !== undefined) checkLinux(c, linux, namespaces);
  checkTimeOffsets(c, spec, namespaces);
  // What src/oci/fields.ts (the table of fields by release) refuses.
  for (const r of refusals(spec)) c.refuse(r.at, r.message);
  return c;
}

/**
 * Each object entry of the list at `at` whose `key` is a string, that key reported when an
 * earlier entry had the same one.
 */
function eachUnique(c: Checker, list: unknown, at: Segments, key: string, verb: string, each: (entry: Obj, value: string, here: Segments) => void): void {
  const firstAt = new Map<string, number>();
  arr(list).forEach((e, i) => {
    const entry = obj(e);
    const value = str(entry?.[key]);
    if (entry === undefined || value === undefined) return;
    const here = [...at, i];
    const first = firstAt.get(value);
    if (first !== undefined) c.bad([...here, key], `${value} is ${verb} twice (also ${jsonPath([...at, first])})`);
    else firstAt.set(value, i);
    each(entry, value, here);
  });
}

function checkNamespaces(c: Checker, linux: Obj): void {
  eachUnique(c, linux['namespaces'], ['linux', 'namespaces'], 'type', 'listed', (ns, type, at) => {
    if (!NAMESPACES.has(type)) c.bad([...at, 'type'], `unknown namespace type ${showValue(type)}`);
    const nsPath = str(ns['path']);
    if (nsPath === undefined) return;
    c.absolute([...at, 'path'], nsPath);
    // The network namespace path is not joined: the guest gives the container its own (for now).
    if (type !== 'network' && NAMESPACES.has(type)) c.refuse(at, `joining the host's ${type} namespace ${nsPath} is not possible from a VM`);
  });
}

function checkProcess(c: Checker, value: unknown): void {
  const proc = obj(value);
  if (value === undefined) {
    c.bad(['process'], 'is required to create a container');
    return;
  }
  if (proc === undefined) return;
  const args = proc['args'];
  if (args === undefined || (Array.isArray(args) && args.length === 0)) c.bad(['process', 'args'], 'must name the program to run');
  else if (Array.isArray(args) && args[0] === '') c.bad(['process', 'args', 0], 'must not be empty: it is the program to run');
  c.absolute(['process', 'cwd'], proc['cwd']);
  c.env(['process', 'env'], proc['env']);
  eachUnique(c, proc['rlimits'], ['process', 'rlimits'], 'type', 'set', (rl, type, at) => {
    if (!RLIMIT_SET.has(type)) c.bad([...at, 'type'], `unknown resource ${showValue(type)} (known: ${RLIMITS.join(', ')})`);
    const soft = num(rl['soft']);
    const hard = num(rl['hard']);
    if (soft !== undefined && hard !== undefined && hard >= 0 && soft > hard) c.bad(at, `soft limit ${soft} is above the hard limit ${hard}`);
  });
  // Unknown capabilities are not an error: runtime-spec 1.1 says to warn and go on, as runc does
  // (unknownCapabilities; the guest spec leaves them out).
  c.range(['process', 'oomScoreAdj'], proc['oomScoreAdj'], -1000, 1000, 'between -1000 and 1000');
  checkIoPriority(c, obj(proc['ioPriority']));
  checkScheduler(c, obj(proc['scheduler']));
  // process.apparmorProfile: the guest has no AppArmor; the profile is dropped on the way to the
  // guest (src/oci/translate.ts), as Kata does, since docker sets one on every AppArmor host.
}

/** runc's rules: a priority 0 (highest) … 7 in its class. */
function checkIoPriority(c: Checker, io: Obj | undefined): void {
  if (io === undefined) return;
  c.range(['process', 'ioPriority', 'priority'], io['priority'], 0, 7, 'between 0 (highest) and 7 (lowest)');
}

/** sched_setattr(2)'s rules, as runc checks them, plus the real-time priority range. */
function checkScheduler(c: Checker, s: Obj | undefined): void {
  if (s === undefined) return;
  const at = (f: string): Segments => ['process', 'scheduler', f];
  const policy = str(s['policy']);
  if (policy === undefined) return;
  if (policy === 'SCHED_OTHER' || policy === 'SCHED_BATCH') c.range(at('nice'), s['nice'], -20, 19, `between -20 and 19 for ${policy}`);
  else if (s['nice'] !== undefined && num(s['nice']) !== 0) c.bad(at('nice'), `is only meaningful with SCHED_OTHER or SCHED_BATCH, not ${policy}`);
  const realtime = policy === 'SCHED_FIFO' || policy === 'SCHED_RR';
  if (realtime) c.range(at('priority'), s['priority'] ?? 0, 1, 99, `between 1 and 99 for ${policy}`);
  else if ((num(s['priority']) ?? 0) !== 0) c.bad(at('priority'), `is only meaningful with SCHED_FIFO or SCHED_RR, not ${policy}`);
  if (policy !== 'SCHED_DEADLINE') {
    for (const f of ['runtime', 'deadline', 'period']) {
      if ((num(s[f]) ?? 0) !== 0) c.bad(at(f), `is only meaningful with SCHED_DEADLINE, not ${policy}`);
    }
  }
}

/** linux.timeOffsets: only with a new time namespace (runc refuses the same), nanoseconds below a second. */
function checkTimeOffsets(c: Checker, spec: Obj, namespaces: Set<string | undefined>): void {
  const offsets = obj(obj(spec['linux'])?.['timeOffsets']);
  if (offsets === undefined) return;
  if (!namespaces.has('time')) c.bad(['linux', 'timeOffsets'], 'needs a time namespace in linux.namespaces');
  for (const clock of ['monotonic', 'boottime']) {
    c.range(['linux', 'timeOffsets', clock, 'nanosecs'], obj(offsets[clock])?.['nanosecs'], 0, 999999999, 'below one second (0 … 999999999)');
  }
  if (Object.keys(offsets).length > 0 && str(obj(spec['annotations'])?.[TIMENS_ANNOTATION]) !== undefined) {
    c.bad(['annotations', TIMENS_ANNOTATION], 'conflicts with linux.timeOffsets (which becomes this annotation for crun): give one of them');
  }
}

function checkMounts(c: Checker, value: unknown): void {
  arr(value).forEach((m, i) => {
    const mount = obj(m);
    if (mount === undefined) return;
    const at = ['mounts', i];
    // Relative destinations are taken as relative to "/" (runtime-spec 1.2.0 for Linux; runc
    // always did): src/oci/translate.ts makes them absolute for the guest.
    const type = str(mount['type']);
    const bind = bindMount(mount);
    if (bind && (str(mount['source']) ?? '') === '') c.bad([...at, 'source'], 'a bind mount needs a source');
    if (!bind && (type ?? '') === '') c.bad([...at, 'type'], 'is required unless options include bind or rbind');
  });
}

function checkHooks(c: Checker, hooks: Obj | undefined): void {
  for (const kind of HOOK_KINDS) {
    arr(hooks?.[kind]).forEach((h, i) => {
      const hook = obj(h);
      if (hook === undefined) return;
      const at = ['hooks', kind, i];
      c.absolute([...at, 'path'], hook['path']);
      c.env([...at, 'env'], hook['env']);
      const timeout = num(hook['timeout']);
      if (timeout !== undefined && timeout <= 0) c.bad([...at, 'timeout'], `must be a number of seconds above 0, got ${timeout}`);
    });
  }
}

function checkLinux(c: Checker, linux: Obj, namespaces: Set<string | undefined>): void {
  checkNamespaces(c, linux);
  for (const field of ['uidMappings', 'gidMappings']) {
    const maps = arr(linux[field]);
    if (maps.length > 0 && !namespaces.has('user')) c.bad(['linux', field], 'needs a user namespace in linux.namespaces');
    maps.forEach((m, i) => {
      const size = num(obj(m)?.['size']);
      if (size !== undefined && size < 1) c.bad(['linux', field, i, 'size'], 'must be at least 1');
    });
  }
  for (const field of ['maskedPaths', 'readonlyPaths']) {
    const paths = arr(linux[field]);
    paths.forEach((p, i) => c.absolute(['linux', field, i], p));
    if (paths.length > 0 && !namespaces.has('mount')) c.bad(['linux', field], 'needs a mount namespace in linux.namespaces');
  }
  checkDevices(c, linux['devices']);
  const cgroupsPath = str(linux['cgroupsPath']);
  if (cgroupsPath !== undefined && cgroupsPath.includes(':')) {
    const parts = cgroupsPath.split(':');
    const [slice = '', , name = ''] = parts;
    if (parts.length !== 3 || name === '' || (slice !== '' && !slice.endsWith('.slice'))) {
      c.bad(['linux', 'cgroupsPath'], `must be a path or systemd's slice:prefix:name, got ${showValue(cgroupsPath)}`);
    }
  }
  const resources = obj(linux['resources']);
  if (resources !== undefined) checkResources(c, resources);
  checkSysctl(c, obj(linux['sysctl']), namespaces);
  const seccomp = obj(linux['seccomp']);
  if (seccomp !== undefined) checkSeccomp(c, seccomp);
}

function checkDevices(c: Checker, value: unknown): void {
  eachUnique(c, value, ['linux', 'devices'], 'path', 'listed', (dev, devPath, at) => {
    c.absolute([...at, 'path'], devPath);
    const type = str(dev['type']);
    if (type === undefined) return;
    if (!['c', 'b', 'u', 'p'].includes(type)) c.bad([...at, 'type'], `must be one of c, b, u, p, got ${showValue(type)}`);
    else if (type !== 'p' && (num(dev['major']) === undefined || num(dev['minor']) === undefined)) c.bad(at, `a ${type} device needs major and minor`);
  });
}

function checkResources(c: Checker, r: Obj): void {
  const at = (...s: Segments): Segments => ['linux', 'resources', ...s];
  arr(r['devices']).forEach((d, i) => {
    const rule = obj(d);
    const type = str(rule?.['type']);
    if (type !== undefined && !['a', 'b', 'c'].includes(type)) c.bad(at('devices', i, 'type'), `must be one of a, b, c, got ${showValue(type)}`);
    // access: letters other than r, w, m are ignored, by runc and by crun alike.
  });
  const memory = obj(r['memory']);
  if (memory !== undefined) {
    for (const field of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP']) {
      const n = num(memory[field]);
      if (n !== undefined && n < -1) c.bad(at('memory', field), `must be -1 (unlimited) or a number of bytes, got ${n}`);
    }
    const limit = num(memory['limit']);
    const swap = num(memory['swap']);
    if (swap !== undefined && swap > 0) {
      // swap is memory+swap (cgroup v1 semantics); cgroup v2 in the guest needs a memory limit to derive swap from.
      if (limit === undefined || limit <= 0) c.bad(at('memory', 'swap'), 'a memory+swap limit needs a memory limit (linux.resources.memory.limit)');
      else if (swap < limit) c.bad(at('memory', 'swap'), `is memory+swap and must not be below the memory limit ${limit}, got ${swap}`);
    }
  }
  const cpu = obj(r['cpu']);
  if (cpu !== undefined) {
    c.range(at('cpu', 'shares'), cpu['shares'], 2, 262144, 'between 2 and 262144 (or 0: unset)', [0]);
    c.range(at('cpu', 'quota'), cpu['quota'], 1000, Number.MAX_SAFE_INTEGER, 'at least 1000 microseconds (or -1: unlimited)', [-1, 0]);
    c.range(at('cpu', 'period'), cpu['period'], 1000, 1000000, 'between 1000 and 1000000 microseconds', [0]);
    c.range(at('cpu', 'idle'), cpu['idle'], 0, 1, '0 or 1');
    const burst = num(cpu['burst']);
    const quota = num(cpu['quota']);
    if (burst !== undefined && quota !== undefined && quota > 0 && burst > quota) c.bad(at('cpu', 'burst'), `must not exceed cpu.quota ${quota}, got ${burst}`);
    if (burst !== undefined && obj(r['unified'])?.['cpu.max.burst'] !== undefined) {
      c.bad(at('cpu', 'burst'), 'conflicts with linux.resources.unified["cpu.max.burst"] (which it becomes for crun): give one of them');
    }
    const rtRuntime = num(cpu['realtimeRuntime']);
    const rtPeriod = num(cpu['realtimePeriod']);
    if (rtRuntime !== undefined && rtPeriod !== undefined && rtPeriod > 0 && rtRuntime > rtPeriod) {
      c.bad(at('cpu', 'realtimeRuntime'), `must not exceed realtimePeriod ${rtPeriod}, got ${rtRuntime}`);
    }
    for (const field of ['cpus', 'mems']) {
      const list = str(cpu[field]);
      if (list === undefined || list === '') continue;
      const ranges = list.split(',').map((p) => p.split('-').map(Number));
      if (!CPU_LIST.test(list) || ranges.some(([a = 0, b = a]) => b < a)) c.bad(at('cpu', field), `must be a list such as 0-3,6, got ${showValue(list)}`);
    }
  }
  const blockIO = obj(r['blockIO']);
  if (blockIO !== undefined) {
    const weight = (s: Segments, v: unknown): void => c.range(s, v, 10, 1000, 'between 10 and 1000 (or 0: unset)', [0]);
    weight(at('blockIO', 'weight'), blockIO['weight']);
    weight(at('blockIO', 'leafWeight'), blockIO['leafWeight']);
    arr(blockIO['weightDevice']).forEach((d, i) => {
      weight(at('blockIO', 'weightDevice', i, 'weight'), obj(d)?.['weight']);
      weight(at('blockIO', 'weightDevice', i, 'leafWeight'), obj(d)?.['leafWeight']);
    });
  }
  for (const key of Object.keys(obj(r['unified']) ?? {})) {
    if (key.includes('/') || !/^[a-z0-9_]+\.[^.]/.test(key)) c.bad(at('unified', key), 'must name a cgroup v2 interface file such as memory.max');
  }
  refuseResources(c, r);
}

/**
 * Resource settings that crun cannot apply to the guest's cgroup v2 hierarchy (create would fail in
 * the guest, after the VM booted), or that name host devices the VM does not have.
 */
function refuseResources(c: Checker, r: Obj): void {
  const at = (...s: Segments): Segments => ['linux', 'resources', ...s];
  const noV2 = "the guest's cgroup v2 has no";
  const memory = obj(r['memory']) ?? {};
  const memoryFields = [
    ['kernel', 'kernel memory limit'],
    ['kernelTCP', 'kernel TCP memory limit'],
    ['swappiness', 'per-cgroup swappiness'],
    ['useHierarchy', 'use_hierarchy switch (it is always hierarchical)'],
  ];
  for (const [field = '', what = ''] of memoryFields) {
    if (memory[field] !== undefined) c.refuse(at('memory', field), `${noV2} ${what}`);
  }
  if (memory['disableOOMKiller'] === true) c.refuse(at('memory', 'disableOOMKiller'), `${noV2} way to disable the OOM killer`);
  const cpu = obj(r['cpu']) ?? {};
  for (const field of ['realtimePeriod', 'realtimeRuntime']) {
    if ((num(cpu[field]) ?? 0) !== 0) c.refuse(at('cpu', field), `${noV2} real-time CPU limits`);
  }
  if (obj(r['network']) !== undefined) c.refuse(at('network'), `${noV2} net_cls or net_prio controller (cgroup v1 only)`);
  const blockIO = obj(r['blockIO']) ?? {};
  if ((num(blockIO['leafWeight']) ?? 0) > 0) c.refuse(at('blockIO', 'leafWeight'), `${noV2} leaf weight`);
  for (const field of ['weightDevice', 'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice']) {
    if (arr(blockIO[field]).length > 0) c.refuse(at('blockIO', field), 'names host block devices: the VM has none (its files come through virtio-fs)');
  }
  if (Object.keys(obj(r['rdma']) ?? {}).length > 0) c.refuse(at('rdma'), 'the VM has no RDMA devices (no rdma cgroup controller in the guest)');
}

function checkSysctl(c: Checker, sysctl: Obj | undefined, namespaces: Set<string | undefined>): void {
  for (const key of Object.keys(sysctl ?? {})) {
    const at = ['linux', 'sysctl', key];
    // "a/b.c/d" is the same as "a.b/c.d": a slash first means slashes separate (sysctl.d(5)).
    const firstSep = key.search(/[./]/);
    const dotted = firstSep >= 0 && key[firstSep] === '/' ? key.replace(/[./]/g, (ch) => (ch === '.' ? '/' : '.')) : key;
    const pieces = dotted.split(/[./]/);
    if (pieces.length < 2 || !/^[A-Za-z0-9_-]+$/.test(pieces[0] ?? '') || pieces.some((p) => p === '' || /\s/.test(p))) {
      c.bad(at, 'is not a sysctl name such as net.ipv4.ip_forward');
      continue;
    }
    if (dotted.startsWith('fs.mqueue.') || IPC_SYSCTLS.has(dotted)) {
      if (!namespaces.has('ipc')) c.bad(at, 'needs an ipc namespace in linux.namespaces');
    } else if (dotted.startsWith('net.')) {
      if (!namespaces.has('network')) c.bad(at, 'needs a network namespace in linux.namespaces');
    } else if (dotted === 'kernel.hostname') {
      c.bad(at, 'conflicts with the hostname field: set that instead');
    } else if (dotted === 'kernel.domainname') {
      if (!namespaces.has('uts')) c.bad(at, 'needs a uts namespace in linux.namespaces');
    } else {
      c.bad(at, 'is not namespaced: a container may not set it');
    }
  }
}

function checkSeccomp(c: Checker, s: Obj): void {
  const at = (...p: Segments): Segments => ['linux', 'seccomp', ...p];
  const known = (p: Segments, v: unknown): string | undefined => {
    const action = str(v);
    if (action !== undefined && !SECCOMP_ACTIONS.has(action)) c.bad(p, `unknown seccomp action ${showValue(action)}`);
    return action;
  };
  const defaultAction = known(at('defaultAction'), s['defaultAction']);
  if (defaultAction === 'SCMP_ACT_NOTIFY') c.bad(at('defaultAction'), 'SCMP_ACT_NOTIFY cannot be the default action');
  if (s['defaultErrnoRet'] !== undefined && defaultAction !== undefined && !SECCOMP_ERRNO_ACTIONS.has(defaultAction)) {
    c.bad(at('defaultErrnoRet'), `is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${defaultAction}`);
  }
  let notify = false;
  arr(s['syscalls']).forEach((sc, i) => {
    const call = obj(sc);
    if (call === undefined) return;
    const action = known(at('syscalls', i, 'action'), call['action']);
    if (action === 'SCMP_ACT_NOTIFY') notify = true;
    if (call['errnoRet'] !== undefined && action !== undefined && !SECCOMP_ERRNO_ACTIONS.has(action)) {
      c.bad(at('syscalls', i, 'errnoRet'), `is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${action}`);
    }
    arr(call['names']).forEach((n, j) => {
      if (n === '') c.bad(at('syscalls', i, 'names', j), 'must not be empty');
    });
    arr(call['args']).forEach((a, j) => {
      c.range(at('syscalls', i, 'args', j, 'index'), obj(a)?.['index'], 0, 5, 'between 0 and 5 (a system call has six arguments)');
    });
  });
  const listener = str(s['listenerPath']) ?? '';
  if (notify && listener === '') c.bad(at('listenerPath'), 'is required when a syscall uses SCMP_ACT_NOTIFY');
}
