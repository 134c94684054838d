import { writeOut } from '../cli/stdio.js';
import { RuntimeCommand } from '../cli/base.js';
import { resolveConfig, type RuntimeConfig } from '../config.js';
import { checksPassed, evaluateChecks, formatChecks, gatherFacts, type ConfigStatus } from '../config/check.js';
import { toKataError } from '../errors.js';

export default class Check extends RuntimeCommand {
  static override description = 'say what this host can and cannot do for kata-runtime (exits 1 when something required is missing)';

  async run(): Promise<void> {
    const { flags } = await this.parse(Check);
    let config: RuntimeConfig;
    let status: ConfigStatus;
    try {
      const r = resolveConfig({ file: flags.config });
      config = r.config;
      status = { ok: true, file: r.file, warnings: r.warnings.length };
    } catch (e) {
      config = resolveConfig({ file: null, env: {} }).config;
      status = { ok: false, error: toKataError(e, 'E_CONFIG').oneLine() };
    }
    const results = evaluateChecks(gatherFacts(config), config, status);
    writeOut(formatChecks(results), true);
    if (!checksPassed(results)) process.exitCode = 1;
  }
}
