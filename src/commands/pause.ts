import { Args } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';

export default class Pause extends RuntimeCommand {
  static override description = 'pause all processes of the container (stops its whole VM)';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Pause);
    await this.runtimeFor(flags).pause(args.id);
  }
}
