import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';

export default class Delete extends RuntimeCommand {
  static override description = 'delete a container and everything its VM used';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { force: Flags.boolean({ char: 'f', default: false, description: 'kill the container first if it is running' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Delete);
    await this.runtimeFor(flags).delete(args.id, flags.force);
  }
}
