import { Command, Flags, type Interfaces } from '@oclif/core';
import { loadConfig } from '../config.js';
import type { RuntimeConfig } from '../config/types.js';
import { exitCodeFor, toKataError, type KataError } from '../errors.js';
import { Runtime } from '../runtime/runtime.js';
import { Logger, type LogFormat } from '../util/log.js';

/** runc's global flags, accepted before or after the verb. */
export const globalFlags = {
  root: Flags.string({ description: 'root directory for storage of container state', default: '/run/kata', helpGroup: 'GLOBAL' }),
  log: Flags.string({ description: 'set the log file to write runtime logs to', default: '', helpGroup: 'GLOBAL' }),
  'log-format': Flags.string({ description: 'set the log format (text or json)', options: ['text', 'json'], default: 'text', helpGroup: 'GLOBAL' }),
  debug: Flags.boolean({ description: 'enable debug logging', default: false, helpGroup: 'GLOBAL' }),
  'systemd-cgroup': Flags.boolean({ description: 'name the host cgroup as systemd would (cgroupsPath "slice:prefix:name"); see docs/cli-compat.md', default: false, helpGroup: 'GLOBAL' }),
  rootless: Flags.string({ description: 'accepted for compatibility (true, false or auto)', default: 'auto', helpGroup: 'GLOBAL' }),
  criu: Flags.string({ description: 'accepted for compatibility; checkpoint/restore is not supported', default: 'criu', helpGroup: 'GLOBAL' }),
  config: Flags.string({
    description: 'configuration file (default: $KATA_CONF_FILE, else /etc/kata-containers/configuration.toml if it exists)',
    default: '',
    helpGroup: 'GLOBAL',
  }),
};

export type GlobalFlags = Interfaces.InferredFlags<typeof globalFlags>;

/**
 * Base of every verb: parses the global flags, builds the logger and the runtime, and turns any
 * failure into one line on stderr (and in --log), and runc's exit status.
 */
export abstract class RuntimeCommand extends Command {
  static override baseFlags = globalFlags;
  static override strict = true;
  protected logger: Logger = new Logger(undefined, 'text', false);

  /** The --log logger (for verbs that do not build a runtime but can still fail, like runc's). */
  protected configureLog(g: GlobalFlags): LogFormat {
    const format: LogFormat = g['log-format'] === 'json' ? 'json' : 'text';
    this.logger = Logger.forCli(g.log === '' ? undefined : g.log, format, g.debug);
    return format;
  }

  protected runtimeFor(g: GlobalFlags): Runtime {
    const format = this.configureLog(g);
    // The monitor and later processes inherit the choice through the environment.
    if (g.log !== '') process.env['KATA_LOG_FILE'] = g.log;
    process.env['KATA_LOG_FORMAT'] = format;
    // Loaded after the logger exists, so that a configuration error reaches --log too; and only
    // by the verbs that need it (Runtime reads it lazily): a broken file fails create and run,
    // not state, kill or delete of the containers that already exist.
    let config: RuntimeConfig | undefined;
    const load = (): RuntimeConfig => (config ??= loadConfig(process.env, { file: g.config }));
    let debug = false;
    try {
      debug = load().debug;
    } catch {
      // reported by the verb that needs the configuration, if any
    }
    if (debug && !g.debug) this.logger = Logger.forCli(g.log === '' ? undefined : g.log, format, true, false);
    return new Runtime(g.root, this.logger, load, { cgroupDriver: g['systemd-cgroup'] ? 'systemd' : 'cgroupfs' });
  }

  /** One error line on stderr and in --log (level=error), as runc reports a failure. */
  protected report(k: KataError): void {
    const line = k.oneLine();
    this.logger.error(line);
    process.stderr.write(`${line}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    const k = toKataError(err, err.constructor.name === 'KataError' ? 'E_INTERNAL' : 'E_INVALID_ARGUMENT');
    this.report(k);
    process.exitCode = exitCodeFor(k.code);
  }
}
