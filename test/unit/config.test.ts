import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { normalizeArgv } from '../../src/cli/argv.js';
import { GUEST_DIR, loadConfig, reportConfigWarnings, resolveConfig, sizingConfig, type ResolveOptions, type ResolvedConfig } from '../../src/config.js';
import { checksPassed, evaluateChecks, findOnPath, formatChecks, type CheckResult, type ConfigStatus, type HostFacts } from '../../src/config/check.js';
import { renderJson, renderToml } from '../../src/config/render.js';
import { KataError } from '../../src/errors.js';
import { Logger } from '../../src/util/log.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kata-unit-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const host = { cpus: 4, memoryMiB: 8192 };
const missingDefault = path.join(tmp, 'no-such-default.toml');
let n = 0;

/** Writes a configuration file and returns its path. */
function file(text: string): string {
  const p = path.join(tmp, `c${n++}.toml`);
  fs.writeFileSync(p, text);
  return p;
}

/** An existing file to name as a path value. */
function existing(name: string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, '');
  return p;
}

function resolve(opts: ResolveOptions = {}): ResolvedConfig {
  return resolveConfig({ env: {}, host, defaultFile: missingDefault, ...opts });
}

/** The E_CONFIG message resolving these options fails with. */
function configError(opts: ResolveOptions): string {
  try {
    resolve(opts);
  } catch (e) {
    expect(e).toBeInstanceOf(KataError);
    expect((e as KataError).code).toBe('E_CONFIG');
    return (e as KataError).message;
  }
  throw new Error('resolved without an error');
}

describe('defaults', () => {
  it('are today\'s values, and every source says default', () => {
    const r = resolve();
    expect(r.file).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.config).toMatchObject({
      qemuPath: '/usr/bin/qemu-system-x86_64',
      kernel: `${GUEST_DIR}/vmlinux`,
      initrd: `${GUEST_DIR}/initrd.img`,
      machine: 'microvm',
      accel: 'auto',
      kernelParams: [],
      vcpus: 1,
      memoryMiB: 256,
      memoryOverheadMiB: 128,
      hostMemoryOverheadMiB: 384,
      minMemoryMiB: 128,
      sharedFs: 'virtio-fs',
      enableAnnotations: [],
      agentTimeoutSec: 60,
      agentDebug: false,
      debug: false,
      internetworkingModel: 'tcfilter',
      hostNetwork: 'refuse',
    });
    expect(r.config.virtiofsdPath).toMatch(/virtiofsd$/);
    expect(Object.values(r.sources).every((s) => s.kind === 'default')).toBe(true);
  });

  it('0 maxima are the host\'s CPUs and memory', () => {
    const r = resolve();
    expect(r.config.maxVcpus).toBe(4);
    expect(r.config.maxMemoryMiB).toBe(8192);
    expect(r.sources.maxVcpus.note).toMatch(/host's CPU count/);
    expect(resolve({ file: file('[hypervisor.qemu]\ndefault_maxmemory = 0\ndefault_maxvcpus = 0\n') }).config).toMatchObject({ maxVcpus: 4, maxMemoryMiB: 8192 });
  });

  it('a defaulted bound makes room for an explicit value', () => {
    expect(resolve({ env: { KATA_VCPUS: '6' } }).config.maxVcpus).toBe(6);
    const r = resolve({ env: { KATA_MEMORY_MIB: '64' } });
    expect(r.config.minMemoryMiB).toBe(64);
    expect(r.sources.minMemoryMiB.note).toMatch(/lowered/);
  });

  it('the sizing inputs of src/vm/sizing.ts come from the configuration', () => {
    expect(sizingConfig(resolve().config)).toEqual({ defaultMemoryMiB: 256, memoryOverheadMiB: 128, minMemoryMiB: 128, maxMemoryMiB: 8192, defaultVcpus: 1, maxVcpus: 4 });
  });
});

describe('configuration.toml', () => {
  const qemu = existing('qemu');
  const kernel = existing('vmlinux');
  const initrd = existing('initrd.img');
  const virtiofsd = existing('virtiofsd');
  const full = file(`
[hypervisor.qemu]
path = "${qemu}"
kernel = "${kernel}"
initrd = "${initrd}"
machine_type = "q35"
accelerator = "tcg"
kernel_params = " quiet  foo=1 "
default_vcpus = 2
default_maxvcpus = 3
default_memory = 512
memory_overhead = 64
host_memory_overhead = 200
min_memory = 200
default_maxmemory = 1024
shared_fs = "virtio-fs"
virtio_fs_daemon = "${virtiofsd}"
enable_annotations = ["default_vcpus", "kernel_.*"]

[agent.kata]
dial_timeout = 30
enable_debug = true

[runtime]
enable_debug = true
internetworking_model = "none"
host_network = "isolated"
`);

  it('reads every key', () => {
    const r = resolve({ file: full });
    expect(r.file).toBe(full);
    expect(r.choice).toEqual({ path: full, via: 'flag' });
    expect(r.warnings).toEqual([]);
    expect(r.config).toEqual({
      qemuPath: qemu,
      kernel,
      initrd,
      machine: 'q35',
      accel: 'tcg',
      kernelParams: ['quiet', 'foo=1'],
      vcpus: 2,
      maxVcpus: 3,
      memoryMiB: 512,
      memoryOverheadMiB: 64,
      hostMemoryOverheadMiB: 200,
      minMemoryMiB: 200,
      maxMemoryMiB: 1024,
      sharedFs: 'virtio-fs',
      virtiofsdPath: virtiofsd,
      enableAnnotations: ['default_vcpus', 'kernel_.*'],
      agentTimeoutSec: 30,
      agentDebug: true,
      debug: true,
      internetworkingModel: 'none',
      hostNetwork: 'isolated',
    });
    expect(Object.values(r.sources).every((s) => s.kind === 'file')).toBe(true);
  });

  it('is found through --config, then KATA_CONF_FILE, then the default location', () => {
    const other = file('[hypervisor.qemu]\ndefault_memory = 300\n');
    expect(resolve({ file: full, env: { KATA_CONF_FILE: other } }).config.memoryMiB).toBe(512);
    expect(resolve({ env: { KATA_CONF_FILE: other } }).choice?.via).toBe('env');
    expect(resolve({ env: { KATA_CONF_FILE: other } }).config.memoryMiB).toBe(300);
    expect(resolve({ defaultFile: other }).config.memoryMiB).toBe(300);
    expect(resolve({ defaultFile: other }).choice?.via).toBe('default');
    expect(resolve({ file: null, defaultFile: other }).config.memoryMiB).toBe(256);
  });

  it('an explicitly named file must exist; the default location need not', () => {
    expect(resolve().file).toBeUndefined();
    expect(configError({ file: path.join(tmp, 'nope.toml') })).toMatch(/nope\.toml: no such configuration file \(named by --config\)/);
    expect(configError({ env: { KATA_CONF_FILE: path.join(tmp, 'nope.toml') } })).toMatch(/named by KATA_CONF_FILE/);
    expect(configError({ file: tmp })).toMatch(/cannot read the configuration file/);
  });

  it('environment variables override the file, value by value', () => {
    const r = resolve({
      file: full,
      env: { KATA_MEMORY_MIB: '700', KATA_QEMU: '/opt/qemu', KATA_KERNEL_PARAMS: 'a b', KATA_AGENT_DEBUG: '0', KATA_MACHINE: 'microvm', KATA_ACCEL: 'auto' },
    });
    expect(r.config).toMatchObject({ memoryMiB: 700, qemuPath: '/opt/qemu', kernelParams: ['a', 'b'], agentDebug: false, machine: 'microvm', accel: 'auto', vcpus: 2 });
    expect(r.sources.memoryMiB).toEqual({ kind: 'env', name: 'KATA_MEMORY_MIB' });
    expect(r.sources.vcpus).toEqual({ kind: 'file' });
  });

  it('KATA_KERNEL beats KATA_GUEST_DIR, which beats the file', () => {
    expect(resolve({ file: full, env: { KATA_GUEST_DIR: '/g' } }).config).toMatchObject({ kernel: '/g/vmlinux', initrd: '/g/initrd.img' });
    const r = resolve({ file: full, env: { KATA_GUEST_DIR: '/g', KATA_KERNEL: '/k' } });
    expect(r.config).toMatchObject({ kernel: '/k', initrd: '/g/initrd.img' });
    expect(r.sources.initrd).toEqual({ kind: 'env', name: 'KATA_GUEST_DIR' });
    // empty variables count as unset
    expect(resolve({ file: full, env: { KATA_KERNEL: '' } }).config.kernel).toBe(kernel);
  });

  it('environment paths are not checked at load (a bad one fails where it is used)', () => {
    expect(resolve({ env: { KATA_KERNEL: '/no/such/kernel' } }).config.kernel).toBe('/no/such/kernel');
  });

  it('warns about Kata keys it does not use and about unknown keys, and reads the rest', () => {
    const r = resolve({
      file: file(`
[hypervisor.qemu]
image = "/x.img"
default_memory = 300
defualt_vcpus = 2
[hypervisor.clh]
path = "/x"
[agent.kata]
kernel_modules = []
[runtime]
sandbox_cgroup_only = true
[factory]
enable_template = false
[mystery]
x = 1
`),
    });
    expect(r.config.memoryMiB).toBe(300);
    expect(r.warnings.map((w) => [w.kind, w.key])).toEqual([
      ['unused', 'hypervisor.clh'],
      ['unused', 'factory'],
      ['unknown', 'mystery'],
      ['unused', 'hypervisor.qemu.image'],
      ['unknown', 'hypervisor.qemu.defualt_vcpus'],
      ['unused', 'agent.kata.kernel_modules'],
      ['unused', 'runtime.sandbox_cgroup_only'],
    ]);
  });

  it.each([
    ['default_memory = "256"', /hypervisor\.qemu\.default_memory: must be a positive integer \(got "256"\)/],
    ['default_memory = -5', /hypervisor\.qemu\.default_memory: must be a positive integer \(got -5\)/],
    ['default_memory = 1.5', /default_memory: must be a positive integer \(got 1\.5\)/],
    ['default_vcpus = 0', /default_vcpus: must be a positive integer \(got 0\)/],
    ['default_maxvcpus = -1', /default_maxvcpus: must be an integer >= 0 \(got -1\)/],
    ['memory_overhead = -1', /memory_overhead: must be an integer >= 0/],
    ['kernel = "/no/such/vmlinux"', /hypervisor\.qemu\.kernel: \/no\/such\/vmlinux does not exist/],
    ['initrd = "relative.img"', /hypervisor\.qemu\.initrd: must be an absolute path \(got "relative\.img"\)/],
    ['path = ""', /hypervisor\.qemu\.path: must be an absolute path/],
    ['virtio_fs_daemon = 7', /virtio_fs_daemon: must be an absolute path \(got 7\)/],
    ['machine_type = "pc"', /machine_type: must be "microvm" or "q35" \(got "pc"\)/],
    ['accelerator = "hvf"', /accelerator: must be "auto" or "kvm" or "tcg"/],
    ['shared_fs = "virtio-9p"', /shared_fs: must be "virtio-fs" \(got "virtio-9p"\)/],
    ['kernel_params = ["a"]', /kernel_params: must be a string of space-separated parameters \(got an array\)/],
    ['enable_annotations = "x"', /enable_annotations: must be an array of regular expressions/],
    ['enable_annotations = ["ok", 3]', /enable_annotations: item 1 must be a string \(got 3\)/],
    ['enable_annotations = ["(x"]', /enable_annotations: item 0 "\(x" is not a regular expression/],
    ['default_memory = 1979-05-27', /default_memory: must be a positive integer \(got a date\)/],
  ])('[hypervisor.qemu] %s is an error naming the file and the key', (line, want) => {
    const f = file(`[hypervisor.qemu]\n${line}\n`);
    const msg = configError({ file: f });
    expect(msg.startsWith(`${f}: `)).toBe(true);
    expect(msg).toMatch(want);
  });

  it.each([
    ['[agent.kata]\ndial_timeout = 0', /agent\.kata\.dial_timeout: must be a positive integer/],
    ['[agent.kata]\nenable_debug = "yes"', /agent\.kata\.enable_debug: must be true or false \(got "yes"\)/],
    ['[runtime]\ninternetworking_model = "bridged"', /runtime\.internetworking_model: must be "tcfilter" or "macvtap" or "none"/],
    ['hypervisor = 3', /: hypervisor: must be a table \(got 3\)/],
    ['runtime = []', /: runtime: must be a table \(got an array\)/],
    ['[hypervisor]\nqemu = "x"', /: hypervisor\.qemu: must be a table/],
  ])('%j is an error', (text, want) => {
    expect(configError({ file: file(`${text}\n`) })).toMatch(want);
  });

  it('invalid TOML is an error with the line and column', () => {
    const f = file('[hypervisor.qemu]\ndefault_memory = 256\nkernel = \n');
    expect(configError({ file: f })).toMatch(new RegExp(`^${f}:3:\\d+: invalid TOML: `));
    expect(configError({ file: file('[runtime]\na = 1\na = 2\n') })).toMatch(/invalid TOML/);
  });

  it('bounds between values: an explicit bound is an error, not a silent change', () => {
    const f = file('[hypervisor.qemu]\ndefault_vcpus = 3\ndefault_maxvcpus = 2\n');
    expect(configError({ file: f })).toBe(`hypervisor.qemu.default_vcpus = 3 (${f}) is more than hypervisor.qemu.default_maxvcpus = 2 (${f})`);
    expect(configError({ file: file('[hypervisor.qemu]\nmin_memory = 512\n') })).toMatch(/min_memory = 512 \(.*\) is more than hypervisor\.qemu\.default_memory = 256 \(built-in default\)/);
    expect(configError({ file: file('[hypervisor.qemu]\ndefault_maxmemory = 200\n') })).toMatch(/default_memory = 256 \(built-in default\) is more than hypervisor\.qemu\.default_maxmemory = 200/);
    expect(configError({ env: { KATA_MEMORY_MIB: '9000' } })).toMatch(/default_memory = 9000 \(KATA_MEMORY_MIB\) is more than .*default_maxmemory = 8192 \(built-in default\)/);
  });
});

describe('environment variables', () => {
  it.each([
    ['KATA_MEMORY_MIB', 'abc', /^KATA_MEMORY_MIB: must be a positive integer \(got "abc"\)$/],
    ['KATA_MEMORY_MIB', '-1', /must be a positive integer/],
    ['KATA_VCPUS', '0', /^KATA_VCPUS: must be a positive integer/],
    ['KATA_AGENT_TIMEOUT', '1.5', /^KATA_AGENT_TIMEOUT: must be a positive integer/],
    ['KATA_MACHINE', 'pc', /^KATA_MACHINE: must be "microvm" or "q35" \(got "pc"\)$/],
    ['KATA_ACCEL', 'hvf', /^KATA_ACCEL: must be "auto" or "kvm" or "tcg"/],
    ['KATA_AGENT_DEBUG', 'yes', /^KATA_AGENT_DEBUG: must be 1 or 0/],
  ])('%s=%s is an error', (name, value, want) => {
    expect(configError({ env: { [name]: value } })).toMatch(want);
  });

  it('keep their meaning', () => {
    const c = resolve({ env: { KATA_AGENT_DEBUG: '1', KATA_VCPUS: '2', KATA_AGENT_TIMEOUT: '5', KATA_KERNEL_PARAMS: 'x=1  y', KATA_VIRTIOFSD: '/v' } }).config;
    expect(c).toMatchObject({ agentDebug: true, vcpus: 2, agentTimeoutSec: 5, kernelParams: ['x=1', 'y'], virtiofsdPath: '/v' });
  });
});

describe('loadConfig and warnings', () => {
  it('hands each warning to onWarning', () => {
    const seen: string[] = [];
    const c = loadConfig({ KATA_MEMORY_MIB: '300' }, { file: file('[runtime]\nfoo = 1\n'), onWarning: (w) => seen.push(w.key) });
    expect(c.memoryMiB).toBe(300);
    expect(seen).toEqual(['runtime.foo']);
  });

  it('logs unknown keys always and ignored Kata keys only to a log file', () => {
    const log = path.join(tmp, 'log.json');
    const w = [
      { kind: 'unknown' as const, key: 'runtime.foo', message: '' },
      { kind: 'unused' as const, key: 'hypervisor.qemu.image', message: '' },
    ];
    reportConfigWarnings('/c.toml', w, new Logger(log, 'json', false), true);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['warning', '/c.toml: unknown keys ignored: runtime.foo'],
      ['warning', '/c.toml: Kata keys kata-runtime does not use, ignored: hypervisor.qemu.image'],
    ]);
    fs.rmSync(log);
    reportConfigWarnings('/c.toml', [w[1]!], new Logger(log, 'json', false), false);
    expect(fs.existsSync(log)).toBe(false);
  });
});

describe('kata-runtime env output', () => {
  const f = file('[hypervisor.qemu]\ndefault_memory = 300\nkernel_params = "quiet x=1"\nimage = "/i"\n');
  const r = resolve({ file: f, env: { KATA_VCPUS: '2' } });

  it('TOML names the file and each value\'s source, and lists the warnings', () => {
    const text = renderToml(r);
    expect(text).toContain(`# configuration file: ${f} (--config)`);
    expect(text).toContain('\n[hypervisor.qemu]\n');
    expect(text).toContain('default_memory = 300 # file\n');
    expect(text).toContain('default_vcpus = 2 # env KATA_VCPUS\n');
    expect(text).toContain('kernel_params = "quiet x=1" # file\n');
    expect(text).toContain('dial_timeout = 60 # default\n');
    expect(text).toContain('default_maxvcpus = 4 # default; 0: the host');
    expect(text).toContain('#   hypervisor.qemu.image is a Kata key kata-runtime does not use: ignored\n');
    expect(renderToml(resolve())).toContain(`# configuration file: none (${missingDefault} does not exist): built-in defaults`);
  });

  it('TOML is itself a configuration file giving the same values', () => {
    const again = resolve({ file: file(renderToml(resolve({ env: { KATA_MEMORY_MIB: '300', KATA_KERNEL_PARAMS: 'a b' } }))) });
    expect(again.warnings).toEqual([]);
    expect(again.config).toEqual(resolve({ env: { KATA_MEMORY_MIB: '300', KATA_KERNEL_PARAMS: 'a b' } }).config);
  });

  it('JSON carries the RuntimeConfig, each key and source, and the warnings', () => {
    const v = JSON.parse(renderJson(r)) as { file: string; config: Record<string, unknown>; keys: Record<string, { key: string; source: string }>; warnings: { key: string }[] };
    expect(v.file).toBe(f);
    expect(v.config).toEqual(JSON.parse(JSON.stringify(r.config)));
    expect(v.keys['memoryMiB']).toEqual({ key: 'hypervisor.qemu.default_memory', source: f });
    expect(v.keys['vcpus']).toEqual({ key: 'hypervisor.qemu.default_vcpus', source: 'KATA_VCPUS' });
    expect(v.keys['agentTimeoutSec']).toEqual({ key: 'agent.kata.dial_timeout', source: 'built-in default' });
    expect(v.warnings.map((w) => w.key)).toEqual(['hypervisor.qemu.image']);
  });
});

describe('kata-runtime check', () => {
  const config = resolve().config;
  const good: HostFacts = {
    accel: { cpuinfo: 'flags\t\t: fpu vmx sse\n', kvmOpenable: true },
    vhostVsock: true,
    tun: true,
    qemu: { ok: true, detail: '/usr/bin/qemu-system-x86_64: QEMU emulator version 7.2.0' },
    virtiofsdExecutable: true,
    kernelReadable: true,
    initrdReadable: true,
    kernelVersion: '6.1.0',
    commands: { setpriv: '/usr/bin/setpriv', unshare: '/usr/bin/unshare', nsenter: '/usr/bin/nsenter', ip: '/usr/sbin/ip', tc: '/usr/sbin/tc', socat: '/usr/bin/socat' },
    nativeAddon: { ok: true, detail: '/x/kata_native.node' },
    uid: 0,
  };
  const cfgOk: ConfigStatus = { ok: true, file: undefined, warnings: 0 };
  const status = (results: CheckResult[], name: string): string | undefined => results.find((r) => r.name === name)?.status;

  it('a fully capable host: everything ok, the check passes', () => {
    const results = evaluateChecks(good, config, cfgOk);
    expect(results.map((r) => r.status).every((s) => s === 'ok')).toBe(true);
    expect(checksPassed(results)).toBe(true);
    const text = formatChecks(results);
    expect(text.split('\n')).toContain('ok       QEMU: /usr/bin/qemu-system-x86_64: QEMU emulator version 7.2.0');
    expect(text).toMatch(/can run containers on this host\n$/);
  });

  it('no usable KVM is a warning (TCG), not a failure', () => {
    for (const accel of [{ cpuinfo: 'flags : fpu\n', kvmOpenable: true }, { cpuinfo: 'flags : vmx\n', kvmOpenable: false }]) {
      const results = evaluateChecks({ ...good, accel }, config, cfgOk);
      expect(status(results, 'KVM')).toBe('warning');
      expect(results.find((r) => r.name === 'KVM')?.detail).toMatch(/TCG/);
      expect(checksPassed(results)).toBe(true);
    }
    const forced = evaluateChecks({ ...good, accel: { cpuinfo: '', kvmOpenable: false } }, { ...config, accel: 'tcg' }, cfgOk);
    expect(status(forced, 'KVM')).toBe('ok');
  });

  it.each([
    ['vhost-vsock', { vhostVsock: false }],
    ['socat', { commands: { ...good.commands, socat: undefined } }],
    ['guest kernel version', { kernelVersion: undefined }],
  ])('%s absent is a warning', (name, change) => {
    const results = evaluateChecks({ ...good, ...change }, config, cfgOk);
    expect(status(results, name)).toBe('warning');
    expect(checksPassed(results)).toBe(true);
  });

  it.each([
    ['QEMU', { qemu: { ok: false as const, error: 'spawnSync /usr/bin/qemu-system-x86_64 ENOENT' } }],
    ['virtiofsd', { virtiofsdExecutable: false }],
    ['guest kernel', { kernelReadable: false }],
    ['guest initrd', { initrdReadable: false }],
    ['setpriv', { commands: { ...good.commands, setpriv: undefined } }],
    ['unshare', { commands: { ...good.commands, unshare: undefined } }],
    ['nsenter', { commands: { ...good.commands, nsenter: undefined } }],
    ['ip', { commands: { ...good.commands, ip: undefined } }],
    ['tc', { commands: { ...good.commands, tc: undefined } }],
    ['tun', { tun: false }],
    ['native addon', { nativeAddon: { ok: false as const, error: 'not built' } }],
    ['root', { uid: 1000 }],
  ])('%s absent is missing, and the check fails', (name, change) => {
    const results = evaluateChecks({ ...good, ...change }, config, cfgOk);
    expect(status(results, name)).toBe('missing');
    expect(checksPassed(results)).toBe(false);
    expect(formatChecks(results)).toMatch(/\n1 required item\(s\) missing: kata-runtime cannot run containers on this host\n$/);
  });

  it('reports the configuration: its warnings, or its error as missing', () => {
    expect(evaluateChecks(good, config, { ok: true, file: '/c.toml', warnings: 2 })[0]).toEqual({ name: 'configuration', status: 'warning', detail: '/c.toml: 2 key(s) ignored (kata-runtime env lists them)' });
    const bad = evaluateChecks(good, config, { ok: false, error: '/c.toml: runtime: must be a table' });
    expect(bad[0]?.status).toBe('missing');
    expect(checksPassed(bad)).toBe(false);
  });

  it('finds helper commands on PATH', () => {
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'plain'), '', { mode: 0o644 });
    expect(findOnPath('tool', `/nonexistent::${bin}`)).toBe(path.join(bin, 'tool'));
    expect(findOnPath('plain', bin)).toBeUndefined();
    expect(findOnPath('tool', undefined)).toBeUndefined();
  });
});

describe('--config on the command line', () => {
  it.each([
    [['--config', '/c.toml', 'env', '--json'], ['env', '--config=/c.toml', '--json', '--']],
    [['create', '-config', '/c.toml', '-b', '/b', 'x'], ['create', '--config=/c.toml', '--bundle=/b', '--', 'x']],
    [['check'], ['check', '--']],
  ])('%j', (input, want) => {
    expect(normalizeArgv(input)).toEqual(want);
  });
});
