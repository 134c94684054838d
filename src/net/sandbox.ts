/**
 * Where the monitor (and so QEMU and its taps) lives: the container's network namespace on the
 * host. A netns path in the spec is joined; a network entry without a path gets a new netns (an
 * engine's prestart hook may still move interfaces into it, as docker's does); no entry at all is
 * the host's network, which a VM cannot share (docs/networking.md).
 */
import fs from 'node:fs';
import type { RuntimeConfig } from '../config.js';
import { KataError, errnoCode } from '../errors.js';
import type { LaunchNetwork } from '../monitor/launch.js';
import type { Spec } from '../oci/spec.js';
import { tool } from './host.js';

/** statfs f_type of nsfs, the filesystem of /proc/<pid>/ns/* and their bind mounts. */
const NSFS_MAGIC = 0x6e736673;

export interface Sandbox {
  /** argv prefix that starts the monitor in its netns (empty: the caller's). */
  wrapper: string[];
  network: LaunchNetwork;
}

export const HOST_NETWORK_REFUSED =
  "the spec has no network namespace, i.e. it asks for the host's network, which a VM cannot share; " +
  'give the container a network namespace (podman/docker: a bridge network or --network none), ' +
  'or set host_network = "isolated" in configuration.toml for a VM with loopback only';

export function sandboxFor(spec: Spec, config: Pick<RuntimeConfig, 'hostNetwork' | 'internetworkingModel'>): Sandbox {
  const entry = spec.linux?.namespaces?.find((n) => n.type === 'network');
  const mirror = config.internetworkingModel !== 'none';
  const model = config.internetworkingModel === 'macvtap' ? 'macvtap' : 'tcfilter';
  if (entry === undefined) {
    if (config.hostNetwork === 'refuse') throw new KataError('E_UNSUPPORTED', HOST_NETWORK_REFUSED);
    return { wrapper: [], network: { mirror: false, netns: null, model } };
  }
  if (entry.path === undefined || entry.path === '') {
    return { wrapper: [tool('unshare'), '--net', '--'], network: { mirror, netns: null, model } };
  }
  checkNetns(entry.path);
  return { wrapper: [tool('nsenter'), `--net=${entry.path}`, '--'], network: { mirror, netns: entry.path, model } };
}

function checkNetns(p: string): void {
  let type: number;
  try {
    type = fs.statfsSync(p).type;
  } catch (e) {
    const why = errnoCode(e) === 'ENOENT' ? 'no such file or directory' : e instanceof Error ? e.message : String(e);
    throw new KataError('E_INVALID_BUNDLE', `linux.namespaces: network namespace ${p}: ${why}`);
  }
  if (type !== NSFS_MAGIC) throw new KataError('E_INVALID_BUNDLE', `linux.namespaces: ${p} is not a network namespace`);
}
