import fs from 'node:fs';

/**
 * Runtime configuration. Every default works on a machine prepared by setup. Environment variables
 * override single values (the configuration.toml file comes with the spec work; see docs).
 */
export interface RuntimeConfig {
  qemuPath: string;
  virtiofsdPath: string;
  kernel: string;
  initrd: string;
  machine: 'microvm' | 'q35';
  accel: 'auto' | 'kvm' | 'tcg';
  memoryMiB: number;
  vcpus: number;
  kernelParams: string[];
  /** Seconds to wait for the agent's handshake after QEMU started. */
  agentTimeoutSec: number;
  agentDebug: boolean;
}

export const GUEST_DIR = '/usr/local/share/kata-runtime/guest';

function num(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${v}: must be a positive integer`);
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const guestDir = env['KATA_GUEST_DIR'] ?? GUEST_DIR;
  const accel = env['KATA_ACCEL'];
  return {
    qemuPath: env['KATA_QEMU'] ?? '/usr/bin/qemu-system-x86_64',
    virtiofsdPath: env['KATA_VIRTIOFSD'] ?? (fs.existsSync('/usr/libexec/virtiofsd') ? '/usr/libexec/virtiofsd' : '/usr/lib/qemu/virtiofsd'),
    kernel: env['KATA_KERNEL'] ?? `${guestDir}/vmlinux`,
    initrd: env['KATA_INITRD'] ?? `${guestDir}/initrd.img`,
    machine: env['KATA_MACHINE'] === 'q35' ? 'q35' : 'microvm',
    accel: accel === 'kvm' || accel === 'tcg' ? accel : 'auto',
    memoryMiB: num(env['KATA_MEMORY_MIB'], 256, 'KATA_MEMORY_MIB'),
    vcpus: num(env['KATA_VCPUS'], 1, 'KATA_VCPUS'),
    kernelParams: (env['KATA_KERNEL_PARAMS'] ?? '').split(/\s+/).filter((s) => s !== ''),
    agentTimeoutSec: num(env['KATA_AGENT_TIMEOUT'], 60, 'KATA_AGENT_TIMEOUT'),
    agentDebug: env['KATA_AGENT_DEBUG'] === '1',
  };
}
