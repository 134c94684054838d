/**
 * The VM boundary (docs/security.md): a container with every privilege the spec can give (all
 * capabilities, all devices, no seccomp, no masked or read-only paths, the guest's pid namespace,
 * so the guest's PID 1 and its mount namespace are in reach) still cannot read a host file outside
 * its share, see a host process or reach the monitor's sockets. And on the host: QEMU and
 * virtiofsd run under seccomp, virtiofsd in its own namespaces, every socket is 0600, and the
 * monitor refuses a peer of another uid even when it can open the socket's path.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kr, leftovers, requirePrerequisites, testEnv, waitForStatus, type TestEnv } from './helpers.js';

let env: TestEnv;
beforeAll(() => {
  requirePrerequisites();
  env = testEnv('iso');
});
afterAll(() => env.cleanup());

const ALL_CAPS = (fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim() === '40'
  ? ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE']
  : ['SYS_ADMIN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'SYS_PTRACE', 'MKNOD', 'NET_ADMIN', 'SYS_CHROOT']
).map((c) => `CAP_${c}`);

function privileged(spec: Record<string, unknown>): void {
  const proc = spec['process'] as Record<string, unknown>;
  proc['capabilities'] = { bounding: ALL_CAPS, effective: ALL_CAPS, permitted: ALL_CAPS, inheritable: ALL_CAPS, ambient: ALL_CAPS };
  proc['noNewPrivileges'] = false;
  (spec['root'] as Record<string, unknown>)['readonly'] = false;
  const linux = spec['linux'] as Record<string, unknown>;
  delete linux['seccomp'];
  linux['maskedPaths'] = [];
  linux['readonlyPaths'] = [];
  linux['resources'] = { devices: [{ allow: true, access: 'rwm' }] };
  // No pid namespace: the guest's PID 1 (the agent) and its mount namespace are visible.
  linux['namespaces'] = (linux['namespaces'] as { type: string }[]).filter((n) => n.type !== 'pid');
  // sysfs and cgroup read-write, as docker --privileged gives them.
  spec['mounts'] = (spec['mounts'] as { destination: string; options?: string[] }[]).map((m) => ({ ...m, ...(m.options ? { options: m.options.filter((o) => o !== 'ro') } : {}) }));
}

const stat = (pid: number, key: string): string => (fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s*(.*)$`, 'm'))?.[1] ?? '').trim();

function childrenOf(pid: number): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      return Number(fs.readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === pid;
    } catch {
      return false;
    }
  });
}

describe('a privileged container cannot get out of its VM', () => {
  it('reads no host file outside its share, sees no host process, finds no monitor socket', async () => {
    const token = `kata-secret-${process.pid}-${Date.now()}`;
    const secret = path.join(env.tmp, 'secret.txt');
    fs.writeFileSync(secret, `${token}\n`, { mode: 0o644 });
    const marker = 987654 + (process.pid % 1000);
    const hostProc = spawn('sleep', [String(marker)], { stdio: 'ignore' });
    const script = [
      // the token is assembled by the shell, so the container's own config.json does not hold it
      `S=${secret}; T1=${token.slice(0, 8)}; T2=${token.slice(8)}; T=$T1$T2; P='sleep [${String(marker)[0]}]${String(marker).slice(1)}'`,
      'echo "pid1: $(cat /proc/1/comm)"',
      // the guest's root (the agent's mount namespace) and a fresh mount of the share itself
      'mkdir -p /share && mount -t virtiofs kataShared /share && echo "share: $(ls -a /share | tr "\\n" " ")"',
      'for r in "" /proc/1/root /share; do p=$r; for i in 1 2 3 4 5 6 7 8; do cat "$p/secret.txt" 2>/dev/null; p=$p/..; done; cat "$r$S" 2>/dev/null; done',
      // regular files only: grep -r would block on crun's exec.fifo under the guest's /run
      'echo "found: $(find /share /proc/1/root/run /proc/1/root/etc /proc/1/root/tmp -xdev -type f 2>/dev/null | xargs grep -l "$T" 2>/dev/null | tr "\\n" " ")"',
      // the pattern "sleep [9]87..." matches the host's "sleep 987..." but not itself
      'echo "host procs: $(cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " " | grep -c "$P")"',
      'echo "sockets: $(find / /proc/1/root/ /share -xdev -type s 2>/dev/null | tr "\\n" " ")"',
      'ls /proc/1/root/run/kata 2>/dev/null | tr "\\n" " "; echo',
      'echo done',
    ].join('\n');
    const b = env.bundle('priv', ['sh', '-c', script], privileged);
    try {
      const r = await kr(env.root, ['run', '-b', b, 'priv'], { timeoutMs: 120000 });
      const out = r.stdout.toString();
      expect(r.stderr).toBe('');
      expect(out).toMatch(/^pid1: (init|kata-agent)$/m); // it really reached the guest's PID 1 (the agent is /init)
      expect(out).toMatch(/^share: \. \.\. rootfs $/m); // the share holds the rootfs and nothing else
      expect(out).not.toContain(token);
      expect(out).toMatch(/^found: $/m);
      expect(out).toMatch(/^host procs: 0$/m);
      const sockets = out.match(/^sockets: (.*)$/m)?.[1] ?? 'missing';
      expect(sockets).not.toMatch(/monitor\.sock|qmp\.sock|virtiofsd\.sock|agent\.sock/);
      expect(out).toMatch(/^done$/m);
      expect(r.code).toBe(0);
    } finally {
      hostProc.kill('SIGKILL');
    }
    expect(leftovers(env)).toEqual([]);
  });
});

describe('the host side of the boundary', () => {
  it('QEMU and virtiofsd run under seccomp, virtiofsd in its own namespaces; sockets 0600; the monitor refuses other uids', async () => {
    const b = env.bundle('host', ['sleep', '600']);
    const c = await kr(env.root, ['create', '-b', b, 'host']);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    try {
      await waitForStatus(env.root, 'host', 'created');
      const dir = path.join(env.root, 'host');
      const rec = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as Record<string, number>;
      const qemu = rec['qemuPid'] ?? 0;
      const vfs = rec['virtiofsdPid'] ?? 0;
      expect(stat(qemu, 'Seccomp')).toBe('2');
      expect(stat(qemu, 'NoNewPrivs')).toBe('1');
      // virtiofsd's sandbox: the serving process is a child in new mount, pid and net namespaces.
      const served = childrenOf(vfs);
      expect(served).toHaveLength(1);
      const child = served[0] ?? 0;
      expect(stat(child, 'Seccomp')).toBe('2');
      for (const ns of ['mnt', 'pid', 'net']) expect(fs.readlinkSync(`/proc/${child}/ns/${ns}`)).not.toBe(fs.readlinkSync(`/proc/self/ns/${ns}`));
      expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
      const socks = fs.readdirSync(dir).filter((f) => f.endsWith('.sock'));
      expect(socks.map((f) => f.replace(/^virtiofsd-[0-9a-f]+/, 'virtiofsd')).sort()).toEqual(['agent.sock', 'monitor.sock', 'qmp.sock', 'virtiofsd.sock']);
      for (const s of socks) {
        const st = fs.statSync(path.join(dir, s));
        expect(st.isSocket(), s).toBe(true);
        expect((st.mode & 0o777).toString(8), s).toBe('600');
      }
      // uid 65534 with CAP_DAC_OVERRIDE gets past the 0700 directory and the 0600 socket: the
      // monitor itself must turn it away (SO_PEERCRED) without answering.
      const probe = spawnSync(
        'setpriv',
        ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--inh-caps', '+dac_override', '--ambient-caps', '+dac_override', process.execPath, '-e',
          `const s=require('net').createConnection(${JSON.stringify(path.join(dir, 'monitor.sock'))});let got='';s.on('connect',()=>{console.log('connected');s.write(JSON.stringify({op:'destroy'})+'\\n')});s.on('data',d=>got+=d);s.on('close',()=>console.log('answer:'+JSON.stringify(got)));s.on('error',e=>console.log('error:'+e.code))`],
        { encoding: 'utf8', timeout: 20000 },
      );
      expect(probe.stdout).toContain('connected');
      expect(probe.stdout).toContain('answer:""');
      expect(fs.readFileSync(path.join(dir, 'monitor.log'), 'utf8')).toMatch(/control socket: refused a connection from pid \d+ uid 65534/);
      const st = await kr(env.root, ['state', 'host']);
      expect(JSON.parse(st.stdout.toString())['status']).toBe('created'); // the destroy never ran
    } finally {
      const d = await kr(env.root, ['delete', '--force', 'host']);
      expect(d.code).toBe(0);
    }
    expect(leftovers(env)).toEqual([]);
  });
});
