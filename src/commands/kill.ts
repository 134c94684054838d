import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';
import { parseSignal } from '../runtime/signals.js';

export default class Kill extends RuntimeCommand {
  static override description = 'send a signal (default SIGTERM) to the container\'s init process';
  static override args = {
    id: Args.string({ required: true, description: 'container id' }),
    signal: Args.string({ required: false, default: 'SIGTERM', description: 'signal name or number' }),
  };
  static override flags = { all: Flags.boolean({ char: 'a', default: false, description: 'send the signal to all processes in the container' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Kill);
    const rt = this.runtimeFor(flags);
    await rt.kill(args.id, parseSignal(args.signal), flags.all);
  }
}
