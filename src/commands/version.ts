import { writeOut } from '../cli/stdio.js';
import { RuntimeCommand } from '../cli/base.js';
import { versionText } from '../cli/render.js';

export default class Version extends RuntimeCommand {
  static override description = 'print the version';

  async run(): Promise<void> {
    await this.parse(Version);
    writeOut(versionText(), false);
  }
}
