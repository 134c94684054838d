/**
 * The limits the host cgroup gets, which hold a VM rather than the container's processes
 * (docs/architecture.md, "The container's cgroup on the host"):
 * - memory: the container's limit plus the VM's `memory_overhead` (what sized its RAM), at most the
 *   VM's RAM, plus `host_memory_overhead` (QEMU's own memory, the monitor, virtiofsd, exec helpers).
 *   Guest RAM, once touched, stays charged to the host cgroup, so a host limit under RAM + overhead
 *   could OOM-kill the whole VM while the container is within its own limit.
 * - cpu: quota, period and shares as given: the VM as a whole gets what the container asked for.
 * - cpuset: as given: the host CPUs the VM's threads may run on.
 * - pids: a budget for the VM's host threads plus one exec helper per process the container may
 *   have, never the container's own number (QEMU alone has more threads than a small limit).
 * Pure arithmetic; host.ts writes the files.
 */
import { KataError } from '../errors.js';
import { isRecord } from '../util/json.js';

const MIB = 1024 * 1024;

/** Host tasks of one VM: monitor (~23 threads), QEMU (5 idle, more with I/O workers), virtiofsd (~7), wrappers. */
export const VM_HOST_TASKS = 128;
/** Tasks of one `exec --detach` helper (a Node process: ~11 threads), per process the container may run. */
export const EXEC_HELPER_TASKS = 16;

export interface LimitBasis {
  /** The VM's RAM (MiB). */
  vmMemoryMiB: number;
  /** `memory_overhead`: what was added to the container's limit to size the VM. */
  memoryOverheadMiB: number;
  /** `host_memory_overhead`: the VM's host processes beyond guest RAM. */
  hostMemoryOverheadMiB: number;
}

export interface HostLimits {
  /** Bytes, or 'max' to lift the limit. */
  memory?: number | 'max';
  cpuPeriod?: number;
  cpuQuota?: number | 'max';
  cpuShares?: number;
  pids?: number | 'max';
  cpus?: string;
  mems?: string;
}

function section(r: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = r[key];
  return isRecord(v) ? v : {};
}

function int(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) ? v : undefined;
}

/** The host memory limit for a container memory limit (bytes; -1 or below: none). */
export function hostMemoryBytes(limit: number, basis: LimitBasis): number | 'max' {
  if (limit < 0) return 'max';
  const guestMiB = Math.min(Math.ceil(limit / MIB) + basis.memoryOverheadMiB, basis.vmMemoryMiB);
  return (guestMiB + basis.hostMemoryOverheadMiB) * MIB;
}

/** The host pids limit for a container pids limit (-1 or below: none). */
export function hostPids(limit: number): number | 'max' {
  return limit < 0 ? 'max' : VM_HOST_TASKS + limit * EXEC_HELPER_TASKS;
}

/**
 * The host limits for `linux.resources` (at create) or for the resources an update names (only
 * what it names changes). Zero means "not set", as in runc.
 */
export function hostLimits(resources: Record<string, unknown>, basis: LimitBasis): HostLimits {
  const out: HostLimits = {};
  const memory = int(section(resources, 'memory')['limit']);
  if (memory !== undefined && memory !== 0) out.memory = hostMemoryBytes(memory, basis);
  const cpu = section(resources, 'cpu');
  const period = int(cpu['period']);
  if (period !== undefined && period > 0) out.cpuPeriod = period;
  const quota = int(cpu['quota']);
  if (quota !== undefined && quota !== 0) out.cpuQuota = quota < 0 ? 'max' : quota;
  const shares = int(cpu['shares']);
  if (shares !== undefined && shares > 0) out.cpuShares = shares;
  if (typeof cpu['cpus'] === 'string' && cpu['cpus'] !== '') out.cpus = cpu['cpus'];
  if (typeof cpu['mems'] === 'string' && cpu['mems'] !== '') out.mems = cpu['mems'];
  const pids = int(section(resources, 'pids')['limit']);
  if (pids !== undefined && pids !== 0) out.pids = hostPids(pids);
  return out;
}

/** cgroup v1 cpu.shares to v2 cpu.weight, as runc converts them ([2, 262144] → [1, 10000]). */
export function sharesToWeight(shares: number): number {
  return shares === 0 ? 0 : 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

export interface Write {
  file: string;
  value: string;
}

/**
 * The files to write in one cgroup directory: v1 by the hierarchy's subsystems; v2 by the
 * controllers available there (`available`, from cgroup.controllers: none in a hybrid host's
 * cgroup2, whose controllers are all bound to v1). Order matters: runc's (period before quota).
 */
export function limitWrites(l: HostLimits, version: 1 | 2, subsystems: readonly string[], available: ReadonlySet<string>): Write[] {
  const w: Write[] = [];
  const has = (c: string): boolean => (version === 1 ? subsystems.includes(c) : available.has(c));
  const n = (v: number | 'max', max: string): string => (v === 'max' ? max : String(v));
  if (has('cpuset')) {
    if (l.cpus !== undefined) w.push({ file: 'cpuset.cpus', value: l.cpus });
    if (l.mems !== undefined) w.push({ file: 'cpuset.mems', value: l.mems });
  }
  if (has('memory') && l.memory !== undefined) {
    w.push(version === 1 ? { file: 'memory.limit_in_bytes', value: n(l.memory, '-1') } : { file: 'memory.max', value: n(l.memory, 'max') });
  }
  if (has('cpu')) {
    if (version === 1) {
      if (l.cpuPeriod !== undefined) w.push({ file: 'cpu.cfs_period_us', value: String(l.cpuPeriod) });
      if (l.cpuQuota !== undefined) w.push({ file: 'cpu.cfs_quota_us', value: n(l.cpuQuota, '-1') });
      if (l.cpuShares !== undefined) w.push({ file: 'cpu.shares', value: String(l.cpuShares) });
    } else {
      if (l.cpuShares !== undefined) w.push({ file: 'cpu.weight', value: String(sharesToWeight(l.cpuShares)) });
      // runc's cpu.max: "max" unless a quota is given, then the period if one is.
      if (l.cpuQuota !== undefined || l.cpuPeriod !== undefined) {
        const quota = l.cpuQuota === undefined ? 'max' : n(l.cpuQuota, 'max');
        w.push({ file: 'cpu.max', value: l.cpuPeriod === undefined ? quota : `${quota} ${l.cpuPeriod}` });
      }
    }
  }
  if (has('pids') && l.pids !== undefined) w.push({ file: 'pids.max', value: n(l.pids, 'max') });
  return w;
}

/**
 * An update may not set a host memory limit below what the VM already holds (`held`, bytes that
 * cannot be reclaimed): guest RAM once touched stays with QEMU, and the kernel would refuse the
 * write (v1) or OOM-kill the VM (v2). Throws before anything changes.
 */
export function checkMemoryUpdate(l: HostLimits, held: number | undefined): void {
  if (typeof l.memory !== 'number' || held === undefined || held <= l.memory) return;
  const mib = (n: number): number => Math.ceil(n / MIB);
  throw new KataError('E_CGROUP', `cannot lower the host memory limit to ${mib(l.memory)} MiB: the VM already holds ${mib(held)} MiB of host memory, which it does not give back`);
}
