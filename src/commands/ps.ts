import { writeOut } from '../cli/stdio.js';
import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';
import { formatPs } from '../cli/render.js';

export default class Ps extends RuntimeCommand {
  static override description = 'list the processes of the container (table: the guest\'s processes; json: the host pid standing for the container)';
  static override strict = false; // runc passes ps options after the id; we accept and ignore them
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = { format: Flags.string({ char: 'f', default: 'table', options: ['table', 'json'], description: 'output format' }) };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Ps);
    const rt = this.runtimeFor(flags);
    // JSON is for engines (docker top, ctr task ps), which look the pids up on the host: they get
    // the host process that stands for the container (runc's `null` once there is none). The
    // table shows the guest's processes.
    if (flags.format === 'json') {
      const pids = rt.hostPids(args.id);
      writeOut(JSON.stringify(pids.length === 0 ? null : pids) + '\n', true); // runc: json.Encoder, errors fail
      return;
    }
    const r = await rt.ps(args.id, (argv as string[]).slice(1));
    writeOut('header' in r ? r.header : formatPs(r.processes, 'table'), false); // runc: fmt.Print, errors ignored
  }
}
