import type { ContainerRecord } from './store.js';

/** runc's `state` output. Kept apart from runtime.ts so that the `state` fast path stays light. */
export interface StateOutput {
  ociVersion: string;
  id: string;
  pid: number;
  status: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

export function toStateOutput(rec: ContainerRecord): StateOutput {
  return {
    ociVersion: rec.ociVersion,
    id: rec.id,
    pid: rec.status === 'stopped' ? 0 : rec.monitorPid,
    status: rec.status,
    bundle: rec.bundle,
    rootfs: rec.rootfs,
    created: rec.created,
    owner: rec.owner,
    ...(Object.keys(rec.annotations).length > 0 ? { annotations: rec.annotations } : {}),
  };
}
