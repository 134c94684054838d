import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { nativeAddonPath, nativeAvailable } from '../native/index.js';
import { chooseAccelerator, probeHost, type AccelProbe } from '../vm/accel.js';
import type { RuntimeConfig } from './types.js';

/**
 * `kata-runtime check`: what this host can and cannot do. gatherFacts looks at the host;
 * evaluateChecks is a pure function of those facts, so every outcome is unit-tested.
 */

export type CheckStatus = 'ok' | 'warning' | 'missing';

export interface CheckResult {
  name: string;
  /** missing: something required is absent (the check fails); warning: works, but worse. */
  status: CheckStatus;
  detail: string;
}

export type Outcome = { ok: true; detail: string } | { ok: false; error: string };

export interface HostFacts {
  accel: AccelProbe;
  vhostVsock: boolean;
  /** /dev/net/tun exists: QEMU's taps (the VM's network) need it. */
  tun: boolean;
  /** `qemu -version`: the binary and its version line, or why it did not run. */
  qemu: Outcome;
  virtiofsdExecutable: boolean;
  kernelReadable: boolean;
  initrdReadable: boolean;
  /** The guest's `uname -r`, from kernel-version beside the kernel (guest/build.sh writes it). */
  kernelVersion: string | undefined;
  /** Each helper command's path on $PATH, or undefined. */
  commands: Readonly<Record<HelperCommand, string | undefined>>;
  nativeAddon: Outcome;
  uid: number;
}

/** What the configuration step said: the file read and its warnings, or the error. */
export type ConfigStatus = { ok: true; file: string | undefined; warnings: number } | { ok: false; error: string };

export const HELPER_COMMANDS = ['setpriv', 'unshare', 'nsenter', 'ip', 'tc', 'socat'] as const;
export type HelperCommand = (typeof HELPER_COMMANDS)[number];

const HELPER_USE: Readonly<Record<HelperCommand, { required: boolean; use: string }>> = {
  setpriv: { required: true, use: 'QEMU and virtiofsd die with the monitor through it (util-linux)' },
  unshare: { required: true, use: "virtiofsd's private mount namespace, a container's new network namespace (util-linux)" },
  nsenter: { required: true, use: "the monitor joins the container's network namespace through it (util-linux)" },
  ip: { required: true, use: "reads the container's network namespace and sets up taps (iproute2)" },
  tc: { required: true, use: 'joins each interface to its tap with mirred filters (iproute2)' },
  socat: { required: false, use: 'only the vsock agent transport needs it' },
};

export function findOnPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? '').split(':')) {
    if (dir === '') continue;
    const p = path.join(dir, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** A regular file this process may read (R_OK) or run (X_OK). */
function isFileFor(p: string, mode: number): boolean {
  try {
    fs.accessSync(p, mode);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

const isExecutable = (p: string): boolean => isFileFor(p, fs.constants.X_OK);
const isReadable = (p: string): boolean => isFileFor(p, fs.constants.R_OK);

function qemuVersion(qemu: string): Outcome {
  const r = spawnSync(qemu, ['-version'], { encoding: 'utf8', timeout: 20000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error !== undefined) return { ok: false, error: r.error.message };
  const first = (text: string): string => text.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
  if (r.status !== 0) return { ok: false, error: `exited with ${r.status ?? r.signal ?? '?'}: ${first(r.stderr)}` };
  return { ok: true, detail: `${qemu}: ${first(r.stdout)}` };
}

export function gatherFacts(c: RuntimeConfig, env: NodeJS.ProcessEnv = process.env): HostFacts {
  let kernelVersion: string | undefined;
  try {
    kernelVersion = fs.readFileSync(path.join(path.dirname(c.kernel), 'kernel-version'), 'utf8').trim() || undefined;
  } catch {
    kernelVersion = undefined;
  }
  const commands = Object.fromEntries(HELPER_COMMANDS.map((n) => [n, findOnPath(n, env['PATH'])])) as Record<HelperCommand, string | undefined>;
  return {
    accel: probeHost(),
    vhostVsock: fs.existsSync('/dev/vhost-vsock'),
    tun: fs.existsSync('/dev/net/tun'),
    qemu: qemuVersion(c.qemuPath),
    virtiofsdExecutable: isExecutable(c.virtiofsdPath),
    kernelReadable: isReadable(c.kernel),
    initrdReadable: isReadable(c.initrd),
    kernelVersion,
    commands,
    nativeAddon: nativeAvailable() ? { ok: true, detail: nativeAddonPath() } : { ok: false, error: `${nativeAddonPath()} missing or not loadable: run npm run build` },
    uid: process.getuid?.() ?? -1,
  };
}

/** A required item is `missing` when absent; an optional one is a `warning`. */
function item(name: string, present: boolean, required: boolean, yes: string, no: string): CheckResult {
  return { name, status: present ? 'ok' : required ? 'missing' : 'warning', detail: present ? yes : no };
}

function fromOutcome(name: string, o: Outcome, required: boolean, failed: (error: string) => string): CheckResult {
  return o.ok ? { name, status: 'ok', detail: o.detail } : { name, status: required ? 'missing' : 'warning', detail: failed(o.error) };
}

export function evaluateChecks(f: HostFacts, c: RuntimeConfig, cfg: ConfigStatus): CheckResult[] {
  const out: CheckResult[] = [];
  if (cfg.ok) {
    const from = cfg.file ?? 'built-in defaults (no configuration file)';
    out.push(item('configuration', cfg.warnings === 0, false, from, `${from}: ${cfg.warnings} key(s) ignored (kata-runtime env lists them)`));
  } else {
    out.push({ name: 'configuration', status: 'missing', detail: `${cfg.error} (the checks below use the built-in defaults)` });
  }
  const accel = chooseAccelerator(f.accel, c.accel);
  if (accel.accel === 'kvm') out.push({ name: 'KVM', status: 'ok', detail: 'usable: the CPU has vmx/svm and /dev/kvm opens read-write' });
  else if (accel.warning === undefined) out.push({ name: 'KVM', status: 'ok', detail: 'not used: the configuration asks for TCG' });
  else out.push({ name: 'KVM', status: 'warning', detail: accel.warning });
  out.push(item('vhost-vsock', f.vhostVsock, false, '/dev/vhost-vsock present', '/dev/vhost-vsock absent: the agent channel uses virtio-serial'));
  out.push(item('tun', f.tun, true, '/dev/net/tun present', "/dev/net/tun absent: containers with a network cannot get one in their VM (modprobe tun)"));
  out.push(fromOutcome('QEMU', f.qemu, true, (e) => `${c.qemuPath} -version failed: ${e}`));
  out.push(item('virtiofsd', f.virtiofsdExecutable, true, c.virtiofsdPath, `${c.virtiofsdPath} is not an executable file`));
  out.push(item('guest kernel', f.kernelReadable, true, c.kernel, `${c.kernel} is not a readable file (bash scripts/setup.sh builds it)`));
  out.push(item('guest initrd', f.initrdReadable, true, c.initrd, `${c.initrd} is not a readable file (bash scripts/setup.sh builds it)`));
  out.push(
    item('guest kernel version', f.kernelVersion !== undefined, false, f.kernelVersion ?? '', `no kernel-version file beside ${c.kernel}: not a guest built by guest/build.sh?`),
  );
  for (const name of HELPER_COMMANDS) {
    const p = f.commands[name];
    out.push(item(name, p !== undefined, HELPER_USE[name].required, p ?? '', `not found on PATH: ${HELPER_USE[name].use}`));
  }
  out.push(fromOutcome('native addon', f.nativeAddon, true, (e) => `${e} (terminals need it)`));
  out.push(item('root', f.uid === 0, true, 'running as root', `running as uid ${f.uid}: kata-runtime needs root (virtiofsd, mount namespaces, /run/kata)`));
  return out;
}

export function checksPassed(results: readonly CheckResult[]): boolean {
  return results.every((r) => r.status !== 'missing');
}

/** One line per check, `status  name: detail`, then a verdict. */
export function formatChecks(results: readonly CheckResult[]): string {
  const lines = results.map((r) => `${r.status.padEnd(8)} ${r.name}: ${r.detail}`);
  const missing = results.filter((r) => r.status === 'missing').length;
  lines.push(missing === 0 ? 'kata-runtime can run containers on this host' : `${missing} required item(s) missing: kata-runtime cannot run containers on this host`);
  return lines.join('\n') + '\n';
}
