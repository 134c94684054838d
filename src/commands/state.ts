import { writeOut } from '../cli/stdio.js';
import { Args } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';

export default class State extends RuntimeCommand {
  static override description = 'output the state of a container';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(State);
    const s = this.runtimeFor(flags).state(args.id);
    // runc prints it with fmt and ignores a write error (exit 0).
    writeOut(JSON.stringify(s, null, 2) + '\n', false);
  }
}
