import { writeOut } from '../cli/stdio.js';
import { Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';
import { formatList } from '../cli/render.js';

export default class List extends RuntimeCommand {
  static override description = 'list containers started by kata-runtime under the given root';
  static override flags = {
    format: Flags.string({ char: 'f', default: 'table', options: ['table', 'json'], description: 'output format' }),
    quiet: Flags.boolean({ char: 'q', default: false, description: 'display only container ids' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(List);
    const items = this.runtimeFor(flags).list();
    // runc: -q prints with fmt (errors ignored); the table and JSON go through tabwriter and
    // json.Encoder, whose errors fail the verb.
    writeOut(formatList(items, flags.format === 'json' ? 'json' : 'table', flags.quiet), !flags.quiet);
  }
}
