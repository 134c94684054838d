import fs from 'node:fs';
import { KataError } from '../errors.js';
import path from 'node:path';
import { spawnSupervised, tail, waitForListening, waitForPath, type Supervised } from '../util/child.js';

export interface VirtiofsdSpec {
  binary: string;
  /** Working directory; `socket` is relative to it (unix socket paths are short). */
  workDir: string;
  /** The directory exported to the guest (<state>/shared). */
  sharedDir: string;
  socket: string;
  log: string;
  /** Host paths to bind into sharedDir: a directory or a single file, at sharedDir/name. */
  binds: { host: string; name: string; kind: 'dir' | 'file' }[];
}

/**
 * virtiofsd runs in a private mount namespace (unshare -m) where the binds into shared/ are made:
 * they exist only for virtiofsd and disappear with it, so no mount is ever left on the host, even
 * when everything is killed.
 */
export function virtiofsdArgv(spec: VirtiofsdSpec): { file: string; args: string[] } {
  const script = [
    'umask 077',
    'set -e',
    // binds come as pairs of positional args after the fixed ones
    'bin=$1; sock=$2; src=$3; shift 3',
    'while [ $# -gt 0 ]; do mount --rbind -- "$1" "$2"; shift 2; done',
    'exec "$bin" --socket-path="$sock" -o source="$src" -o cache=auto -o no_posix_lock -o sandbox=namespace --thread-pool-size=2',
  ].join('\n');
  const pairs = spec.binds.flatMap((b) => [b.host, path.join(spec.sharedDir, b.name)]);
  return {
    file: 'unshare',
    args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script, 'virtiofsd-launch', spec.binary, spec.socket, spec.sharedDir, ...pairs],
  };
}

export async function startVirtiofsd(spec: VirtiofsdSpec, signal?: AbortSignal): Promise<Supervised> {
  // The share's root is 0711, not 0700: the guest sees host modes, and crun in the guest mounts
  // the rootfs (/run/kata/shared/rootfs) as the container's root, which with a user namespace is
  // a mapped uid (e.g. 100000) that must be able to search every directory on the way (under runc
  // it must search the rootfs's host path likewise). Bind sources (shared/mounts/<i>) can stay
  // 0700: crun opens them before entering the user namespace, as runc does. Search-only for
  // others is safe on the host only because <state>/<id>, the share's parent, is 0700
  // (StateStore.createDir): no other host user can reach <state>/<id>/shared at all.
  fs.mkdirSync(spec.sharedDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(spec.sharedDir, 0o711);
  for (const b of spec.binds) {
    const target = path.join(spec.sharedDir, b.name);
    if (b.kind === 'dir') {
      fs.mkdirSync(target, { recursive: true, mode: 0o700 });
    } else {
      fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
      fs.closeSync(fs.openSync(target, 'a', 0o600)); // a file is bound onto a file
    }
  }
  const { file, args } = virtiofsdArgv(spec);
  const p = spawnSupervised(file, args, spec.log, spec.workDir);
  const sock = path.resolve(spec.workDir, spec.socket);
  try {
    await waitForPath(sock, 'virtiofsd', 10000, p.hasExited, signal);
    // The path appears at bind(2); QEMU's connect would be refused until listen(2). virtiofsd
    // takes one client, so we cannot probe it by connecting: /proc/net/unix says when it listens.
    await waitForListening([spec.socket, sock], 'virtiofsd', 10000, p.hasExited, signal);
  } catch (e) {
    await p.kill();
    const why = tail(spec.log);
    throw why === '' ? e : new KataError('E_VM', `virtiofsd failed: ${why}`);
  }
  fs.chmodSync(sock, 0o600);
  return p;
}

