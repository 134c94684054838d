/**
 * The effective runtime configuration's types. Built by src/config/resolve.ts from built-in
 * defaults, configuration.toml and environment variables; handed to the monitor in launch.json,
 * so every field is plain JSON.
 */

export type Machine = 'microvm' | 'q35';
export type Accel = 'auto' | 'kvm' | 'tcg';
/** Kata's [runtime] internetworking_model values. */
export type InternetworkingModel = 'tcfilter' | 'macvtap' | 'none';
export type SharedFs = 'virtio-fs';
/** What a container without a network namespace of its own (the host's network) gets. */
export type HostNetwork = 'refuse' | 'isolated';

export interface RuntimeConfig {
  // [hypervisor.qemu]
  /** QEMU binary (`path`). */
  qemuPath: string;
  /** Guest kernel (`kernel`), a PVH ELF for microvm. */
  kernel: string;
  /** Guest initramfs (`initrd`); the agent is its /init. */
  initrd: string;
  /** QEMU machine (`machine_type`). */
  machine: Machine;
  /** Accelerator wanted (`accelerator`, ours): auto = KVM when usable, else TCG (src/vm/accel.ts). */
  accel: Accel;
  /** Extra guest kernel command-line parameters (`kernel_params`, space-separated in the file). */
  kernelParams: string[];
  /** vCPUs of a VM whose container has no CPU limit (`default_vcpus`). */
  vcpus: number;
  /** Most vCPUs a VM may get (`default_maxvcpus`; 0 in the file = the host's CPU count). Always >= vcpus. */
  maxVcpus: number;
  /** MiB of a VM whose container has no memory limit (`default_memory`). */
  memoryMiB: number;
  /** MiB added to a container's memory limit to size its VM: guest kernel, agent, crun (`memory_overhead`, ours). */
  memoryOverheadMiB: number;
  /**
   * MiB the host cgroup's memory limit allows beyond the VM's RAM: QEMU's own memory (TCG's
   * translation cache included), the monitor, virtiofsd, exec helpers (`host_memory_overhead`, ours).
   */
  hostMemoryOverheadMiB: number;
  /** Least MiB any VM gets (`min_memory`, ours). Always <= memoryMiB. */
  minMemoryMiB: number;
  /** Most MiB a VM may get (`default_maxmemory`; 0 in the file = the host's memory). Always >= memoryMiB. */
  maxMemoryMiB: number;
  /** The shared filesystem for the rootfs and bind mounts (`shared_fs`); only virtio-fs exists. */
  sharedFs: SharedFs;
  /** virtiofsd binary (`virtio_fs_daemon`). */
  virtiofsdPath: string;
  /**
   * Which `io.katacontainers.config.hypervisor.<name>` annotations a bundle may use to change its
   * VM (`enable_annotations`): regular expressions each matched against the whole <name>
   * (annotationOverrides in src/vm/sizing.ts). Empty: none.
   */
  enableAnnotations: string[];

  // [agent.kata]
  /** Seconds to wait for the agent's handshake after QEMU started (`dial_timeout`). */
  agentTimeoutSec: number;
  /** The agent logs debug lines to the guest console, console.log (`enable_debug`). */
  agentDebug: boolean;

  // [runtime]
  /** Debug-level runtime logging, as --debug (`enable_debug`). */
  debug: boolean;
  /** How the VM joins the container's network namespace (`internetworking_model`): docs/networking.md. */
  internetworkingModel: InternetworkingModel;
  /**
   * A spec without a network namespace asks for the host's network, which a VM cannot share
   * (`host_network`, ours): `refuse` fails create; `isolated` gives the VM loopback only.
   */
  hostNetwork: HostNetwork;
}

/** Where one effective value came from. */
export type ValueSource = ({ kind: 'default' } | { kind: 'file' } | { kind: 'env'; name: string }) & { note?: string };

export interface ConfigWarning {
  /** `unused`: a Kata key or section this runtime ignores; `unknown`: a key neither knows (a typo?). */
  kind: 'unused' | 'unknown';
  /** Dotted TOML key, e.g. hypervisor.qemu.image. */
  key: string;
  message: string;
}

/** Which configuration file was chosen, and why. */
export interface ConfigFileChoice {
  path: string;
  /** flag: --config; env: KATA_CONF_FILE; default: the standard location, optional. */
  via: 'flag' | 'env' | 'default';
}

/** The effective configuration with its provenance, for `kata-runtime env` and `check`. */
export interface ResolvedConfig {
  config: RuntimeConfig;
  /** The file that was read; undefined: none (built-in defaults and environment only). */
  file: string | undefined;
  choice: ConfigFileChoice | undefined;
  sources: Record<keyof RuntimeConfig, ValueSource>;
  warnings: ConfigWarning[];
}

/** Facts about the host that defaults depend on (injectable for tests). */
export interface HostInfo {
  cpus: number;
  memoryMiB: number;
}
