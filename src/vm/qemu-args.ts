import type { Device, VmSpec } from './hypervisor.js';

/** QEMU chardev/option values are comma-separated: a literal comma is written twice. */
function esc(v: string): string {
  return v.replace(/,/g, ',,');
}

/**
 * TCG's translation cache (MiB). QEMU 7.2's default is 1 GiB, which a long-running guest fills and
 * keeps resident: bounded here so that the VM's host memory is guest RAM plus a known overhead
 * (the host cgroup's memory limit counts on it: docs/architecture.md). Booting and a busy shell
 * use ~55 MiB of it.
 */
export const TCG_TB_MIB = 128;

/**
 * Pure argv builder for QEMU (tested by equality). microvm: virtio-mmio devices, no firmware,
 * PVH kernel; q35: the same devices on PCI, for kernels that need ACPI.
 */
export function buildQemuArgs(spec: VmSpec): string[] {
  const mmio = spec.machine === 'microvm';
  const mem = `${spec.memoryMiB}M`;
  const args: string[] = [
    '-name', esc(spec.name),
    '-machine', mmio ? 'microvm,acpi=off,x-option-roms=off,memory-backend=mem' : 'q35,memory-backend=mem',
    '-accel', spec.accel === 'tcg' ? `tcg,tb-size=${TCG_TB_MIB}` : spec.accel,
    '-cpu', spec.accel === 'kvm' ? 'host' : 'max',
    '-m', mem,
    '-smp', String(spec.vcpus),
    '-object', `memory-backend-memfd,id=mem,size=${mem},share=on`,
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    '-no-reboot',
    // seccomp (docs/security.md): QEMU may not use obsolete syscalls, change its privileges,
    // fork/exec anything, or change scheduling/affinity. Nothing we ask of QEMU needs those:
    // taps are opened by fd or by name with script=no, no -daemonize, no helpers.
    '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', spec.kernelParams.join(' '),
    '-chardev', `file,id=console,path=${esc(spec.consoleLog)}`,
    '-serial', 'chardev:console',
    '-qmp', `unix:${esc(spec.qmpSocket)},server=on,wait=off`,
  ];
  if (mmio) args.push('-global', 'virtio-mmio.force-legacy=false');
  const bus = mmio ? 'device' : 'pci';
  let serialBus = false;
  spec.devices.forEach((d: Device, i) => {
    switch (d.kind) {
      case 'virtio-fs':
        args.push('-chardev', `socket,id=fs${i},path=${esc(d.socket)}`);
        args.push('-device', `vhost-user-fs-${bus},chardev=fs${i},tag=${esc(d.tag)}`);
        return;
      case 'serial-port':
        if (!serialBus) {
          args.push('-device', `virtio-serial-${bus}`);
          serialBus = true;
        }
        args.push('-chardev', `socket,id=port${i},path=${esc(d.socket)},server=on,wait=off`);
        args.push('-device', `virtserialport,chardev=port${i},name=${esc(d.name)}`);
        return;
      case 'net':
        // script=no: the monitor configures the tap (src/net/host.ts); QEMU only opens it.
        args.push('-netdev', `tap,id=net${i},${'fd' in d.tap ? `fd=${d.tap.fd}` : `ifname=${esc(d.tap.ifname)},script=no,downscript=no`},vhost=${d.vhost ? 'on' : 'off'}`);
        args.push('-device', `virtio-net-${bus},netdev=net${i},mac=${esc(d.mac)}${mmio ? '' : ',romfile='}`);
        return;
      case 'vsock':
        args.push('-device', `vhost-vsock-${bus},guest-cid=${d.guestCid}`);
        return;
    }
  });
  return args;
}
