import { Args, Flags } from '@oclif/core';
import { writeOut } from '../cli/stdio.js';
import { toKataError } from '../errors.js';
import { RuntimeCommand } from '../cli/base.js';
import { parseDuration } from '../cli/units.js';

export default class Events extends RuntimeCommand {
  static override description = 'print container events (stats every interval, OOM kills as they happen)';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    interval: Flags.string({ default: '5s', description: 'set the stats collection interval' }),
    stats: Flags.boolean({ default: false, description: 'display the container\'s stats then exit' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Events);
    const ms = parseDuration(flags.interval);
    // runc logs an event it cannot write (level=error, on stderr and in --log) and goes on.
    const emit = (ev: Record<string, unknown>): void => {
      try {
        writeOut(JSON.stringify(ev) + '\n', true);
      } catch (e) {
        this.report(toKataError(e));
      }
    };
    await this.runtimeFor(flags).events(args.id, ms, flags.stats, emit);
  }
}
