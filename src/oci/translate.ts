import type { Spec } from './spec.js';

/** Where the agent mounts the virtio-fs share, and where the container's rootfs appears in it. */
export const GUEST_SHARED_DIR = '/run/kata/shared';
export const GUEST_ROOTFS = `${GUEST_SHARED_DIR}/rootfs`;

/**
 * The spec the guest's crun runs: the host's, with host-only parts replaced. Host paths never reach
 * the guest: the rootfs is the shared one, namespace paths (host objects) become new namespaces,
 * the cgroup path is the guest's own, hooks stay on the host.
 */
export function toGuestSpec(spec: Spec, id: string): Spec {
  const copy = structuredClone(spec);
  copy.root = { path: GUEST_ROOTFS, ...(spec.root?.readonly === undefined ? {} : { readonly: spec.root.readonly }) };
  delete copy.hooks;
  if (copy.linux) {
    copy.linux.cgroupsPath = `/kata/${id}`;
    if (copy.linux.namespaces) copy.linux.namespaces = copy.linux.namespaces.map((ns) => ({ type: ns.type }));
  }
  return copy;
}
