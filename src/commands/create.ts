import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';

export default class Create extends RuntimeCommand {
  static override description = 'create a container (boots its VM; the process waits for start)';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    bundle: Flags.string({ char: 'b', default: '.', description: 'path to the root of the bundle directory' }),
    'console-socket': Flags.string({ description: 'unix socket to receive the pty master of the container terminal' }),
    'pid-file': Flags.string({ default: '', description: 'file to write the process id to' }),
    'no-pivot': Flags.boolean({ default: false, description: 'accepted for compatibility' }),
    'no-new-keyring': Flags.boolean({ default: false, description: 'accepted for compatibility' }),
    'preserve-fds': Flags.integer({ default: 0, description: 'accepted for compatibility (must be 0)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Create);
    const rt = this.runtimeFor(flags);
    await rt.create({ id: args.id, bundle: flags.bundle, pidFile: flags['pid-file'], consoleSocket: flags['console-socket'], preserveFds: flags['preserve-fds'] });
  }
}
