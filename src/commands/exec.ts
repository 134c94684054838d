import { Args, Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';
import { KataError } from '../errors.js';
import { exitNow } from '../native/index.js';

export default class Exec extends RuntimeCommand {
  static override description = 'run a new process inside the container (in its VM)';
  static override strict = false;
  static override args = {
    id: Args.string({ required: true, description: 'container id' }),
    command: Args.string({ required: false, description: 'command and its arguments (unless --process)' }),
  };
  static override flags = {
    'console-socket': Flags.string({ description: 'unix socket to receive the pty master' }),
    cwd: Flags.string({ description: 'current working directory in the container' }),
    env: Flags.string({ char: 'e', multiple: true, default: [], description: 'set an environment variable (K=V)' }),
    tty: Flags.boolean({ char: 't', default: false, description: 'allocate a pseudo-TTY' }),
    user: Flags.string({ char: 'u', description: 'UID (format: <uid>[:<gid>])' }),
    'additional-gids': Flags.string({ char: 'g', multiple: true, default: [], description: 'additional gids' }),
    process: Flags.string({ char: 'p', description: 'path to the process.json' }),
    detach: Flags.boolean({ char: 'd', default: false, description: 'detach from the container\'s process' }),
    'pid-file': Flags.string({ default: '', description: 'file to write the process id to' }),
    'process-label': Flags.string({ description: 'accepted for compatibility (no SELinux in the guest)' }),
    apparmor: Flags.string({ description: 'accepted for compatibility (no AppArmor in the guest)' }),
    'no-new-privs': Flags.boolean({ default: false, description: 'set the no new privileges value for the process' }),
    cap: Flags.string({ char: 'c', multiple: true, default: [], description: 'add a capability to the bounding set for the process' }),
    'preserve-fds': Flags.integer({ default: 0, description: 'accepted for compatibility (must be 0)' }),
    cgroup: Flags.string({ description: 'accepted for compatibility (the process joins the container\'s cgroup)' }),
    'ignore-paused': Flags.boolean({ default: false, description: 'accepted for compatibility' }),
    'no-subreaper': Flags.boolean({ default: false, description: 'accepted for compatibility' }),
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Exec);
    const rt = this.runtimeFor(flags);
    const command = (argv as string[]).slice(1);
    const gids = flags['additional-gids'].map((g) => {
      if (!/^[0-9]+$/.test(g)) throw new KataError('E_INVALID_ARGUMENT', `invalid value ${JSON.stringify(g)} for flag -additional-gids`);
      return Number(g);
    });
    const code = await rt.exec({
      id: args.id,
      detach: flags.detach,
      pidFile: flags['pid-file'],
      consoleSocket: flags['console-socket'],
      preserveFds: flags['preserve-fds'],
      flags: {
        processFile: flags.process,
        args: command,
        tty: flags.tty,
        env: flags.env,
        cwd: flags.cwd,
        user: flags.user,
        additionalGids: gids,
        noNewPrivs: flags['no-new-privs'],
        caps: flags.cap,
      },
    });
    // A foreground exec may still have a read of the caller's stdin pending in the thread pool
    // (a terminal or pipe that stays open): leave without waiting for it, as runc does.
    if (!flags.detach) exitNow(code);
    process.exitCode = code;
  }

  /** runc exits 255 when exec itself fails (the process's own failures are its exit code). */
  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    await super.catch(err);
    process.exitCode = 255;
  }
}
