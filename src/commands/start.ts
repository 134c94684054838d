import { Args } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';

export default class Start extends RuntimeCommand {
  static override description = 'start the user-defined process of a created container';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Start);
    await this.runtimeFor(flags).start(args.id);
  }
}
