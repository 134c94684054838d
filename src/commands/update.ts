import fs from 'node:fs';
import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';
import { parseBytes, parseInteger } from '../cli/units.js';
import { KataError } from '../errors.js';
import { isRecord } from '../util/json.js';

type Obj = Record<string, unknown>;


function section(r: Obj, key: string): Obj {
  const cur = r[key];
  if (isRecord(cur)) return cur;
  const fresh: Obj = {};
  r[key] = fresh;
  return fresh;
}

export default class Update extends RuntimeCommand {
  static override description = "update the container's resource limits (applied to its cgroup in the guest)";
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    resources: Flags.string({ char: 'r', description: 'path to a file with the resources (JSON, linux.resources); - reads stdin' }),
    'blkio-weight': Flags.string({ description: 'block IO weight (10..1000)' }),
    'cpu-period': Flags.string({ description: 'CPU CFS period (microseconds)' }),
    'cpu-quota': Flags.string({ description: 'CPU CFS quota (microseconds)' }),
    'cpu-share': Flags.string({ description: 'CPU shares (relative weight)' }),
    'cpu-rt-period': Flags.string({ description: 'CPU realtime period (microseconds)' }),
    'cpu-rt-runtime': Flags.string({ description: 'CPU realtime runtime (microseconds)' }),
    'cpuset-cpus': Flags.string({ description: 'CPUs to use (0-3, 0,1)' }),
    'cpuset-mems': Flags.string({ description: 'memory nodes to use' }),
    'kernel-memory': Flags.string({ description: 'accepted for compatibility (no kernel memory limit on cgroup v2)' }),
    'kernel-memory-tcp': Flags.string({ description: 'accepted for compatibility (no kernel memory limit on cgroup v2)' }),
    memory: Flags.string({ description: 'memory limit (in bytes, or with a k/m/g suffix)' }),
    'memory-reservation': Flags.string({ description: 'memory reservation or soft limit' }),
    'memory-swap': Flags.string({ description: 'total memory usage (memory + swap); -1 for unlimited' }),
    'pids-limit': Flags.string({ description: 'maximum number of pids allowed in the container' }),
    'l3-cache-schema': Flags.string({ description: 'not supported (Intel RDT)' }),
    'mem-bw-schema': Flags.string({ description: 'not supported (Intel RDT)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Update);
    const rt = this.runtimeFor(flags);
    let r: Obj = {};
    if (flags.resources !== undefined) {
      let text: string;
      try {
        text = flags.resources === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(flags.resources, 'utf8');
      } catch (e) {
        throw new KataError('E_INVALID_ARGUMENT', `--resources ${flags.resources}: ${e instanceof Error ? e.message : String(e)}`);
      }
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new KataError('E_INVALID_ARGUMENT', `--resources: invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!isRecord(v)) throw new KataError('E_INVALID_ARGUMENT', '--resources: not a JSON object');
      r = v;
    }
    if (flags['l3-cache-schema'] !== undefined || flags['mem-bw-schema'] !== undefined) {
      throw new KataError('E_UNSUPPORTED', 'Intel RDT (--l3-cache-schema, --mem-bw-schema) is not available in the VM');
    }
    const int = (flag: keyof typeof flags, min?: number, max?: number): number | undefined => {
      const v = flags[flag];
      return typeof v === 'string' ? parseInteger(v, flag, min, max) : undefined;
    };
    const set = (sec: string, key: string, v: unknown): void => {
      if (v !== undefined) section(r, sec)[key] = v;
    };
    set('blockIO', 'weight', int('blkio-weight', 0, 1000));
    set('cpu', 'period', int('cpu-period', 0));
    set('cpu', 'quota', int('cpu-quota'));
    set('cpu', 'shares', int('cpu-share', 0));
    set('cpu', 'realtimePeriod', int('cpu-rt-period', 0));
    set('cpu', 'realtimeRuntime', int('cpu-rt-runtime'));
    set('cpu', 'cpus', flags['cpuset-cpus']);
    set('cpu', 'mems', flags['cpuset-mems']);
    set('memory', 'limit', flags.memory === undefined ? undefined : parseBytes(flags.memory, true));
    set('memory', 'reservation', flags['memory-reservation'] === undefined ? undefined : parseBytes(flags['memory-reservation'], true));
    set('memory', 'swap', flags['memory-swap'] === undefined ? undefined : parseBytes(flags['memory-swap'], true));
    set('pids', 'limit', int('pids-limit'));
    await rt.update(args.id, r);
  }
}
