import fs from 'node:fs';
import path from 'node:path';
import { KataError, errnoCode } from '../errors.js';
import { isRecord } from '../util/json.js';
import { isInside } from '../util/paths.js';
import { CAPABILITY_SETS, isKnownCapability } from './caps.js';
import { rulesFor } from './fields.js';
import { resolveInRoot } from './home.js';
import type { Mount, Rlimit, Spec } from './spec.js';

/** Where the agent mounts the virtio-fs share, and where the container's rootfs appears in it. */
export const GUEST_SHARED_DIR = '/run/kata/shared';
export const GUEST_ROOTFS = `${GUEST_SHARED_DIR}/rootfs`;
/** linux.rootfsPropagation in the guest's spec, whatever the host's says (see toGuestPlan). */
export const GUEST_ROOTFS_PROPAGATION = 'private';
/** Where crun in the guest writes the stderr of the hooks it runs: the share's top, so the host reads it. */
export const HOOKS_STDERR = 'hooks.stderr';
/** The guest's root network namespace (the agent is PID 1): the one the VM's NICs are in. */
export const GUEST_ROOT_NETNS = '/proc/1/ns/net';

/** A host path made visible in the share: bound (inside virtiofsd's namespace) at shared/<name>. */
export interface ShareBind {
  host: string;
  name: string;
  kind: 'dir' | 'file';
}

/** The runtime-spec version the guest's crun 1.8.1 accepts (it wants "1.0" in the version). */
export const GUEST_OCI_VERSION = '1.0.2';
/** crun's annotation for time namespace offsets (the agent honours it when timeOffsets is not given). */
export const TIMENS_ANNOTATION = 'run.oci.timens_offset';

type Json = Record<string, unknown>;

/**
 * How each `translate` row of src/oci/fields.ts is rewritten for crun 1.8.1, by the row's path.
 * Each gets the guest spec (a copy of the host's) and leaves the field out of it.
 */
export const TRANSLATIONS: Readonly<Record<string, (guest: Json) => void>> = {
  'linux.resources.cpu.burst': (guest) => {
    const resources = isRecord(guest['linux']) && isRecord(guest['linux']['resources']) ? guest['linux']['resources'] : undefined;
    const cpu = resources !== undefined && isRecord(resources['cpu']) ? resources['cpu'] : undefined;
    if (resources === undefined || cpu === undefined || cpu['burst'] === undefined) return;
    const burst = Number(cpu['burst']);
    delete cpu['burst'];
    resources['unified'] = { ...(isRecord(resources['unified']) ? resources['unified'] : {}), 'cpu.max.burst': String(burst) };
  },
  // Only MPOL_DEFAULT without nodes gets this far (bundle.ts refuses the rest): the kernel's default.
  'linux.memoryPolicy': (guest) => {
    if (isRecord(guest['linux'])) delete guest['linux']['memoryPolicy'];
  },
};

/**
 * The `translate` rows under linux.resources applied to `{linux: {resources}}`: what `update`
 * sends to crun update in the guest goes through the same rewriting as create's spec.
 */
export function translateResources(guest: Json): void {
  for (const rule of rulesFor('translate')) if (rule.path.startsWith('linux.resources.')) TRANSLATIONS[rule.path]?.(guest);
}

/** The guest spec's fields from later runtime-spec releases, rewritten for crun 1.8.1 (src/oci/fields.ts). */
function translateNewerFields(guest: Json): void {
  guest['ociVersion'] = GUEST_OCI_VERSION;
  for (const rule of rulesFor('translate')) TRANSLATIONS[rule.path]?.(guest);
}

export interface GuestPlan {
  spec: Spec;
  /** Bind mounts' sources, to be bound into the share (the rootfs is not among them). */
  binds: ShareBind[];
}

/**
 * runc gives a tmpfs the mode of the directory it covers (a chmod after the mount, whatever
 * `mode=` said); crun uses the mount's own. The mountpoint is the rootfs's, which the host sees,
 * unless an earlier mount of the spec covers it: then it is left to crun.
 */
function withMountpointMode(m: Mount, rootfs: string, earlier: readonly Mount[]): Mount {
  const dest = path.posix.normalize(m.destination);
  if (earlier.some((e) => dest.startsWith(`${path.posix.normalize(e.destination).replace(/\/$/, '')}/`))) return m;
  const host = resolveInRoot(rootfs, dest);
  let st: fs.Stats;
  try {
    if (host === undefined) return m;
    st = fs.statSync(host);
  } catch {
    // runc makes a missing mountpoint (0755, through symlinks resolved in the rootfs, under the
    // rules of the directory it is made in: setgid is inherited); crun would refuse a dangling
    // symlink on the way. A new one leaves the tmpfs its own mode, as under runc.
    try {
      if (host !== undefined) fs.mkdirSync(host, { recursive: true, mode: 0o755 });
    } catch {
      // crun says what is wrong with the path
    }
    return m;
  }
  if (!st.isDirectory()) return m;
  // The covered directory's mode, where the spec's `mode=` was (or last): nothing else moves.
  const mode = `mode=${(st.mode & 0o7777).toString(8)}`;
  const options = m.options ?? [];
  const at = options.findIndex((o) => o.startsWith('mode='));
  return { ...m, options: at < 0 ? [...options, mode] : options.map((o, i) => (i === at ? mode : o)).filter((o, i) => i === at || !o.startsWith('mode=')) };
}

export function isBindMount(m: { type?: string; options?: string[] }): boolean {
  const opts = m.options ?? [];
  return m.type === 'bind' || opts.includes('bind') || opts.includes('rbind');
}

/** /proc/<pid>/limits names, as the runtime-spec's RLIMIT_ types. */
const LIMIT_NAMES: Readonly<Record<string, string>> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/** The guest kernel's fs.nr_open: a hard RLIMIT_NOFILE above it cannot be set there. */
export const GUEST_NR_OPEN = 1048576;

/**
 * The limits in a /proc/<pid>/limits text, as runtime-spec rlimits. A limit with an `unlimited`
 * side is left out: RLIM_INFINITY (2^64-1) has no exact JSON number in JavaScript, and the guest
 * kernel's defaults for those types are unlimited already on that side.
 */
export function parseProcLimits(text: string): Rlimit[] {
  const out: Rlimit[] = [];
  for (const line of text.split('\n')) {
    const name = Object.keys(LIMIT_NAMES).find((n) => line.startsWith(`${n} `));
    if (name === undefined) continue;
    const [soft, hard] = line.slice(name.length).trim().split(/\s+/);
    if (soft === undefined || hard === undefined || !/^[0-9]+$/.test(soft) || !/^[0-9]+$/.test(hard)) continue;
    const type = LIMIT_NAMES[name] ?? '';
    let s = Number(soft);
    let h = Number(hard);
    if (!Number.isSafeInteger(s) || !Number.isSafeInteger(h)) continue;
    if (type === 'RLIMIT_NOFILE') [s, h] = [Math.min(s, GUEST_NR_OPEN), Math.min(h, GUEST_NR_OPEN)];
    out.push({ type, soft: s, hard: h });
  }
  return out;
}

/**
 * The rlimits the container's process starts with. runc's container inherits the limits of its
 * caller for every type the spec does not set (docker and containerd's CRI set none); in a VM the
 * process would get the guest kernel's defaults instead, so the caller's are written into the
 * guest spec for those types.
 */
export function withInheritedRlimits(given: readonly Rlimit[] | undefined, inherited: readonly Rlimit[]): Rlimit[] {
  const set = new Set((given ?? []).map((r) => r.type));
  return [...(given ?? []), ...inherited.filter((r) => !set.has(r.type))];
}

/**
 * The spec the guest's crun runs: the host's, with host-only parts replaced. Host paths never reach
 * the guest: the rootfs is the shared one, each bind mount's source becomes its copy in the share
 * (read-only and other options stay, crun applies them in the guest), namespace paths (host
 * objects) become new namespaces, the network namespace is the guest's own (the VM mirrors the
 * host's), the cgroup path is the guest's own, hooks stay on the host.
 */
export function toGuestPlan(spec: Spec, id: string, bundleDir: string, inheritedRlimits: readonly Rlimit[] = []): GuestPlan {
  const copy = structuredClone(spec);
  if (copy.process && inheritedRlimits.length > 0) copy.process.rlimits = withInheritedRlimits(copy.process.rlimits, inheritedRlimits);
  copy.root = { path: GUEST_ROOTFS, ...(spec.root?.readonly === undefined ? {} : { readonly: spec.root.readonly }) };
  // Hooks that run in the runtime's namespace run on the host (src/oci/hooks.ts); createContainer
  // and startContainer run in the container's namespaces, which are the guest's: crun runs them.
  const inGuest = { createContainer: spec.hooks?.createContainer, startContainer: spec.hooks?.startContainer };
  delete copy.hooks;
  if (inGuest.createContainer?.length || inGuest.startContainer?.length) {
    // crun's own annotation: its hooks' stderr goes there, to be quoted when one fails (as runc does).
    copy.annotations = { ...copy.annotations, 'run.oci.hooks.stderr': `${GUEST_SHARED_DIR}/${HOOKS_STDERR}` };
    copy.hooks = {
      ...(inGuest.createContainer?.length ? { createContainer: inGuest.createContainer } : {}),
      ...(inGuest.startContainer?.length ? { startContainer: inGuest.startContainer } : {}),
    };
  }
  const binds: ShareBind[] = [];
  const rootfs = path.resolve(bundleDir, spec.root?.path ?? '');
  copy.mounts = (copy.mounts ?? []).map((given, i) => {
    // A relative destination is relative to "/" (runtime-spec 1.2.0, Linux; runc has always
    // taken it so); crun gets it absolute.
    const m = given.destination.startsWith('/') ? given : { ...given, destination: path.posix.join('/', given.destination) };
    if (m.type === 'tmpfs') return withMountpointMode(m, rootfs, (spec.mounts ?? []).slice(0, i));
    if (!isBindMount(m)) return m;
    const host = path.resolve(bundleDir, m.source ?? '');
    // A source in the rootfs is the shared rootfs's path in the guest: crun resolves it in mount
    // order there, so it may lie in (or be made by) an earlier mount of the spec, as under runc.
    if (isInside(host, rootfs)) return { ...m, source: path.posix.join(GUEST_ROOTFS, path.relative(rootfs, host)) };
    let st: fs.Stats;
    try {
      st = fs.statSync(host);
    } catch (e) {
      const why = errnoCode(e) === 'ENOENT' ? 'no such file or directory' : String(e);
      throw new KataError('E_INVALID_BUNDLE', `mounts.${i}: bind source ${host}: ${why}`);
    }
    const name = `mounts/${i}`;
    binds.push({ host, name, kind: st.isDirectory() ? 'dir' : 'file' });
    return { ...m, source: `${GUEST_SHARED_DIR}/${name}` };
  });
  // The guest kernel has no AppArmor and crun refuses a profile it cannot apply; docker sets
  // `docker-default` on every AppArmor host. The VM boundary is the confinement (as in Kata).
  if (copy.process) delete (copy.process as unknown as Record<string, unknown>)['apparmorProfile'];
  // Capabilities the guest kernel does not know are left out (the CLI warns, as runc does).
  const caps = copy.process?.capabilities;
  if (caps) for (const set of CAPABILITY_SETS) if (caps[set]) caps[set] = caps[set].filter(isKnownCapability);
  if (copy.linux) {
    copy.linux.cgroupsPath = `/kata/${id}`;
    // Mount propagation (docs/architecture.md): crun applies rootfsPropagation twice, to the VM's
    // own mounts before it mounts anything and to the container's root after pivot_root, where
    // its default (rprivate) undoes every bind's `shared`/`rshared`. runc applies it only before,
    // to the host's mounts. `private` (not recursive) changes nothing in the guest (no mount of
    // the VM is shared, the container's root is a private bind) and leaves each bind as its
    // options made it, which is what runc gives.
    copy.linux.rootfsPropagation = GUEST_ROOTFS_PROPAGATION;
    // The container's network namespace is the VM's own: the guest's root netns, where the agent
    // mirrors the host netns's interfaces (src/net, docs/networking.md). crun joins it by path (so
    // net.* sysctls, which crun allows only with a network entry, still apply). Others are new.
    if (copy.linux.namespaces) {
      copy.linux.namespaces = copy.linux.namespaces.map((ns) => (ns.type === 'network' ? { type: 'network', path: GUEST_ROOT_NETNS } : { type: ns.type }));
    }
  }
  translateNewerFields(copy as unknown as Json);
  return { spec: copy, binds };
}
