import fs from 'node:fs';
import path from 'node:path';
import { Command, Flags } from '@oclif/core';
import { globalFlags } from '../cli/base.js';
import { KataError, toKataError } from '../errors.js';
import { defaultSpec } from '../oci/default-spec.js';

const { rootless: _globalRootless, ...specBaseFlags } = globalFlags;

/** Needs no runtime: it only writes a file. Its --rootless is a boolean, unlike the global one. */
export default class Spec extends Command {
  static override baseFlags = specBaseFlags;
  static override description = 'create a new specification file (config.json) with defaults, as runc spec does';
  static override flags = {
    bundle: Flags.string({ char: 'b', default: '', description: 'path to the root of the bundle directory' }),
    rootless: Flags.boolean({ default: false, description: 'generate a configuration for a rootless container' }),
  };

  protected override async catch(err: Error): Promise<void> {
    process.stderr.write(`${toKataError(err, 'E_INVALID_ARGUMENT').oneLine()}\n`);
    process.exitCode = 1;
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Spec);
    const spec = defaultSpec(['sh']);
    (spec['process'] as Record<string, unknown>)['terminal'] = true;
    if (flags.rootless) toRootless(spec);
    const file = path.join(flags.bundle === '' ? '.' : flags.bundle, 'config.json');
    if (flags.bundle !== '' && !fs.existsSync(flags.bundle)) throw new KataError('E_INVALID_ARGUMENT', `bundle ${flags.bundle}: no such directory`);
    try {
      fs.writeFileSync(file, JSON.stringify(spec, null, '\t'), { flag: 'wx', mode: 0o666 });
    } catch (e) {
      if (e instanceof Error && 'code' in e && e.code === 'EEXIST') throw new KataError('E_INVALID_ARGUMENT', 'File config.json exists. Remove it first');
      throw e;
    }
  }
}

/** runc's rootless changes: a user namespace mapping the caller, no network namespace, no cgroup mount. */
function toRootless(spec: Record<string, unknown>): void {
  const linux = spec['linux'] as Record<string, unknown>;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  linux['uidMappings'] = [{ containerID: 0, hostID: uid, size: 1 }];
  linux['gidMappings'] = [{ containerID: 0, hostID: gid, size: 1 }];
  const ns = (linux['namespaces'] as { type: string }[]).filter((n) => n.type !== 'network');
  if (!ns.some((n) => n.type === 'user')) ns.push({ type: 'user' });
  linux['namespaces'] = ns;
  delete linux['resources'];
  const mounts = (spec['mounts'] as { destination: string; type?: string; source?: string; options?: string[] }[])
    .filter((m) => m.type !== 'cgroup')
    .map((m) => {
      if (m.type === 'sysfs') return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
      if (m.options) return { ...m, options: m.options.filter((o) => !o.startsWith('gid=')) };
      return m;
    });
  spec['mounts'] = mounts;
}
