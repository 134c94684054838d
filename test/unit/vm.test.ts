import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { chooseAccelerator, tscKhz } from '../../src/vm/accel.js';
import type { VmSpec } from '../../src/vm/hypervisor.js';
import { buildQemuArgs } from '../../src/vm/qemu-args.js';
import { QmpClient } from '../../src/vm/qmp.js';
import { connectUnix, listeningUnixPaths, waitForListening, waitForPath } from '../../src/util/child.js';
import { virtiofsdArgv } from '../../src/vm/virtiofsd.js';
import { vsockAddress, VsockTransport } from '../../src/channel/transport.js';

const base: VmSpec = {
  name: 'kata-c1',
  workDir: '/run/kata/c1',
  qemuPath: '/usr/bin/qemu-system-x86_64',
  machine: 'microvm',
  accel: 'tcg',
  kernel: '/k/vmlinux',
  initrd: '/k/initrd.img',
  kernelParams: ['console=ttyS0', 'panic=-1'],
  memoryMiB: 256,
  vcpus: 1,
  qmpSocket: 'qmp.sock',
  consoleLog: '/run/kata/c1/console.log',
  devices: [
    { kind: 'virtio-fs', socket: 'virtiofsd.sock', tag: 'kataShared' },
    { kind: 'serial-port', socket: 'agent.sock', name: 'agent.0' },
  ],
};

describe('buildQemuArgs', () => {
  it('builds the microvm argv', () => {
    expect(buildQemuArgs(base)).toEqual([
      '-name', 'kata-c1',
      '-machine', 'microvm,acpi=off,x-option-roms=off,memory-backend=mem',
      '-accel', 'tcg,tb-size=128',
      '-cpu', 'max',
      '-m', '256M',
      '-smp', '1',
      '-object', 'memory-backend-memfd,id=mem,size=256M,share=on',
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
      '-kernel', '/k/vmlinux',
      '-initrd', '/k/initrd.img',
      '-append', 'console=ttyS0 panic=-1',
      '-chardev', 'file,id=console,path=/run/kata/c1/console.log',
      '-serial', 'chardev:console',
      '-qmp', 'unix:qmp.sock,server=on,wait=off',
      '-global', 'virtio-mmio.force-legacy=false',
      '-chardev', 'socket,id=fs0,path=virtiofsd.sock',
      '-device', 'vhost-user-fs-device,chardev=fs0,tag=kataShared',
      '-device', 'virtio-serial-device',
      '-chardev', 'socket,id=port1,path=agent.sock,server=on,wait=off',
      '-device', 'virtserialport,chardev=port1,name=agent.0',
    ]);
  });

  it('uses PCI devices on q35, the host CPU under KVM, and vsock when asked', () => {
    const a = buildQemuArgs({ ...base, machine: 'q35', accel: 'kvm', devices: [{ kind: 'vsock', guestCid: 5 }] });
    expect(a).toContain('q35,memory-backend=mem');
    expect(a[a.indexOf('-cpu') + 1]).toBe('host');
    expect(a).toContain('vhost-vsock-pci,guest-cid=5');
    expect(a).not.toContain('-global');
  });

  it('adds a virtio-net NIC on a named tap with the interface\'s MAC', () => {
    const nic = { kind: 'net' as const, tap: { ifname: 'tap0_kata' }, mac: '02:42:ac:11:00:02', vhost: false };
    const a = buildQemuArgs({ ...base, devices: [nic] });
    expect(a.slice(-4)).toEqual(['-netdev', 'tap,id=net0,ifname=tap0_kata,script=no,downscript=no,vhost=off', '-device', 'virtio-net-device,netdev=net0,mac=02:42:ac:11:00:02']);
    const q = buildQemuArgs({ ...base, machine: 'q35', devices: [nic] });
    expect(q.at(-1)).toBe('virtio-net-pci,netdev=net0,mac=02:42:ac:11:00:02,romfile=');
    const fd = buildQemuArgs({ ...base, devices: [{ ...nic, tap: { fd: 3 } }] });
    expect(fd.at(-3)).toBe('tap,id=net0,fd=3,vhost=off');
  });

  it('escapes commas in paths', () => {
    const a = buildQemuArgs({ ...base, consoleLog: '/a,b/console.log' });
    expect(a).toContain('file,id=console,path=/a,,b/console.log');
  });
});

describe('accelerator choice', () => {
  const flags = (f: string): string => `processor : 0\nflags\t\t: fpu ${f} sse\ncpu MHz\t\t: 2999.998\n`;
  it('uses KVM only with vmx/svm and a usable /dev/kvm', () => {
    expect(chooseAccelerator({ cpuinfo: flags('vmx'), kvmOpenable: true }, 'auto')).toEqual({ accel: 'kvm' });
    expect(chooseAccelerator({ cpuinfo: flags('svm'), kvmOpenable: true }, 'auto').accel).toBe('kvm');
  });
  it('falls back to TCG with a warning otherwise', () => {
    const r = chooseAccelerator({ cpuinfo: flags('hypervisor'), kvmOpenable: true }, 'auto');
    expect(r.accel).toBe('tcg');
    expect(r.warning).toMatch(/no vmx\/svm/);
    expect(chooseAccelerator({ cpuinfo: flags('vmx'), kvmOpenable: false }, 'kvm').warning).toMatch(/cannot be opened/);
    expect(chooseAccelerator({ cpuinfo: flags('vmx'), kvmOpenable: true }, 'tcg')).toEqual({ accel: 'tcg' });
  });
  it('reads the TSC frequency', () => {
    expect(tscKhz(flags('x'))).toBe(2999998);
    expect(tscKhz('nothing')).toBeUndefined();
  });
});

describe('virtiofsd launch', () => {
  it('binds inside a private mount namespace, never on the host', () => {
    const { file, args } = virtiofsdArgv({ binary: '/usr/lib/qemu/virtiofsd', workDir: '/s', sharedDir: '/s/shared', socket: 'v.sock', log: '/s/v.log', binds: [{ host: '/b/rootfs', name: 'rootfs', kind: 'dir' }] });
    expect(file).toBe('unshare');
    expect(args.slice(0, 4)).toEqual(['--mount', '--propagation', 'private', '--']);
    expect(args.slice(-5)).toEqual(['/usr/lib/qemu/virtiofsd', 'v.sock', '/s/shared', '/b/rootfs', '/s/shared/rootfs']);
  });
});

describe('QMP client against a scripted peer', () => {
  let dir = '';
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function peer(script: (line: Record<string, unknown>, sock: net.Socket) => void): Promise<string> {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmp-'));
    const p = path.join(dir, 'qmp.sock');
    const server = net.createServer((sock) => {
      sock.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}}\r\n');
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          script(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>, sock);
          buf = buf.slice(nl + 1);
        }
      });
    });
    await new Promise<void>((r) => server.listen(p, r));
    server.unref();
    return p;
  }

  it('negotiates, matches replies by id and reports events', async () => {
    const seen: string[] = [];
    const p = await peer((m, sock) => {
      seen.push(String(m['execute']));
      if (m['execute'] === 'stop') sock.write('{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n');
      if (m['execute'] === 'query-status') sock.write(JSON.stringify({ return: { running: false, status: 'paused' }, id: m['id'] }) + '\r\n');
      else sock.write(JSON.stringify({ return: {}, id: m['id'] }) + '\r\n');
    });
    const c = await QmpClient.connect(p);
    const events: string[] = [];
    c.onEvent = (e) => events.push(e.event);
    await c.execute('stop', {});
    expect(await c.execute('query-status', {})).toEqual({ running: false, status: 'paused' });
    expect(seen).toEqual(['qmp_capabilities', 'stop', 'query-status']);
    expect(events).toEqual(['STOP']);
    c.close();
  });

  it('turns a QMP error into E_VM', async () => {
    const p = await peer((m, sock) => {
      if (m['execute'] === 'qmp_capabilities') sock.write(JSON.stringify({ return: {}, id: m['id'] }) + '\n');
      else sock.write(JSON.stringify({ error: { class: 'GenericError', desc: 'nope' }, id: m['id'] }) + '\n');
    });
    const c = await QmpClient.connect(p);
    await expect(c.execute('cont', {})).rejects.toMatchObject({ code: 'E_VM', message: 'QMP: nope' });
    c.close();
  });

  it('fails pending commands when QEMU goes away', async () => {
    const p = await peer((m, sock) => {
      if (m['execute'] === 'qmp_capabilities') sock.write(JSON.stringify({ return: {}, id: m['id'] }) + '\n');
      else sock.destroy();
    });
    const c = await QmpClient.connect(p);
    await expect(c.execute('quit', {})).rejects.toMatchObject({ code: 'E_VM' });
  });
});

describe('connecting to a socket a child is still setting up (connectUnix)', () => {
  let dir = '';
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  // A unix socket's path appears at bind(2), listen(2) comes later: a fake server (python: Node
  // cannot bind without listening) binds, waits 400 ms, then listens and speaks QMP.
  const LATE_LISTENER = [
    'import socket, sys, time',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
    's.bind(sys.argv[1])',
    'time.sleep(0.4)',
    's.listen(1)',
    'c, _ = s.accept()',
    'c.sendall(b\'{"QMP": {"version": {}, "capabilities": []}}\\r\\n\')',
    'line = c.makefile().readline()',
    'import json; c.sendall((json.dumps({"return": {}, "id": json.loads(line)["id"]}) + "\\r\\n").encode())',
    'time.sleep(1)',
  ].join('\n');

  /** Starts LATE_LISTENER on `name` in a fresh directory; resolves once the path is bound. */
  async function lateListener(name: string): Promise<{ p: string; child: ChildProcess; exited: () => boolean }> {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'late-'));
    const p = path.join(dir, name);
    const child = spawn('python3', ['-c', LATE_LISTENER, p], { stdio: 'inherit' });
    let done = false;
    child.on('exit', () => (done = true));
    const exited = (): boolean => done;
    await waitForPath(p, 'fake server', 5000, exited);
    return { p, child, exited };
  }

  it('retries a refused connect until the server listens, then QMP works', async () => {
    const { p, child, exited } = await lateListener('qmp.sock');
    try {
      // Bound, not listening: a plain connect is refused (the race QEMU's start-up had).
      await expect(QmpClient.connect(p, 1000)).rejects.toMatchObject({ code: 'E_VM', message: expect.stringContaining('ECONNREFUSED') as unknown });
      const t = Date.now();
      const c = await QmpClient.connect(await connectUnix(p, 'fake QEMU', 5000, exited));
      expect(Date.now() - t).toBeGreaterThan(100);
      c.close();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('waitForListening sees a bound socket only once it listens, without connecting', async () => {
    const { p, child, exited } = await lateListener('fs.sock');
    try {
      const t = Date.now();
      await waitForListening([p], 'fake virtiofsd', 5000, exited);
      expect(Date.now() - t).toBeGreaterThan(100);
      expect(listeningUnixPaths()).toContain(p);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('gives up at the deadline, and at once when the child is gone', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'late-'));
    const p = path.join(dir, 'none.sock');
    await expect(connectUnix(p, 'x', 150, () => false)).rejects.toMatchObject({ code: 'E_TIMEOUT', message: `x did not listen on ${p} within 150 ms` });
    await expect(connectUnix(p, 'x', 5000, () => true)).rejects.toMatchObject({ code: 'E_VM', message: `x exited before listening on ${p}` });
  });
});

describe('vsock transport', () => {
  it('builds socat addresses and rejects bad cids', () => {
    expect(vsockAddress(3, 1024)).toBe('VSOCK-CONNECT:3:1024');
    expect(() => vsockAddress(2, 1024)).toThrow(/cid/);
    expect(() => vsockAddress(3, -1)).toThrow(/port/);
  });

  it('carries a byte stream through socat (to a unix socket standing in for the guest)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsock-'));
    const p = path.join(dir, 'echo.sock');
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(p, r));
    const io = await new VsockTransport(`UNIX-CONNECT:${p}`).connect();
    const got = await new Promise<string>((resolve) => {
      io.once('data', (d: Buffer) => resolve(d.toString()));
      io.write('ping');
    });
    expect(got).toBe('ping');
    io.on('error', () => undefined); // destroying a Duplex.from() pair reports an AbortError
    io.destroy();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
