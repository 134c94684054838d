import fs from 'node:fs';

export interface AccelProbe {
  cpuinfo: string;
  /** Can /dev/kvm be opened read-write? */
  kvmOpenable: boolean;
}

export function probeHost(): AccelProbe {
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    cpuinfo = '';
  }
  let kvmOpenable = false;
  try {
    fs.closeSync(fs.openSync('/dev/kvm', 'r+'));
    kvmOpenable = true;
  } catch {
    kvmOpenable = false;
  }
  return { cpuinfo, kvmOpenable };
}

/**
 * KVM only where the CPU advertises hardware virtualisation (vmx/svm) AND /dev/kvm opens; a
 * paravirtual /dev/kvm without those flags hangs ordinary guests, so it does not count.
 */
export function chooseAccelerator(
  probe: AccelProbe,
  wanted: 'auto' | 'kvm' | 'tcg',
): { accel: 'kvm' | 'tcg'; warning?: string } {
  if (wanted === 'tcg') return { accel: 'tcg' };
  const hasFlag = /^flags\s*:.*\b(vmx|svm)\b/m.test(probe.cpuinfo);
  if (hasFlag && probe.kvmOpenable) return { accel: 'kvm' };
  const why = !hasFlag ? 'the CPU has no vmx/svm flag' : '/dev/kvm cannot be opened';
  return { accel: 'tcg', warning: `KVM not usable (${why}): using TCG software emulation, which is much slower` };
}

/** Host TSC frequency in kHz, for the guest's tsc_early_khz= (microvm boots hang without it). */
export function tscKhz(cpuinfo: string): number | undefined {
  const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo);
  if (!m || m[1] === undefined) return undefined;
  const khz = Math.round(Number(m[1]) * 1000);
  return Number.isFinite(khz) && khz > 0 ? khz : undefined;
}
