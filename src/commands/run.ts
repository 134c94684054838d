import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';

export default class Run extends RuntimeCommand {
  static override description = 'create and start a container; in the foreground, wait for it and exit with its status';
  static override args = { id: Args.string({ required: true, description: 'container id' }) };
  static override flags = {
    bundle: Flags.string({ char: 'b', default: '.', description: 'path to the root of the bundle directory' }),
    'console-socket': Flags.string({ description: 'unix socket to receive the pty master of the container terminal' }),
    'pid-file': Flags.string({ default: '', description: 'file to write the process id to' }),
    detach: Flags.boolean({ char: 'd', default: false, description: 'detach from the container\'s process' }),
    keep: Flags.boolean({ default: false, description: 'do not delete the container after it exits' }),
    'no-subreaper': Flags.boolean({ default: false, description: 'accepted for compatibility' }),
    'no-pivot': Flags.boolean({ default: false, description: 'accepted for compatibility' }),
    'no-new-keyring': Flags.boolean({ default: false, description: 'accepted for compatibility' }),
    'preserve-fds': Flags.integer({ default: 0, description: 'accepted for compatibility (must be 0)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Run);
    const rt = this.runtimeFor(flags);
    const code = await rt.run({
      id: args.id,
      bundle: flags.bundle,
      pidFile: flags['pid-file'],
      consoleSocket: flags['console-socket'],
      preserveFds: flags['preserve-fds'],
      detach: flags.detach,
      keep: flags.keep,
    });
    process.exitCode = code;
  }
}
