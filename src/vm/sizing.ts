/**
 * How big a container's VM is. The container's cgroup limits are applied inside the guest by crun;
 * the VM itself must be large enough to honour them (a 1 GiB memory limit in a 256 MiB VM would
 * never be reached) and no larger than needed (memory not touched costs nothing under QEMU, vCPUs
 * cost scheduling, and under TCG more vCPUs are slower, not faster).
 */
import { KataError } from '../errors.js';
import type { Spec } from '../oci/spec.js';

export interface SizingConfig {
  /** VM memory when the container has no memory limit. */
  defaultMemoryMiB: number;
  /** Added to a container's memory limit: the guest kernel, agent, crun and page cache. */
  memoryOverheadMiB: number;
  minMemoryMiB: number;
  maxMemoryMiB: number;
  defaultVcpus: number;
  maxVcpus: number;
}

export interface VmSize {
  memoryMiB: number;
  vcpus: number;
  /** Why, for the monitor log. */
  reason: string;
}

const MIB = 1024 * 1024;

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, n));
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The highest CPU index named by a cpuset list such as "0-3,6", plus one: the vCPUs it needs. */
export function cpusetCount(list: string): number {
  const cpus = new Set<number>();
  for (const part of list.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(p);
    if (m === null) throw new KataError('E_INVALID_BUNDLE', `linux.resources.cpu.cpus: bad cpu list ${JSON.stringify(list)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 4096) throw new KataError('E_INVALID_BUNDLE', `linux.resources.cpu.cpus: bad cpu range ${JSON.stringify(p)}`);
    for (let i = a; i <= b; i++) cpus.add(i);
  }
  // The guest numbers its CPUs from 0: "1" needs two vCPUs for CPU 1 to exist.
  return cpus.size === 0 ? 0 : Math.max(...cpus) + 1;
}

/** The VM size for a spec: memory limit + overhead, CPU quota (or cpuset) as a vCPU count. */
export function vmSize(spec: Spec, cfg: SizingConfig): VmSize {
  const res = spec.linux?.resources ?? {};
  const mem = typeof res['memory'] === 'object' && res['memory'] !== null ? (res['memory'] as Record<string, unknown>) : {};
  const cpu = typeof res['cpu'] === 'object' && res['cpu'] !== null ? (res['cpu'] as Record<string, unknown>) : {};
  const why: string[] = [];

  let memoryMiB = cfg.defaultMemoryMiB;
  const limit = num(mem['limit']);
  if (limit !== undefined && limit > 0) {
    memoryMiB = Math.ceil(limit / MIB) + cfg.memoryOverheadMiB;
    why.push(`memory limit ${Math.ceil(limit / MIB)} MiB + ${cfg.memoryOverheadMiB} MiB overhead`);
  }
  const clampedMem = clamp(memoryMiB, cfg.minMemoryMiB, cfg.maxMemoryMiB);
  if (clampedMem !== memoryMiB) why.push(`memory bounded to ${clampedMem} MiB`);

  let vcpus = cfg.defaultVcpus;
  const quota = num(cpu['quota']);
  const period = num(cpu['period']) ?? 100000;
  if (quota !== undefined && quota > 0 && period > 0) {
    vcpus = Math.ceil(quota / period);
    why.push(`cpu quota ${quota}/${period}`);
  }
  if (typeof cpu['cpus'] === 'string' && cpu['cpus'] !== '') {
    const need = cpusetCount(cpu['cpus']);
    if (need > cfg.maxVcpus) {
      throw new KataError('E_UNSUPPORTED', `linux.resources.cpu.cpus: ${JSON.stringify(cpu['cpus'])} names CPU ${need - 1}, but a VM has at most ${cfg.maxVcpus} vCPUs (default_maxvcpus)`);
    }
    if (need > vcpus || !(quota !== undefined && quota > 0)) {
      vcpus = Math.max(need, quota !== undefined && quota > 0 ? vcpus : 1);
      why.push(`cpuset ${cpu['cpus']}`);
    }
  }
  const clampedCpus = clamp(vcpus, 1, cfg.maxVcpus);
  if (clampedCpus !== vcpus) why.push(`vcpus bounded to ${clampedCpus}`);

  return { memoryMiB: clampedMem, vcpus: clampedCpus, reason: why.length === 0 ? 'defaults' : why.join(', ') };
}

/** The hypervisor settings a container may override through annotations (Kata's names). */
export interface AnnotationOverrides {
  vcpus?: number;
  memoryMiB?: number;
  kernelParams?: string[];
}

export const HYPERVISOR_ANNOTATION_PREFIX = 'io.katacontainers.config.hypervisor.';

/**
 * `io.katacontainers.config.hypervisor.<key>` annotations, honoured only for keys the
 * configuration's allowlist (`enable_annotations`, regular expressions matched against <key>)
 * enables, as Kata does. An annotation that is not enabled, or has a bad value, is an error:
 * silently ignoring a requested VM size would surprise the user.
 */
export function annotationOverrides(annotations: Readonly<Record<string, string>>, allow: readonly string[]): AnnotationOverrides {
  const out: AnnotationOverrides = {};
  const patterns = allow.map((a) => new RegExp(`^(?:${a})$`));
  for (const [k, v] of Object.entries(annotations)) {
    if (!k.startsWith(HYPERVISOR_ANNOTATION_PREFIX)) continue;
    const key = k.slice(HYPERVISOR_ANNOTATION_PREFIX.length);
    if (!patterns.some((p) => p.test(key))) {
      throw new KataError('E_UNSUPPORTED', `annotation ${k} is not enabled (enable_annotations in the configuration)`);
    }
    const positive = (): number => {
      if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > 1 << 20) throw new KataError('E_INVALID_BUNDLE', `annotation ${k}: ${JSON.stringify(v)} is not a positive integer`);
      return Number(v);
    };
    switch (key) {
      case 'default_vcpus':
        out.vcpus = positive();
        break;
      case 'default_memory':
        out.memoryMiB = positive();
        break;
      case 'kernel_params':
        out.kernelParams = v.split(/\s+/).filter((p) => p !== '');
        break;
      default:
        throw new KataError('E_UNSUPPORTED', `annotation ${k}: this hypervisor setting cannot be changed per container`);
    }
  }
  return out;
}
