import fs from 'node:fs';
import path from 'node:path';
import { KataError, errnoCode } from '../errors.js';
import { isInside } from '../util/paths.js';
import { CAPABILITY_SETS, isKnownCapability } from './caps.js';
import { resolveInRoot } from './home.js';
import type { Mount, Spec } from './spec.js';

/** Where the agent mounts the virtio-fs share, and where the container's rootfs appears in it. */
export const GUEST_SHARED_DIR = '/run/kata/shared';
export const GUEST_ROOTFS = `${GUEST_SHARED_DIR}/rootfs`;
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
  const options = (m.options ?? []).filter((o) => !o.startsWith('mode='));
  return { ...m, options: [...options, `mode=${(st.mode & 0o7777).toString(8)}`] };
}

export function isBindMount(m: { type?: string; options?: string[] }): boolean {
  const opts = m.options ?? [];
  return m.type === 'bind' || opts.includes('bind') || opts.includes('rbind');
}

/**
 * The spec the guest's crun runs: the host's, with host-only parts replaced. Host paths never reach
 * the guest: the rootfs is the shared one, each bind mount's source becomes its copy in the share
 * (read-only and other options stay, crun applies them in the guest), namespace paths (host
 * objects) become new namespaces, the network namespace is the guest's own (the VM mirrors the
 * host's), the cgroup path is the guest's own, hooks stay on the host.
 */
export function toGuestPlan(spec: Spec, id: string, bundleDir: string): GuestPlan {
  const copy = structuredClone(spec);
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
  copy.mounts = (copy.mounts ?? []).map((m, i) => {
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
    // The container's network namespace is the VM's own: the guest's root netns, where the agent
    // mirrors the host netns's interfaces (src/net, docs/networking.md). crun joins it by path (so
    // net.* sysctls, which crun allows only with a network entry, still apply). Others are new.
    if (copy.linux.namespaces) {
      copy.linux.namespaces = copy.linux.namespaces.map((ns) => (ns.type === 'network' ? { type: 'network', path: GUEST_ROOT_NETNS } : { type: ns.type }));
    }
  }
  return { spec: copy, binds };
}
