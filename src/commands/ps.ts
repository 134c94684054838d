import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';
import { formatPs } from '../cli/render.js';

export default class Ps extends RuntimeCommand {
  static override description = 'list the processes of the container (guest pids)';
  static override strict = false; // runc passes ps options after the id; we accept and ignore them
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { format: Flags.string({ char: 'f', default: 'table', options: ['table', 'json'], description: 'output format' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Ps);
    const procs = await this.runtimeFor(flags).ps(args.id);
    process.stdout.write(formatPs(procs, flags.format === 'json' ? 'json' : 'table'));
  }
}
