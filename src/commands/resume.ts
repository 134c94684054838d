import { Args } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';

export default class Resume extends RuntimeCommand {
  static override description = 'resume a paused container (continues its VM)';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Resume);
    await this.runtimeFor(flags).resume(args.id);
  }
}
