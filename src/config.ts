import { Logger } from './util/log.js';
import { resolveConfig } from './config/resolve.js';
import type { ConfigWarning, RuntimeConfig } from './config/types.js';
import type { SizingConfig } from './vm/sizing.js';

/**
 * Runtime configuration: built-in defaults (every one works on a machine prepared by setup),
 * overridden by configuration.toml (--config FILE, $KATA_CONF_FILE, or
 * /etc/kata-containers/configuration.toml), overridden value by value by environment variables.
 * docs/configuration.md lists every key.
 */

export type { Accel, ConfigWarning, InternetworkingModel, Machine, ResolvedConfig, RuntimeConfig, SharedFs, ValueSource } from './config/types.js';
export { GUEST_DIR } from './config/fields.js';
export { chooseConfigFile, DEFAULT_CONFIG_FILE, resolveConfig, type ResolveOptions } from './config/resolve.js';

export interface LoadOptions {
  /** The --config value; empty or undefined: $KATA_CONF_FILE, then the default location. */
  file?: string | undefined;
  /** Receives each warning; by default they are logged (see reportConfigWarnings). */
  onWarning?: (w: ConfigWarning) => void;
}

/** The effective configuration; throws KataError E_CONFIG naming the file or variable, the key and the problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): RuntimeConfig {
  const r = resolveConfig({ env, file: opts.file });
  if (opts.onWarning !== undefined) r.warnings.forEach(opts.onWarning);
  else reportConfigWarnings(r.file ?? '', r.warnings, Logger.fromEnv(env), env['KATA_LOG_FILE'] !== undefined && env['KATA_LOG_FILE'] !== '');
  return r.config;
}

/**
 * One log line per kind of warning. Unknown keys (typos, most likely) are warnings of every
 * command, so on stderr without --log; Kata keys this runtime ignores only go to a --log file:
 * a copied Kata configuration would otherwise add a line to every `state`. `kata-runtime env`
 * and `kata-runtime check` show both.
 */
export function reportConfigWarnings(file: string, warnings: readonly ConfigWarning[], log: Logger, hasLogFile: boolean): void {
  const keys = (kind: ConfigWarning['kind']): string[] => warnings.filter((w) => w.kind === kind).map((w) => w.key);
  const unknown = keys('unknown');
  const unused = keys('unused');
  if (unknown.length > 0) log.warn(`${file}: unknown keys ignored: ${unknown.join(', ')}`);
  if (unused.length > 0 && hasLogFile) log.warn(`${file}: Kata keys kata-runtime does not use, ignored: ${unused.join(', ')}`);
}

/** The sizing inputs of src/vm/sizing.ts (vmSize) from the effective configuration. */
export function sizingConfig(c: RuntimeConfig): SizingConfig {
  return {
    defaultMemoryMiB: c.memoryMiB,
    memoryOverheadMiB: c.memoryOverheadMiB,
    minMemoryMiB: c.minMemoryMiB,
    maxMemoryMiB: c.maxMemoryMiB,
    defaultVcpus: c.vcpus,
    maxVcpus: c.maxVcpus,
  };
}
