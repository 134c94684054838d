/**
 * The narrow hypervisor interface. Devices are a closed union; callers ask capabilities(), never
 * "is this QEMU?".
 */
export type Device =
  | { kind: 'virtio-fs'; socket: string; tag: string }
  | { kind: 'serial-port'; socket: string; name: string }
  | { kind: 'vsock'; guestCid: number }
  /** A virtio-net NIC on a tap that QEMU opens by name in its own network namespace. */
  | { kind: 'net'; mac: string; vhost: boolean; tap: { ifname: string } | { fd: number } };

export type Accelerator = 'kvm' | 'tcg';
export type MachineType = 'microvm' | 'q35';

export interface VmSpec {
  name: string;
  /** QEMU's working directory; socket paths are relative to it (unix socket paths are short). */
  workDir: string;
  qemuPath: string;
  machine: MachineType;
  accel: Accelerator;
  kernel: string;
  initrd: string;
  kernelParams: string[];
  memoryMiB: number;
  vcpus: number;
  qmpSocket: string;
  consoleLog: string;
  devices: Device[];
  /** Open fds QEMU inherits as 3, 4, ... (macvtap devices: `tap: { fd }` names them). */
  passFds?: number[];
}

export interface HypervisorCapabilities {
  /** Can the guest reach the agent over vsock (host has /dev/vhost-vsock)? */
  vsock: boolean;
  sharedFs: 'virtio-fs';
}

export interface RunningVm {
  readonly pid: number;
  /** Resolves when the VM process has exited, with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Stops the VM at once (SIGKILL) and waits for the process to be gone. */
  kill(): Promise<void>;
}

export interface Hypervisor {
  capabilities(): HypervisorCapabilities;
  start(spec: VmSpec, signal: AbortSignal): Promise<RunningVm>;
}
