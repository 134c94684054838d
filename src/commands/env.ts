import { writeOut } from '../cli/stdio.js';
import { Flags } from '@oclif/core';
import { RuntimeCommand } from '../cli/base.js';
import { resolveConfig } from '../config.js';
import { renderJson, renderToml } from '../config/render.js';

export default class Env extends RuntimeCommand {
  static override description = 'print the effective configuration: the file read, every value and where it came from (TOML, or JSON with --json)';
  static override flags = {
    json: Flags.boolean({ default: false, description: 'print JSON instead of TOML' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Env);
    const r = resolveConfig({ file: flags.config });
    writeOut(flags.json ? renderJson(r) : renderToml(r), true);
  }
}
