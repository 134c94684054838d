import fs from 'node:fs';
import path from 'node:path';
import { KataError } from '../errors.js';
import { connectUnix, spawnSupervised, tail, waitForPath } from '../util/child.js';
import type { Hypervisor, HypervisorCapabilities, RunningVm, VmSpec } from './hypervisor.js';
import { buildQemuArgs } from './qemu-args.js';
import { QmpClient } from './qmp.js';

export class QemuHypervisor implements Hypervisor {
  constructor(private readonly logFile: string) {}

  capabilities(): HypervisorCapabilities {
    return { vsock: fs.existsSync('/dev/vhost-vsock'), sharedFs: 'virtio-fs' };
  }

  async start(spec: VmSpec, signal: AbortSignal): Promise<RunningVm> {
    const proc = spawnSupervised(spec.qemuPath, buildQemuArgs(spec), this.logFile, spec.workDir, spec.passFds);
    const qmpPath = path.resolve(spec.workDir, spec.qmpSocket);
    let qmp: QmpClient;
    try {
      const deadline = Date.now() + 20000;
      await waitForPath(qmpPath, 'QEMU', 20000, proc.hasExited, signal);
      fs.chmodSync(qmpPath, 0o600);
      // The path exists from QEMU's bind(); it listens a moment later: retry a refused connect.
      qmp = await QmpClient.connect(await connectUnix(spec.qmpSocket, 'QEMU', Math.max(deadline - Date.now(), 1000), proc.hasExited, signal));
    } catch (e) {
      await proc.kill();
      const why = tail(this.logFile);
      throw new KataError('E_VM', `QEMU failed to start${why === '' ? '' : `: ${why}`}`, { cause: e });
    }
    for (const d of spec.devices) {
      if (d.kind !== 'serial-port') continue;
      const p = path.resolve(spec.workDir, d.socket);
      if (fs.existsSync(p)) fs.chmodSync(p, 0o600);
    }
    void proc.exited.then(() => qmp.close());
    return {
      pid: proc.pid,
      exited: proc.exited,
      pause: async () => {
        await qmp.execute('stop', {});
      },
      resume: async () => {
        await qmp.execute('cont', {});
      },
      kill: async () => {
        qmp.close();
        await proc.kill();
      },
    };
  }
}
